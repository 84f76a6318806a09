"""One scan driver for every recurrent cell: layers, directions, padding masks, dropout.

    rnn = RNN(hidden_size=128, cell="lstm", num_layers=2, bidirectional=True)
    variables = rnn.init(key, inputs)                    # inputs [B, T, F]
    outputs, carry = rnn.apply(variables, inputs, mask=mask)   # outputs [B, T, 2H]

Speed: each layer and direction projects the inputs of all T steps in one matmul
(`x @ W_x + b`, [T*B, F] x [F, G*H]) before the scan; the scan body keeps only the
recurrent matmul `h @ W_h` (one fused [H, G*H] gate matmul) and the elementwise gates.
The scan has its own backward pass (`scan_cell`), which computes the recurrent kernel's
gradient in one matmul after the loop. Layers pass time-major [T, B, ...] arrays.

Masks: a padded step (mask False) leaves the carry unchanged and outputs zeros, and its
input is zeroed before the projection, so padded values reach neither the outputs nor
the gradients. The backward direction is the same scan run from the last step to the
first: steps after a sequence's end are padded, so they pass the zero carry through and
the backward pass starts at the sequence's last real step, whatever its length.
"""
from __future__ import annotations

import functools
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from papers.lstm.cells import CELL_CLASSES, uniform

CELLS = ("rnn", "lstm", "peephole", "cifg", "gru")


def _bias_init(num_gates: int, forget_block: int | None, forget_bias: float):
  """Zeros, except the forget gate's block (forget_bias: Gers et al. 2000, Jozefowicz et al. 2015)."""
  def init(key, shape, dtype=jnp.float32):
    del key
    bias = jnp.zeros(shape, dtype)
    if forget_block is None or not forget_bias:
      return bias
    size = shape[-1] // num_gates
    return bias.at[forget_block * size:(forget_block + 1) * size].set(forget_bias)
  return init


def _masked_update(cell_cls, carry, x_proj, h_proj, vectors, mask):
  """The cell's elementwise step; a padded row (mask False) keeps its carry and outputs zeros."""
  new_carry, out = cell_cls.update(carry, x_proj, h_proj, vectors)
  if mask is None:
    return new_carry, out
  keep = mask[:, None]
  new_carry = jax.tree.map(lambda new, old: jnp.where(keep, new, old), new_carry, carry)
  return new_carry, jnp.where(keep, out, 0.0)


def _scan_forward(cell_cls, reverse, unroll, dtype, kernel, vectors, x_proj, carry, mask):
  """(final carry, outputs [T, B, H], (carry before each step, h @ W_h of each step))."""
  kernel = kernel.astype(dtype)

  def body(carry, xs):
    x_t, mask_t = xs
    h_proj = jnp.dot(cell_cls.hidden(carry).astype(dtype), kernel,
                     preferred_element_type=jnp.float32)
    new_carry, out = _masked_update(cell_cls, carry, x_t.astype(jnp.float32), h_proj, vectors, mask_t)
    return new_carry, (out, (carry, h_proj))

  carry, (outputs, saved) = jax.lax.scan(body, carry, (x_proj, mask), reverse=reverse, unroll=unroll)
  return carry, outputs, saved


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2, 3))
def scan_cell(cell_cls, reverse, unroll, dtype, kernel, vectors, x_proj, carry, mask):
  """Runs a cell over time-major x_proj [T, B, G*H]: returns (final carry, outputs [T, B, H]).

  The gradient is autodiff's, reorganised for speed: the backward scan keeps only the
  per-step matmul d(h @ W_h) @ W_h^T, and the kernel's gradient, sum_t h_t^T d(h_t @ W_h),
  is one [H, T*B] x [T*B, G*H] matmul after it (autodiff of a scan would add a [H, G*H]
  outer product into the kernel's gradient at every step).
  """
  carry, outputs, _ = _scan_forward(cell_cls, reverse, unroll, dtype, kernel, vectors, x_proj,
                                    carry, mask)
  return carry, outputs


def _scan_cell_fwd(cell_cls, reverse, unroll, dtype, kernel, vectors, x_proj, carry, mask):
  carry, outputs, saved = _scan_forward(cell_cls, reverse, unroll, dtype, kernel, vectors,
                                        x_proj, carry, mask)
  return (carry, outputs), (kernel, vectors, x_proj, mask, saved)


def _scan_cell_bwd(cell_cls, reverse, unroll, dtype, residuals, cotangents):
  kernel, vectors, x_proj, mask, (carries, h_projs) = residuals
  d_final_carry, d_outputs = cotangents
  transposed = kernel.astype(dtype).T

  def body(accumulated, xs):
    d_carry, d_vectors = accumulated
    x_t, mask_t, carry_t, h_proj_t, d_out_t = xs
    _, vjp = jax.vjp(lambda c, x, hp, v: _masked_update(cell_cls, c, x, hp, v, mask_t),
                     carry_t, x_t.astype(jnp.float32), h_proj_t, vectors)
    d_carry, d_x, d_h_proj, d_v = vjp((d_carry, d_out_t))
    d_h = jnp.dot(d_h_proj.astype(dtype), transposed, preferred_element_type=jnp.float32)
    d_carry = cell_cls.with_hidden(d_carry, cell_cls.hidden(d_carry) + d_h)
    return (d_carry, jax.tree.map(jnp.add, d_vectors, d_v)), (d_x, d_h_proj)

  (d_carry, d_vectors), (d_x_proj, d_h_projs) = jax.lax.scan(
      body, (d_final_carry, jax.tree.map(jnp.zeros_like, vectors)),
      (x_proj, mask, carries, h_projs, d_outputs), reverse=not reverse, unroll=unroll)
  d_kernel = jnp.einsum("tbh,tbg->hg", cell_cls.hidden(carries).astype(dtype),
                        d_h_projs.astype(dtype), preferred_element_type=jnp.float32)
  return (d_kernel.astype(kernel.dtype), d_vectors, d_x_proj.astype(x_proj.dtype), d_carry, None)


scan_cell.defvjp(_scan_cell_fwd, _scan_cell_bwd)


class Recurrence(nn.Module):
  """One layer in one direction, time-major: the hoisted input projection, then the scan."""
  hidden_size: int
  cell: str = "lstm"
  reverse: bool = False
  init_scale: float = 0.0
  forget_bias: float = 1.0
  unroll: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, inputs, carry, mask=None):  # inputs [T, B, F], mask [T, B] or None
    cell_cls = CELL_CLASSES[self.cell]
    width = cell_cls.num_gates * self.hidden_size
    kernel_init = (uniform(self.init_scale) if self.init_scale > 0
                   else nn.initializers.lecun_normal())  # fan-in F per gate, as Flax's cells
    bias_init = (uniform(self.init_scale) if self.init_scale > 0 else
                 _bias_init(cell_cls.num_gates, cell_cls.forget_block, self.forget_bias))
    kernel = self.param("input_kernel", nn.with_logical_partitioning(kernel_init, ("embed", "hidden")),
                        (inputs.shape[-1], width))
    bias = self.param("bias", nn.with_logical_partitioning(bias_init, ("hidden",)), (width,))
    # All T input projections in one [T*B, F] x [F, G*H] matmul.
    x_proj = jnp.dot(inputs.astype(self.dtype), kernel.astype(self.dtype)) + bias.astype(self.dtype)
    x_proj = nn.with_logical_constraint(x_proj, ("length", "batch", "hidden"))
    recurrent_kernel, vectors = cell_cls(self.hidden_size, init_scale=self.init_scale,
                                         dtype=self.dtype, name="cell").weights()
    carry, outputs = scan_cell(cell_cls, self.reverse, self.unroll, self.dtype, recurrent_kernel,
                               vectors, x_proj, carry, mask)
    return outputs, carry


class RNN(nn.Module):
  """Stacked (optionally bidirectional) recurrent layers of one cell kind over [B, T, F] inputs.

  Dropout (rate `dropout`, "dropout" rng stream, training only) is applied to every layer's
  input and to the last layer's output: the non-recurrent connections, as Zaremba et al. 2014.
  The carry is a tuple over layers (and, bidirectional, directions: layer 0 forward, layer 0
  backward, layer 1 forward, ..., torch.nn.LSTM's order) of the cell's carry: h [B, H] for
  rnn and gru, (c, h) for the LSTMs; all float32.
  """
  hidden_size: int
  cell: str = "lstm"
  num_layers: int = 1
  bidirectional: bool = False
  dropout: float = 0.0                # on non-recurrent connections only (layer inputs/outputs)
  init_scale: float = 0.0             # > 0: every parameter U(-init_scale, init_scale) (Zaremba)
  dtype: Any = jnp.float32
  forget_bias: float = 1.0            # initial forget-gate bias of the LSTMs (default init only)
  unroll: int = 1                     # time steps per scan iteration

  @property
  def num_directions(self) -> int:
    return 2 if self.bidirectional else 1

  def zero_carry(self, batch_size: int):
    """Zeros for every layer and direction; usable on an unbound module."""
    cell_cls = CELL_CLASSES[self._checked_cell()]
    return tuple(cell_cls.zero_carry(batch_size, self.hidden_size)
                 for _ in range(self.num_layers * self.num_directions))

  def _checked_cell(self) -> str:
    if self.cell not in CELLS:
      raise ValueError(f"cell must be one of {', '.join(CELLS)}, got {self.cell!r}")
    return self.cell

  @nn.compact
  def __call__(self, inputs, carry=None, mask=None, *, train: bool = False):
    """inputs [B, T, F]; carry: what a previous call returned (None = zeros); mask [B, T] bool,
    True = real step (a padded step leaves the carry unchanged and outputs zeros).
    Returns (outputs [B, T, H or 2H], final carry)."""
    self._checked_cell()
    if self.num_layers < 1:
      raise ValueError(f"num_layers must be >= 1, got {self.num_layers}")
    if carry is None:
      carry = self.zero_carry(inputs.shape[0])
    if len(carry) != self.num_layers * self.num_directions:
      raise ValueError(f"carry has {len(carry)} entries; this RNN needs "
                       f"{self.num_layers * self.num_directions} (layers x directions)")
    # Time-major from here on: each layer's projection is then one plain matmul, and the
    # scan slices its leading axis.
    x = jnp.swapaxes(inputs, 0, 1)
    if mask is not None:
      mask = jnp.swapaxes(mask.astype(bool), 0, 1)
      x = jnp.where(mask[..., None], x, jnp.zeros((), x.dtype))  # padded values never enter
    x = nn.with_logical_constraint(x, ("length", "batch", "act_embed"))
    drop = nn.Dropout(self.dropout, deterministic=not train)
    new_carry = []
    for layer in range(self.num_layers):
      if self.dropout > 0:
        x = drop(x)
      outputs = []
      for direction in range(self.num_directions):
        index = layer * self.num_directions + direction
        out, c = Recurrence(
            self.hidden_size, self.cell, reverse=direction == 1, init_scale=self.init_scale,
            forget_bias=self.forget_bias, unroll=self.unroll, dtype=self.dtype,
            name=f"layer_{layer}" + ("_backward" if direction else ""))(x, carry[index], mask)
        outputs.append(out)
        new_carry.append(c)
      x = outputs[0] if len(outputs) == 1 else jnp.concatenate(outputs, axis=-1)
      x = nn.with_logical_constraint(x, ("length", "batch", "hidden"))
    if self.dropout > 0:
      x = drop(x)
    return jnp.swapaxes(x, 0, 1), tuple(new_carry)
