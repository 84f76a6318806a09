"""Recurrent cells as Flax linen modules: one time step on an already projected input.

Every cell computes its gate pre-activations from `x_proj + h @ W_h`, where
`x_proj = x @ W_x + b` (width `num_gates * hidden_size`) is computed by the driver
(papers.lstm.rnn.RNN) for all time steps in one matmul before the scan; the cell owns
only the recurrent parameters, so each step does one fused [H, G*H] matmul. Gate blocks
are laid out side by side in this order:

  rnn       h' = tanh(x_proj + W_h h)                                         (1 block)
  lstm      [i f g o]: c' = s(f) c + s(i) tanh(g),  h' = s(o) tanh(c')         (4 blocks)
  peephole  the lstm whose gates also see the cell (Gers & Schmidhuber 2000):
            i, f read p_i * c, p_f * c (the old cell), o reads p_o * c' (the new one)
  cifg      [f g o]: coupled input and forget gates, c' = s(f) c + (1 - s(f)) tanh(g)
  gru       [r z n]: n = tanh(x_n + s(r) * (W_hn h + b_hn)),  h' = (1 - s(z)) n + s(z) h

s is the logistic sigmoid. rnn, lstm and gru are the equations of Flax's nn.SimpleCell,
nn.LSTMCell and nn.GRUCell (tests/test_lstm.py maps their parameters onto these), written
here because those cells project their input inside every step.

A cell is split in two so that the driver can scan it with its own gradient: `weights()`
(the recurrent kernel and the per-unit vectors, as Flax parameters) and `update()` (pure
and elementwise: carry, x_proj, h @ W_h, vectors -> new carry, output). Carries stay
float32 whatever the compute dtype; the matmul runs in `dtype`.
"""
from __future__ import annotations

from typing import Any, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp


def uniform(scale: float):
  """U(-scale, scale), the init of Zaremba et al. 2014 for every parameter."""
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -scale, scale)
  return init


def blockwise_orthogonal(blocks: int):
  """[H, blocks*H]: an orthogonal [H, H] matrix per gate, as Flax's cells initialise each gate."""
  orthogonal = nn.initializers.orthogonal()

  def init(key, shape, dtype=jnp.float32):
    rows, cols = shape
    keys = jax.random.split(key, blocks)
    return jnp.concatenate([orthogonal(k, (rows, cols // blocks), dtype) for k in keys], axis=-1)
  return init


def _sigmoid(x):
  return jax.nn.sigmoid(x)


class Cell(nn.Module):
  """Base: the recurrent parameters and one step; subclasses define `update` and the constants."""
  hidden_size: int
  init_scale: float = 0.0       # > 0: U(-init_scale, init_scale) for every parameter
  dtype: Any = jnp.float32

  num_gates: ClassVar[int] = 1
  forget_block: ClassVar[int | None] = None  # gate block whose bias starts at forget_bias
  vectors: ClassVar[tuple[str, ...]] = ()    # per-unit [H] parameters besides the kernel

  @classmethod
  def zero_carry(cls, batch_size: int, hidden_size: int):
    return jnp.zeros((batch_size, hidden_size), jnp.float32)

  @staticmethod
  def hidden(carry):
    """The part of the carry that the recurrent matmul reads."""
    return carry

  @staticmethod
  def with_hidden(carry, h):
    """`carry` with its hidden part replaced by h (the same structure)."""
    del carry
    return h

  @staticmethod
  def update(carry, x_proj, h_proj, vectors):
    """Pure elementwise step: (carry, x_proj [B, G*H], h @ W_h [B, G*H], vectors) -> (carry, output)."""
    raise NotImplementedError

  @nn.compact
  def weights(self):
    """(recurrent kernel [H, G*H], {name: [H]} vectors) as Flax parameters."""
    init = lambda default: uniform(self.init_scale) if self.init_scale > 0 else default
    kernel = self.param("recurrent_kernel", nn.with_logical_partitioning(
        init(blockwise_orthogonal(self.num_gates)), (None, "hidden")),  # a name may occur once
        (self.hidden_size, self.num_gates * self.hidden_size))
    vectors = {name: self.param(name, nn.with_logical_partitioning(
        init(nn.initializers.zeros), ("hidden",)), (self.hidden_size,)) for name in self.vectors}
    return kernel, vectors

  def __call__(self, carry, x_proj):
    """One step, the flax RNNCellBase convention: (carry, x_proj) -> (carry, output)."""
    kernel, vectors = self.weights()
    h_proj = jnp.dot(self.hidden(carry).astype(self.dtype), kernel.astype(self.dtype))
    return self.update(carry, x_proj.astype(jnp.float32), h_proj.astype(jnp.float32), vectors)


class SimpleRNN(Cell):
  num_gates = 1

  @staticmethod
  def update(carry, x_proj, h_proj, vectors):
    h = jnp.tanh(x_proj + h_proj)
    return h, h


class LSTM(Cell):
  num_gates = 4
  forget_block = 1

  @classmethod
  def zero_carry(cls, batch_size: int, hidden_size: int):
    zeros = jnp.zeros((batch_size, hidden_size), jnp.float32)
    return zeros, zeros  # (c, h), as Flax's LSTM cells

  @staticmethod
  def hidden(carry):
    return carry[1]

  @staticmethod
  def with_hidden(carry, h):
    return carry[0], h

  @staticmethod
  def update(carry, x_proj, h_proj, vectors):
    c, _ = carry
    i, f, g, o = jnp.split(x_proj + h_proj, 4, axis=-1)
    c = _sigmoid(f) * c + _sigmoid(i) * jnp.tanh(g)
    h = _sigmoid(o) * jnp.tanh(c)
    return (c, h), h


class PeepholeLSTM(LSTM):
  """Gers & Schmidhuber 2000: diagonal connections from the cell state to the three gates."""
  vectors = ("peephole_i", "peephole_f", "peephole_o")

  @staticmethod
  def update(carry, x_proj, h_proj, vectors):
    c, _ = carry
    i, f, g, o = jnp.split(x_proj + h_proj, 4, axis=-1)
    i = _sigmoid(i + vectors["peephole_i"] * c)
    f = _sigmoid(f + vectors["peephole_f"] * c)
    c = f * c + i * jnp.tanh(g)
    h = _sigmoid(o + vectors["peephole_o"] * c) * jnp.tanh(c)
    return (c, h), h


class CIFG(LSTM):
  """Coupled input-forget gate (Greff et al. 2017; Olah's third variant): input = 1 - forget."""
  num_gates = 3
  forget_block = 0

  @staticmethod
  def update(carry, x_proj, h_proj, vectors):
    c, _ = carry
    f, g, o = jnp.split(x_proj + h_proj, 3, axis=-1)
    f = _sigmoid(f)
    c = f * c + (1.0 - f) * jnp.tanh(g)
    h = _sigmoid(o) * jnp.tanh(c)
    return (c, h), h


class GRU(Cell):
  """Cho et al. 2014, as nn.GRUCell and torch.nn.GRU: the reset gate scales W_hn h + b_hn."""
  num_gates = 3
  vectors = ("recurrent_bias_n",)

  @staticmethod
  def update(carry, x_proj, h_proj, vectors):
    x_r, x_z, x_n = jnp.split(x_proj, 3, axis=-1)
    h_r, h_z, h_n = jnp.split(h_proj, 3, axis=-1)
    r = _sigmoid(x_r + h_r)
    z = _sigmoid(x_z + h_z)
    n = jnp.tanh(x_n + r * (h_n + vectors["recurrent_bias_n"]))
    h = (1.0 - z) * n + z * carry
    return h, h


CELL_CLASSES: dict[str, type[Cell]] = {
    "rnn": SimpleRNN, "lstm": LSTM, "peephole": PeepholeLSTM, "cifg": CIFG, "gru": GRU}
