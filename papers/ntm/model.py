"""Neural Turing Machine (Graves, Wayne & Danihelka 2014) and its LSTM baseline.

Shapes: inputs (batch, time, features) -> logits (batch, time, outputs). The
addressing functions are pure jnp on one example's (N,) weighting and (N, M)
memory; the cell vmaps them over batch and heads.

Numerical safety (the copy task diverges easily): cosine similarity uses a
norm with an epsilon inside the square root, sharpening is a softmax of
gamma * log(w + eps) (no 0 ** gamma, no 0 * log 0 in the gradient), and the
controller's head parameters are clipped to (-clip, clip) before their
activations.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

_NORM_EPS = 1e-16  # below any nonzero row's squared norm (the constant 1e-6 start has 2e-11)
_LOG_EPS = 1e-12   # keeps log finite at exact zeros; bounds the gradient of log by 1e12


# --------------------------------------------------------------------------
# Addressing (Section 3.3): content -> interpolation -> shift -> sharpening.
# --------------------------------------------------------------------------
def cosine_similarity(key, memory):
  """K[k, M(i)] of Eq. 6 for every row i; key (M,), memory (N, M) -> (N,)."""
  dot = memory @ key
  norms = jnp.sqrt(jnp.sum(memory**2, -1) + _NORM_EPS) * jnp.sqrt(jnp.sum(key**2) + _NORM_EPS)
  return dot / norms


def content_weighting(key, beta, memory):
  """Eq. 5: softmax over locations of beta * cosine similarity."""
  return jax.nn.softmax(beta * cosine_similarity(key, memory))


def interpolate(w_content, w_prev, gate):
  """Eq. 7: g * w_c + (1 - g) * w_{t-1}."""
  return gate * w_content + (1.0 - gate) * w_prev


def circular_shift(w, shift):
  """Eq. 8: circular convolution with a distribution over shifts -R..R.

  shift has 2R+1 entries, shift[k] for offset k-R; w~(i) = sum_k s_k w(i - k).
  """
  radius = (shift.shape[-1] - 1) // 2
  rolled = jnp.stack([jnp.roll(w, k) for k in range(-radius, radius + 1)])
  return jnp.sum(shift[:, None] * rolled, 0)


def sharpen(w, gamma):
  """Eq. 9: w^gamma / sum w^gamma, as a softmax in log space (gamma >= 1)."""
  return jax.nn.softmax(gamma * jnp.log(w + _LOG_EPS))


def address(memory, w_prev, key, beta, gate, shift, gamma):
  """The full addressing pipeline of Figure 2 for one head of one example."""
  w = content_weighting(key, beta, memory)
  w = interpolate(w, w_prev, gate)
  w = circular_shift(w, shift)
  return sharpen(w, gamma)


def read(memory, w):
  """Eq. 2: r = sum_i w(i) M(i)."""
  return w @ memory


def write(memory, w, erase, add):
  """Eqs. 3-4: M(i) <- M(i) (1 - w(i) e) + w(i) a."""
  return memory * (1.0 - jnp.outer(w, erase)) + jnp.outer(w, add)


# --------------------------------------------------------------------------
# Layers with logical axis names (the trainer maps them to mesh axes). Only the
# controller / LSTM hidden units are named ("mlp"); dimensions whose size the
# task fixes (input channels, the concatenated controller input, head
# parameters, output channels: 29, 129, 26, 9, ...) stay unsharded (None), so
# any mesh divides them.
# --------------------------------------------------------------------------
def zero_carry(batch, features):
  """The (c, h) an LSTM starts an episode with."""
  zeros = jnp.zeros((batch, features), jnp.float32)
  return zeros, zeros


def _dense(features, axes, name):
  return nn.Dense(
      features, name=name,
      kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(), axes),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, axes[1:]))


class LSTMCell(nn.Module):
  """LSTM with optional peepholes (the form used by Graves 2013)."""
  features: int
  peepholes: bool = True

  @nn.compact
  def __call__(self, carry, x):
    c, h = carry
    z = _dense(4 * self.features, (None, "mlp"), "gates")(jnp.concatenate([x, h], -1))
    i, f, g, o = jnp.split(z, 4, axis=-1)
    if self.peepholes:
      peep = lambda n: self.param(
          n, nn.with_logical_partitioning(nn.initializers.zeros, ("mlp",)), (self.features,))
      i = i + peep("peep_i") * c
      f = f + peep("peep_f") * c
    c = jax.nn.sigmoid(f + 1.0) * c + jax.nn.sigmoid(i) * jnp.tanh(g)  # forget bias 1
    if self.peepholes:
      o = o + self.param("peep_o", nn.with_logical_partitioning(
          nn.initializers.zeros, ("mlp",)), (self.features,)) * c
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return (c, h), h



# --------------------------------------------------------------------------
# The NTM.
# --------------------------------------------------------------------------
class NTMCell(nn.Module):
  """One time step: controller -> write heads -> read heads -> output.

  Carry: (controller state, memory (B,N,M), reads (B,H,M), read weights
  (B,H,N), write weights (B,H,N)). Writes happen before reads, so reads see
  M_t (Eq. 2 reads M_t, which Eqs. 3-4 produce from M_{t-1}).
  """
  output_size: int
  controller: str = "lstm"          # lstm | ff
  controller_size: int = 100
  controller_layers: int = 1
  memory_width: int = 20
  num_heads: int = 1                # read heads; the same number of write heads
  shift_range: int = 1              # allowed shifts -R..R
  clip: float = 20.0

  def _head_params(self, h, name, write_head):
    """Controller output -> per-head (key, beta, gate, shift, gamma[, erase, add])."""
    m, s = self.memory_width, 2 * self.shift_range + 1
    sizes = [m, 1, 1, s, 1] + ([m, m] if write_head else [])
    z = _dense(self.num_heads * sum(sizes), ("mlp", None), name)(h)
    z = jnp.clip(z, -self.clip, self.clip).reshape(h.shape[0], self.num_heads, -1)
    key, beta, gate, shift, gamma, *rest = jnp.split(z, list(_cumsum(sizes[:-1])), -1)
    params = dict(key=key, beta=jax.nn.softplus(beta[..., 0]), gate=jax.nn.sigmoid(gate[..., 0]),
                  shift=jax.nn.softmax(shift, -1), gamma=1.0 + jax.nn.softplus(gamma[..., 0]))
    if write_head:
      params.update(erase=jax.nn.sigmoid(rest[0]), add=jnp.tanh(rest[1]))
    return params

  @nn.compact
  def __call__(self, carry, x):
    ctrl_state, memory, reads, w_read, w_write = carry
    batch = x.shape[0]
    ctrl_in = jnp.concatenate([x, reads.reshape(batch, -1)], -1)
    h, new_state = ctrl_in, []
    for layer in range(self.controller_layers):
      name = "controller" if self.controller_layers == 1 else f"controller_{layer}"
      if self.controller == "lstm":
        state, h = LSTMCell(self.controller_size, name=name)(ctrl_state[layer], h)
        new_state.append(state)
      elif self.controller == "ff":
        h = jax.nn.sigmoid(_dense(self.controller_size, (None, "mlp"), name)(h))
      else:
        raise ValueError(f"controller must be 'lstm' or 'ff', got {self.controller!r}")
    ctrl_state = tuple(new_state)

    per_head = jax.vmap(jax.vmap(address, in_axes=(None, 0, 0, 0, 0, 0, 0)))  # batch, heads
    wp = self._head_params(h, "write_heads", write_head=True)
    w_write = per_head(memory, w_write, wp["key"], wp["beta"], wp["gate"], wp["shift"], wp["gamma"])
    for head in range(self.num_heads):  # erasures commute, so the order does not matter
      memory = jax.vmap(write)(memory, w_write[:, head], wp["erase"][:, head], wp["add"][:, head])

    rp = self._head_params(h, "read_heads", write_head=False)
    w_read = per_head(memory, w_read, rp["key"], rp["beta"], rp["gate"], rp["shift"], rp["gamma"])
    reads = jax.vmap(jax.vmap(read, in_axes=(None, 0)))(memory, w_read)

    out_in = jnp.concatenate([h, reads.reshape(batch, -1)], -1)
    logits = _dense(self.output_size, ("mlp", None), "output")(out_in)
    return (ctrl_state, memory, reads, w_read, w_write), (logits, w_read, w_write)


def _cumsum(xs):
  total = 0
  for x in xs:
    total += x
    yield total


class NTM(nn.Module):
  """NTM over a sequence; returns logits and the read/write weightings.

  The memory starts as the constant 1e-6 (constant initialisation is what
  makes training stable from a fixed seed), and every head starts focused on
  location 0, which breaks the symmetry a uniform start would keep.
  """
  output_size: int
  controller: str = "lstm"
  controller_size: int = 100
  controller_layers: int = 1
  memory_locations: int = 128
  memory_width: int = 20
  num_heads: int = 1
  shift_range: int = 1
  clip: float = 20.0
  memory_init: float = 1e-6

  @nn.compact
  def __call__(self, inputs) -> tuple[jax.Array, dict[str, Any]]:
    batch = inputs.shape[0]
    n, m, h = self.memory_locations, self.memory_width, self.num_heads
    memory = jnp.full((batch, n, m), self.memory_init, jnp.float32)
    w0 = jnp.zeros((batch, h, n), jnp.float32).at[..., 0].set(1.0)
    reads = jnp.einsum("bhn,bnm->bhm", w0, memory)
    layers = self.controller_layers if self.controller == "lstm" else 0
    ctrl = tuple(zero_carry(batch, self.controller_size) for _ in range(layers))
    scan = nn.scan(NTMCell, variable_broadcast="params", split_rngs={"params": False},
                   in_axes=1, out_axes=1)
    cell = scan(self.output_size, self.controller, self.controller_size, self.controller_layers,
                m, h, self.shift_range, self.clip, name="cell")
    _, (logits, w_read, w_write) = cell((ctrl, memory, reads, w0, w0), inputs)
    return logits, dict(read_weights=w_read, write_weights=w_write)


class StackedLSTM(nn.Module):
  """The paper's LSTM baseline: 3 stacked layers as in Graves (2013).

  Every layer sees the input and the layer below; the output layer sees every
  layer (skip connections); cells have peepholes.
  """
  output_size: int
  hidden_size: int = 256
  num_layers: int = 3
  peepholes: bool = True

  @nn.compact
  def __call__(self, inputs) -> tuple[jax.Array, dict[str, Any]]:
    batch = inputs.shape[0]
    below, tops = inputs, []
    for layer in range(self.num_layers):
      cell = nn.scan(LSTMCell, variable_broadcast="params", split_rngs={"params": False},
                     in_axes=1, out_axes=1)(self.hidden_size, self.peepholes, name=f"lstm_{layer}")
      x = below if layer == 0 else jnp.concatenate([inputs, below], -1)
      _, below = cell(zero_carry(batch, self.hidden_size), x)
      tops.append(below)
    logits = _dense(self.output_size, ("mlp", None), "output")(jnp.concatenate(tops, -1))
    return logits, {}


def count_params(params) -> int:
  return sum(x.size for x in jax.tree.leaves(nn.meta.unbox(params)))
