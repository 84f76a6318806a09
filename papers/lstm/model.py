"""Models built on the RNN driver: a sequence reader with a linear readout, and a word-level LM.

Pure and mesh-free: parameters and activations carry logical axis names only.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from papers.lstm.cells import uniform
from papers.lstm.rnn import RNN


def _readout(features: int, init_scale: float, name: str, axis: str | None) -> nn.Dense:
  init = uniform(init_scale) if init_scale > 0 else nn.initializers.lecun_normal()
  bias = uniform(init_scale) if init_scale > 0 else nn.initializers.zeros
  return nn.Dense(features, name=name,
                  kernel_init=nn.with_logical_partitioning(init, ("hidden", axis)),
                  bias_init=nn.with_logical_partitioning(bias, (axis,)))


class SequenceModel(nn.Module):
  """inputs [B, T, F] -> RNN -> a linear readout of the last step ([B, O]) or of every step ([B, T, O])."""
  num_outputs: int
  hidden_size: int = 128
  cell: str = "lstm"
  num_layers: int = 1
  readout: str = "last"         # "last" (adding problem) | "all" (copy memory)
  init_scale: float = 0.0
  forget_bias: float = 1.0
  unroll: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, inputs):
    if self.readout not in ("last", "all"):
      raise ValueError(f"readout must be 'last' or 'all', got {self.readout!r}")
    h, _ = RNN(self.hidden_size, self.cell, self.num_layers, init_scale=self.init_scale,
               forget_bias=self.forget_bias, unroll=self.unroll, dtype=self.dtype,
               name="rnn")(inputs)
    if self.readout == "last":
      h = h[:, -1]
    readout = _readout(self.num_outputs, self.init_scale, "readout", None)  # a few outputs: replicated
    return readout(h).astype(jnp.float32)


class LanguageModel(nn.Module):
  """Zaremba et al. 2014: embedding -> stacked LSTM with dropout between layers -> softmax logits.

  `tokens` [B, T] int -> (logits [B, T, vocab] float32, carry), the carry to pass to the next
  window of a truncated-BPTT stream.
  """
  vocab_size: int
  hidden_size: int = 650
  num_layers: int = 2
  cell: str = "lstm"
  dropout: float = 0.0
  init_scale: float = 0.05
  unroll: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, tokens, carry=None, *, train: bool = False):
    init = uniform(self.init_scale) if self.init_scale > 0 else nn.initializers.normal(1.0)
    x = nn.Embed(self.vocab_size, self.hidden_size, dtype=self.dtype, name="embed",
                 embedding_init=nn.with_logical_partitioning(init, ("vocab", "embed")))(tokens)
    h, carry = RNN(self.hidden_size, self.cell, self.num_layers, dropout=self.dropout,
                   init_scale=self.init_scale, unroll=self.unroll, dtype=self.dtype,
                   name="rnn")(x, carry, train=train)
    logits = _readout(self.vocab_size, self.init_scale, "softmax", "vocab")(h.astype(self.dtype))
    return logits.astype(jnp.float32), carry
