"""The Deep Speech 2 acoustic model (Amodei et al. 2016): spectrogram -> character log-probs.

    features (B, T, 161) -> [2D conv over (time, frequency), masked BN, clipped ReLU] x n
      -> [bidirectional GRU, its input projection W x batch-normalised per sequence] x m
      -> dense -> log softmax over blank + 28 characters, at every strided time step

Sequence-wise batch normalisation (section 3.2): h_t = f(B(W x_t) + U h_{t-1}); the mean and
variance of B are taken over the batch and every valid time step (padding masked out), and
kept as running averages in the "batch_stats" collection for evaluation. Both directions of
a layer are summed (Deep Speech 1, eq. 3). There is no lookahead convolution: the model is
bidirectional. Parameters carry logical axis names only.

`DeepSpeech2(...)(features, lengths, train=)` returns (log_probs (B, T', V), out_lengths (B,)).
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp


def clipped_relu(x):
  """min(max(x, 0), 20): the paper's activation (section 3)."""
  return jnp.clip(x, 0.0, 20.0)


def out_lengths(lengths, strides: Sequence[int]):
  """Valid time steps after convolutions (odd kernels, k // 2 padding) with these time strides."""
  for s in strides:
    lengths = -(-lengths // s)
  return lengths


def time_mask(lengths, steps: int):
  return jnp.arange(steps)[None, :] < lengths[:, None]


class MaskedBatchNorm(nn.Module):
  """Batch norm over every axis but the last, counting only rows where `mask` (B, T) is set."""
  momentum: float = 0.9
  epsilon: float = 1e-5
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, mask, train: bool):
    features = x.shape[-1]
    mean_ra = self.variable("batch_stats", "mean", jnp.zeros, (features,), jnp.float32)
    var_ra = self.variable("batch_stats", "var", jnp.ones, (features,), jnp.float32)
    scale = self.param("scale", nn.with_logical_partitioning(nn.initializers.ones, ("mlp",)),
                       (features,), jnp.float32)
    bias = self.param("bias", nn.with_logical_partitioning(nn.initializers.zeros, ("mlp",)),
                      (features,), jnp.float32)
    x32 = x.astype(jnp.float32)
    if train:
      m = mask.reshape(mask.shape + (1,) * (x.ndim - mask.ndim)).astype(jnp.float32)
      axes = tuple(range(x.ndim - 1))
      count = jnp.maximum(jnp.broadcast_to(m, x.shape[:-1] + (1,)).sum(axes), 1.0)
      mean = (x32 * m).sum(axes) / count
      var = (jnp.square(x32 - mean) * m).sum(axes) / count
      if not self.is_initializing():
        mean_ra.value = self.momentum * mean_ra.value + (1 - self.momentum) * mean
        var_ra.value = self.momentum * var_ra.value + (1 - self.momentum) * var
    else:
      mean, var = mean_ra.value, var_ra.value
    y = (x32 - mean) * jax.lax.rsqrt(var + self.epsilon) * scale + bias
    return y.astype(self.dtype)


class ProjectedGRUCell(nn.RNNCellBase):
  """A GRU whose input-to-hidden products (3H: reset, update, candidate) come precomputed (and
  batch-normalised); the cell adds the hidden-to-hidden part U h (cuDNN's GRU form)."""
  features: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, carry, x_proj):
    h = carry
    hidden = nn.Dense(3 * self.features, name="hidden", dtype=self.dtype,
                      kernel_init=nn.with_logical_partitioning(nn.initializers.orthogonal(),
                                                               ("hidden", "mlp")),
                      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("mlp",)))(h)
    xr, xz, xn = jnp.split(x_proj, 3, axis=-1)
    hr, hz, hn = jnp.split(hidden, 3, axis=-1)
    r = nn.sigmoid(xr + hr)
    z = nn.sigmoid(xz + hz)
    n = jnp.tanh(xn + r * hn)
    h = (1.0 - z) * n + z * h
    return h, h

  @nn.nowrap
  def initialize_carry(self, rng, input_shape):
    return jnp.zeros(input_shape[:-1] + (self.features,), self.dtype)

  @property
  def num_feature_axes(self) -> int:
    return 1


class RecurrentLayer(nn.Module):
  """Bidirectional GRU layer with sequence-wise BN on its input projections."""
  features: int
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, lengths, train: bool):
    mask = time_mask(lengths, x.shape[1])
    proj = nn.Dense(6 * self.features, use_bias=False, name="input", dtype=self.dtype,
                    kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(),
                                                             ("embed", "mlp")))(x)
    proj = MaskedBatchNorm(dtype=self.dtype, name="bn")(proj, mask, train)
    forward, backward = jnp.split(proj, 2, axis=-1)
    fwd = nn.RNN(ProjectedGRUCell(self.features, self.dtype), name="forward")
    bwd = nn.RNN(ProjectedGRUCell(self.features, self.dtype), name="backward", reverse=True,
                 keep_order=True)
    h = fwd(forward, seq_lengths=lengths) + bwd(backward, seq_lengths=lengths)
    return h * mask[..., None]


class DeepSpeech2(nn.Module):
  conv_channels: Sequence[int] = (32,)
  conv_kernels: Sequence[Sequence[int]] = ((11, 41),)     # (time, frequency)
  conv_strides: Sequence[Sequence[int]] = ((2, 2),)
  rnn_layers: int = 3
  rnn_features: int = 256
  vocab: int = 29
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, features, lengths, train: bool = False):
    x = features.astype(self.dtype)[..., None]            # (B, T, F, 1)
    for i, (c, k, s) in enumerate(zip(self.conv_channels, self.conv_kernels, self.conv_strides)):
      # Symmetric k // 2 padding (odd kernels): output step t sees the same inputs whatever the
      # padded length, so padding a batch changes nothing ('SAME' would shift with the length).
      x = nn.Conv(c, tuple(k), strides=tuple(s), padding=[(k[0] // 2, k[0] // 2),
                                                           (k[1] // 2, k[1] // 2)],
                  use_bias=False, name=f"conv{i}",
                  dtype=self.dtype,
                  kernel_init=nn.with_logical_partitioning(nn.initializers.he_normal(),
                                                           (None, None, None, "mlp")))(x)
      lengths = out_lengths(lengths, [s[0]])
      mask = time_mask(lengths, x.shape[1])
      x = clipped_relu(MaskedBatchNorm(dtype=self.dtype, name=f"conv_bn{i}")(x, mask, train))
      x = x * mask[:, :, None, None]
    x = x.reshape(x.shape[0], x.shape[1], -1)              # (B, T', F' * C)
    for i in range(self.rnn_layers):
      x = RecurrentLayer(self.rnn_features, self.dtype, name=f"rnn{i}")(x, lengths, train)
    logits = nn.Dense(self.vocab, name="output", dtype=self.dtype,
                      kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(),
                                                               ("embed", None)),
                      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (None,)))(x)
    return jax.nn.log_softmax(logits.astype(jnp.float32)), lengths
