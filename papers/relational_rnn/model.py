"""Relational Memory Core (Santoro et al. 2018) and an LSTM baseline, in Flax linen.

The RMC keeps a memory of `mem_slots` rows. At each step the (projected) input is
appended as one more row, every row attends to every row with multi-head
dot-product attention (+ residual, layer norm, row-wise MLP), the input row is
dropped again, and LSTM-style input/forget gates blend the proposal into the old
memory. This follows the authors' Sonnet implementation: queries come from all
N+1 rows (identical to "queries from memory only" with one attention block), and
there is no output gate: the output is the flattened memory.

Pure and mesh-free: parameters carry logical axis names only. `dtype` is the compute
dtype of the dense layers, attention and layer norms (parameters stay float32); the
recurrent state (the RMC's memory, the LSTM's c and h) and the logits stay float32.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def _dense(features: int, axes: tuple[str | None, str | None], name: str | None = None,
           use_bias: bool = True, dtype=jnp.float32) -> nn.Dense:
  return nn.Dense(
      features, use_bias=use_bias, dtype=dtype, name=name,
      kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(), axes),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (axes[1],)))


def _layer_norm(axis: str | None, name: str | None = None, dtype=jnp.float32) -> nn.LayerNorm:
  return nn.LayerNorm(
      dtype=dtype, name=name,
      scale_init=nn.with_logical_partitioning(nn.initializers.ones, (axis,)),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (axis,)))


def dot_product_attention(q, k, v):
  """softmax(q k^T / sqrt(d)) v over the second-to-last axis; q,k,v: [..., heads, len, d]."""
  logits = jnp.einsum("...qd,...kd->...qk", q * q.shape[-1] ** -0.5, k)
  return jnp.einsum("...qk,...kd->...qd", jax.nn.softmax(logits, axis=-1), v)


class MultiHeadAttention(nn.Module):
  """Self-attention over rows: one projection to per-head (q, k, v), layer-normed."""
  num_heads: int
  key_size: int
  head_size: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):  # x: [batch, rows, mem_size]
    per_head = 2 * self.key_size + self.head_size
    qkv = _dense(self.num_heads * per_head, ("embed", "heads"), "qkv", dtype=self.dtype)(x)
    qkv = _layer_norm("heads", "qkv_norm", dtype=self.dtype)(qkv)
    qkv = qkv.reshape(*x.shape[:-1], self.num_heads, per_head)
    qkv = jnp.swapaxes(qkv, -2, -3)  # [batch, heads, rows, per_head]
    q, k, v = jnp.split(qkv, [self.key_size, 2 * self.key_size], axis=-1)
    out = jnp.swapaxes(dot_product_attention(q, k, v), -2, -3)  # [batch, rows, heads, head]
    return out.reshape(*x.shape[:-1], self.num_heads * self.head_size)


class RelationalMemoryCore(nn.Module):
  """One step of the RMC: (memory [B, N, F], input [B, D]) -> (memory, output [B, N*F])."""
  mem_slots: int = 4
  head_size: int = 32
  num_heads: int = 4
  num_blocks: int = 1
  key_size: int | None = None
  attention_mlp_layers: int = 2
  gate_style: str | None = "unit"  # 'unit' (per element) | 'memory' (per slot) | None
  forget_bias: float = 1.0
  input_bias: float = 0.0
  dtype: jnp.dtype = jnp.float32

  @property
  def mem_size(self) -> int:
    return self.head_size * self.num_heads

  def initial_memory(self, batch_size: int):
    """Identity rows, zero-padded or truncated to mem_size: distinct slots from the start."""
    eye = jnp.eye(self.mem_slots, max(self.mem_size, self.mem_slots))[:, :self.mem_size]
    return jnp.broadcast_to(eye, (batch_size, self.mem_slots, self.mem_size))

  @nn.compact
  def __call__(self, memory, inputs):
    if self.gate_style not in ("unit", "memory", None):
      raise ValueError(f"gate_style must be 'unit', 'memory' or None, got {self.gate_style!r}")
    x = _dense(self.mem_size, (None, "embed"), "input_proj", dtype=self.dtype)(inputs)
    rows = jnp.concatenate([memory, x[:, None, :]], axis=1)
    for b in range(self.num_blocks):  # blocks do not share parameters
      attend = MultiHeadAttention(self.num_heads, self.key_size or self.head_size,
                                  self.head_size, self.dtype, name=f"attention_{b}")
      rows = _layer_norm("embed", f"attention_norm_{b}", self.dtype)(rows + attend(rows))
      h = rows
      for l in range(self.attention_mlp_layers):
        h = _dense(self.mem_size, ("embed", "mlp") if l % 2 == 0 else ("mlp", "embed"),
                   f"mlp_{b}_{l}", dtype=self.dtype)(h)
        if l < self.attention_mlp_layers - 1:
          h = nn.relu(h)
      rows = _layer_norm("embed", f"mlp_norm_{b}", self.dtype)(rows + h)
    proposal = rows[:, :self.mem_slots]

    if self.gate_style is not None:
      gate_size = self.mem_size if self.gate_style == "unit" else 1
      from_input = _dense(2 * gate_size, ("embed", "mlp"), "gate_input", dtype=self.dtype)(x)
      from_memory = _dense(2 * gate_size, ("embed", "mlp"), "gate_memory",
                           dtype=self.dtype)(jnp.tanh(memory))
      input_gate, forget_gate = jnp.split(from_memory + from_input[:, None, :], 2, axis=-1)
      proposal = (jax.nn.sigmoid(input_gate + self.input_bias) * jnp.tanh(proposal)
                  + jax.nn.sigmoid(forget_gate + self.forget_bias) * memory)
    proposal = proposal.astype(memory.dtype)  # the state keeps its dtype (float32) across steps
    return proposal, proposal.reshape(proposal.shape[0], -1)


class LSTMCore(nn.Module):
  """Standard LSTM step: ((c, h), input) -> ((c, h), h); forget-gate bias 1."""
  hidden_size: int = 256
  forget_bias: float = 1.0
  dtype: jnp.dtype = jnp.float32

  def initial_memory(self, batch_size: int):
    zeros = jnp.zeros((batch_size, self.hidden_size), jnp.float32)  # state in float32
    return zeros, zeros

  @nn.compact
  def __call__(self, carry, inputs):
    c, h = carry
    gates = (_dense(4 * self.hidden_size, (None, "mlp"), "input", dtype=self.dtype)(inputs)
             + _dense(4 * self.hidden_size, ("embed", "mlp"), "recurrent", use_bias=False,
                      dtype=self.dtype)(h))
    i, g, f, o = jnp.split(gates, 4, axis=-1)
    c = jax.nn.sigmoid(f + self.forget_bias) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return (c, h), h


def _unrolled(core_cls, unroll: int):
  """The core scanned over time (axis 1 of the inputs); parameters shared across steps."""
  return nn.scan(core_cls, variable_broadcast="params", split_rngs={"params": False},
                 in_axes=1, out_axes=1, unroll=unroll)


class SequenceClassifier(nn.Module):
  """Reads a sequence with a recurrent core, then an MLP on the last output -> logits.

  This is the paper's model for the Nth-farthest task: the core runs over the 8
  inputs, and an MLP on its final output scores the 8 candidate vector labels.
  """
  num_classes: int
  core: str = "rmc"                     # 'rmc' | 'lstm'
  core_kwargs: dict | None = None       # RelationalMemoryCore / LSTMCore fields
  mlp_sizes: Sequence[int] = (256, 256, 256, 256)
  unroll: int = 1
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, inputs):  # inputs: [batch, time, features]
    cores = {"rmc": RelationalMemoryCore, "lstm": LSTMCore}
    if self.core not in cores:
      raise ValueError(f"core must be one of {sorted(cores)}, got {self.core!r}")
    core_cls, kwargs = cores[self.core], dict(self.core_kwargs or {})
    step = _unrolled(core_cls, self.unroll)(dtype=self.dtype, name="core", **kwargs)
    memory = core_cls(dtype=self.dtype, parent=None, **kwargs).initial_memory(inputs.shape[0])
    _, outputs = step(memory, inputs.astype(self.dtype))
    h = outputs[:, -1]
    for l, size in enumerate(self.mlp_sizes):
      h = nn.relu(_dense(size, ("embed", "mlp") if l % 2 == 0 else ("mlp", "embed"),
                         f"head_{l}", dtype=self.dtype)(h))
    out_axes = ("embed" if len(self.mlp_sizes) % 2 == 0 else "mlp", "vocab")
    return _dense(self.num_classes, out_axes, "logits", dtype=self.dtype)(h).astype(jnp.float32)


class _SkipPadding(nn.Module):
  """A core step that leaves the state untouched where the input is padding (token 0)."""
  core_cls: type
  core_kwargs: dict
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, carry, inputs):
    x, active = inputs
    new_carry, out = self.core_cls(dtype=self.dtype, name="cell", **self.core_kwargs)(carry, x)
    keep = lambda new, old: jnp.where(active.reshape(active.shape + (1,) * (new.ndim - 1)), new, old)
    return jax.tree.map(keep, new_carry, carry), out


class CharSeq2Seq(nn.Module):
  """One core reads a character sequence and predicts the next character at every step.

  The sequence-to-sequence model of Learning to Execute: the program's characters, a "go"
  character, then (teacher forcing) the answer's characters; the logits at the go character
  and at each answer character score the next answer character. Padding (token 0) leaves the
  state unchanged, so a left-padded program is read as if it started the sequence.
  """
  vocab_size: int
  core: str = "rmc"                     # 'rmc' | 'lstm'
  core_kwargs: dict | None = None
  embed_size: int = 64
  mlp_sizes: Sequence[int] = ()
  unroll: int = 1
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, tokens):  # tokens: [batch, time] int32 -> logits [batch, time, vocab]
    cores = {"rmc": RelationalMemoryCore, "lstm": LSTMCore}
    if self.core not in cores:
      raise ValueError(f"core must be one of {sorted(cores)}, got {self.core!r}")
    core_cls, kwargs = cores[self.core], dict(self.core_kwargs or {})
    x = nn.Embed(self.vocab_size, self.embed_size, name="embed", embedding_init=
                 nn.with_logical_partitioning(nn.initializers.normal(1.0), ("vocab", "embed")))(tokens)
    step = _unrolled(_SkipPadding, self.unroll)(core_cls, kwargs, self.dtype, name="core")
    memory = core_cls(dtype=self.dtype, parent=None, **kwargs).initial_memory(tokens.shape[0])
    _, h = step(memory, (x.astype(self.dtype), tokens != 0))
    for l, size in enumerate(self.mlp_sizes):
      h = nn.relu(_dense(size, ("embed", "mlp") if l % 2 == 0 else ("mlp", "embed"),
                         f"head_{l}", dtype=self.dtype)(h))
    out_axes = ("embed" if len(self.mlp_sizes) % 2 == 0 else "mlp", "vocab")
    return _dense(self.vocab_size, out_axes, "logits", dtype=self.dtype)(h).astype(jnp.float32)
