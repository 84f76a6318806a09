"""Karpathy's char-rnn: bytes -> embedding -> stacked LSTM (or GRU, vanilla RNN) -> softmax.

    model = CharRNN(hidden_size=512, num_layers=3)
    logits, carry = model.apply(variables, tokens)          # tokens [B, T] int32, zero state
    logits, carry = model.apply(variables, more, carry)     # continues from that state

`CharRNN.__call__` is a pure function of (params, tokens, carry). For truncated BPTT,
`TruncatedBPTT(CharRNN(...))` keeps the state between calls in the mutable collection
"carry" instead: each row's final state becomes the next call's initial state (after zeroing
the rows whose `reset` flag is set), with gradients stopped at the boundary. The collection's
arrays are [batch, hidden] and carry those logical names, so a trainer shards them like the
batch.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from papers.lstm.rnn import RNN

CARRY = "carry"  # the flax collection of the carried state


class CharRNN(nn.Module):
  vocab_size: int = 256
  hidden_size: int = 512
  num_layers: int = 2
  cell: str = "lstm"
  embed_dim: int = 64
  dropout: float = 0.0      # on the non-recurrent connections (papers.lstm.rnn.RNN)
  unroll: int = 1           # time steps per scan iteration (speed only)
  dtype: Any = jnp.float32

  def rnn(self, **kwargs) -> RNN:
    return RNN(self.hidden_size, cell=self.cell, num_layers=self.num_layers, dropout=self.dropout,
               unroll=self.unroll, dtype=self.dtype, **kwargs)

  def zero_carry(self, batch_size: int):
    """The zero state (a tuple over layers of the cell's carry); works bound or unbound."""
    return self.rnn(parent=None).zero_carry(batch_size)

  @nn.compact
  def __call__(self, tokens, carry=None, *, train: bool = False):
    """tokens [B, T] int32; carry None = zeros. Returns (logits [B, T, vocab] float32, carry)."""
    embed = nn.Embed(self.vocab_size, self.embed_dim, dtype=self.dtype, name="embed",
                     embedding_init=nn.with_logical_partitioning(nn.initializers.normal(1.0),
                                                                 ("vocab", "embed")))
    x = nn.with_logical_constraint(embed(tokens), ("batch", "length", "act_embed"))
    x, carry = self.rnn(name="rnn")(x, carry, train=train)
    logits = nn.Dense(
        self.vocab_size, dtype=self.dtype, name="logits",
        kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(), ("hidden", "vocab")),
        bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("vocab",)))(x)
    logits = nn.with_logical_constraint(logits, ("batch", "length", "vocab"))
    return logits.astype(jnp.float32), carry


class TruncatedBPTT(nn.Module):
  """Runs `lm` (any module with `__call__(tokens, carry, train=) -> (outputs, carry)` and
  `zero_carry(batch_size)`) on consecutive windows of the same streams, carrying its state.

  The state lives in the mutable collection "carry": each call starts from it (rows whose
  `reset` [B] flag is set start from zeros) and stores its final state back, with no gradient
  through the boundary. `reset=None` runs from a zero state and leaves the collection alone
  (evaluation).
  """
  lm: nn.Module

  @nn.compact
  def __call__(self, tokens, reset=None, *, train: bool = False):
    if reset is None:
      return self.lm(tokens, None, train=train)[0]
    def boxed_zeros():  # logical names, so that a trainer shards the rows like the batch
      return jax.tree.map(lambda z: nn.LogicallyPartitioned(z, names=("batch", "hidden")),
                          self.lm.zero_carry(tokens.shape[0]))
    state = self.variable(CARRY, "state", boxed_zeros)
    keep = jnp.logical_not(reset)[:, None]
    carry = jax.tree.map(lambda c: jnp.where(keep, c, 0.0), state.value)
    outputs, carry = self.lm(tokens, carry, train=train)
    if not self.is_initializing():  # init keeps the zeros (and their logical names)
      state.value = jax.tree.map(
          lambda c: nn.with_logical_constraint(jax.lax.stop_gradient(c), ("batch", "hidden")), carry)
    return outputs
