"""Models built on the RNN driver: a sequence reader with a linear readout, and a word-level LM.

Pure and mesh-free: parameters and activations carry logical axis names only.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
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


@jax.custom_vjp
def softmax_cross_entropy(h, kernel, bias, labels):
  """Mean over rows of -log softmax(h @ kernel + bias)[label]: h [N, F], kernel [F, V], labels [N] int.

  The gradient is written out so that XLA gets the layouts it is fast with: one elementwise
  pass makes d logits = (softmax - onehot) / N (the one-hot is a comparison inside that pass,
  never an array), then d kernel = h^T d_logits and d h = d_logits kernel^T read it in place.
  Autodiff of the same formula also transposes the [N, V] gradient and scatters into it.
  """
  return _softmax_cross_entropy_fwd(h, kernel, bias, labels)[0]


def _softmax_cross_entropy_fwd(h, kernel, bias, labels):
  logits = jnp.dot(h, kernel, preferred_element_type=jnp.float32) + bias.astype(jnp.float32)
  lse = jax.nn.logsumexp(logits, axis=-1)
  picked = jnp.take_along_axis(logits, labels[:, None], axis=-1)[:, 0]
  return jnp.mean(lse - picked), (h, kernel, logits, lse, labels)


def _softmax_cross_entropy_bwd(residuals, d_loss):
  h, kernel, logits, lse, labels = residuals
  onehot = jnp.arange(logits.shape[-1])[None, :] == labels[:, None]
  d_logits = (jnp.exp(logits - lse[:, None]) - onehot) * (d_loss / logits.shape[0])
  d_h = jax.lax.dot_general(d_logits.astype(h.dtype), kernel, (((1,), (1,)), ((), ())),
                            preferred_element_type=jnp.float32)
  d_kernel = jax.lax.dot_general(h, d_logits.astype(h.dtype), (((0,), (0,)), ((), ())),
                                 preferred_element_type=jnp.float32)
  return (d_h.astype(h.dtype), d_kernel.astype(kernel.dtype), d_logits.sum(0), None)


softmax_cross_entropy.defvjp(_softmax_cross_entropy_fwd, _softmax_cross_entropy_bwd)


class LanguageModel(nn.Module):
  """Zaremba et al. 2014: embedding -> stacked LSTM with dropout between layers -> softmax logits.

  `tokens` [B, T] int -> (logits [B, T, vocab] float32, carry), the carry to pass to the next
  window of a truncated-BPTT stream. With `labels` [B, T] int: (mean cross entropy, carry),
  computed by `softmax_cross_entropy` (the same number, a faster gradient).
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
  def __call__(self, tokens, carry=None, *, train: bool = False, labels=None):
    init = uniform(self.init_scale) if self.init_scale > 0 else nn.initializers.normal(1.0)
    x = nn.Embed(self.vocab_size, self.hidden_size, dtype=self.dtype, name="embed",
                 embedding_init=nn.with_logical_partitioning(init, ("vocab", "embed")))(tokens)
    h, carry = RNN(self.hidden_size, self.cell, self.num_layers, dropout=self.dropout,
                   init_scale=self.init_scale, unroll=self.unroll, dtype=self.dtype,
                   name="rnn")(x, carry, train=train)
    readout = _readout(self.vocab_size, self.init_scale, "softmax", "vocab")
    if labels is None:
      return readout(h.astype(self.dtype)).astype(jnp.float32), carry
    if self.is_initializing():
      readout(h[:, :1].astype(self.dtype))  # creates the parameters
    params = nn.meta.unbox(readout.variables["params"])
    loss = softmax_cross_entropy(h.reshape(-1, h.shape[-1]).astype(self.dtype),
                                 params["kernel"].astype(self.dtype), params["bias"],
                                 labels.reshape(-1))
    return loss, carry
