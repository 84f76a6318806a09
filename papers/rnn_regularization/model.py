"""The word-level LSTM language model of Zaremba, Sutskever & Vinyals 2014.

    embedding [V, H] -> dropout -> LSTM -> dropout -> LSTM -> dropout -> softmax [H, V]

Dropout acts on the non-recurrent connections only (each layer's input and the last layer's
output; papers.lstm.rnn.RNN), never on the recurrent state, so the carry a window hands to the
next is untouched by it. The embedding and the softmax are separate (untied) matrices, and
every parameter, biases included, starts uniform in [-init_scale, init_scale].
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from papers.lstm.cells import uniform
from papers.lstm.rnn import RNN


class WordLM(nn.Module):
  """tokens [B, T] (+ carry) -> logits [B, T, vocab_size], final carry."""
  vocab_size: int
  hidden_size: int = 200
  num_layers: int = 2
  dropout: float = 0.0
  init_scale: float = 0.1
  vocab_multiple: int = 128   # tables padded to a multiple of this: the vocab axis splits evenly
  dtype: Any = jnp.float32

  @property
  def padded_vocab_size(self) -> int:
    return -(-self.vocab_size // self.vocab_multiple) * self.vocab_multiple

  def zero_carry(self, batch_size: int):
    """Zeros: a tuple over layers of (c, h), each [batch_size, hidden_size] float32."""
    return RNN(self.hidden_size, num_layers=self.num_layers, parent=None).zero_carry(batch_size)

  @nn.compact
  def __call__(self, tokens, carry=None, *, train: bool = False):
    init = uniform(self.init_scale)
    x = nn.Embed(self.padded_vocab_size, self.hidden_size, dtype=self.dtype, name="embed",
                 embedding_init=nn.with_logical_partitioning(init, ("vocab", "embed")))(tokens)
    x, carry = RNN(self.hidden_size, cell="lstm", num_layers=self.num_layers, dropout=self.dropout,
                   init_scale=self.init_scale, dtype=self.dtype, name="rnn")(x, carry, train=train)
    logits = nn.Dense(self.padded_vocab_size, dtype=self.dtype, name="softmax",
                      kernel_init=nn.with_logical_partitioning(init, ("embed", "vocab")),
                      bias_init=nn.with_logical_partitioning(init, ("vocab",)))(x)
    logits = nn.with_logical_constraint(logits, ("batch", "length", "vocab"))
    # The padded rows are never looked up and their logits are cut off: invisible to the model.
    return logits[..., :self.vocab_size].astype(jnp.float32), carry
