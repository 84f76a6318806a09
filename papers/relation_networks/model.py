"""Relation Network (Santoro et al. 2017) over CNN feature cells, and the CNN+MLP baseline.

    RN(O, q) = f_phi( sum_{i,j} g_theta(o_i, o_j, q) )

The objects o_i are the d*d cells of the last CNN feature map, each tagged with its (x, y)
coordinate in [-1, 1]; the sum runs over all d^4 ordered pairs, i = j included, as in the paper.
Parameters carry logical axis names only; the modules run unsharded under plain `jax.jit`.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp


def dense(features: int, name: str, dtype=jnp.float32, in_axis="embed") -> nn.Dense:
  """A dense layer; `in_axis=None` for an input whose width no mesh axis divides (the first
  layer of a head: 2 objects + the 11 question bits)."""
  return nn.Dense(features, name=name, dtype=dtype,
                  kernel_init=nn.with_logical_partitioning(
                      nn.initializers.lecun_normal(), (in_axis, "mlp")),
                  bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("mlp",)))


class BatchStatNorm(nn.Module):
  """Batch normalisation with the statistics of the batch at hand, in training and eval alike.

  No running averages (no mutable collection): evaluation normalises each test batch by its
  own statistics, which is deterministic for a fixed batch. Under a data-parallel jit the
  mean and variance are over the global batch, as on one device.
  """
  epsilon: float = 1e-5

  @nn.compact
  def __call__(self, x):
    features = x.shape[-1]
    scale = self.param("scale", nn.with_logical_partitioning(nn.initializers.ones, ("mlp",)),
                       (features,))
    bias = self.param("bias", nn.with_logical_partitioning(nn.initializers.zeros, ("mlp",)),
                      (features,))
    axes = tuple(range(x.ndim - 1))
    mean = x.mean(axes)
    var = jnp.square(x - mean).mean(axes)
    return (x - mean) * (scale * (var + self.epsilon) ** -0.5) + bias


class ConvEncoder(nn.Module):
  """3x3 stride-2 convolutions, each with batch norm and ReLU (75x75 -> 5x5 with four)."""
  channels: Sequence[int] = (24, 24, 24, 24)
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images):
    x = images
    for k, c in enumerate(self.channels):
      # The image's 3 colour channels are not split over a mesh axis.
      in_axis = None if k == 0 else "embed"
      x = nn.Conv(c, (3, 3), strides=(2, 2), padding="SAME", use_bias=False, name=f"conv{k}",
                  dtype=self.dtype,
                  kernel_init=nn.with_logical_partitioning(
                      nn.initializers.lecun_normal(), (None, None, in_axis, "mlp")))(x)
      # Statistics in float32 even under bfloat16 compute.
      x = nn.relu(BatchStatNorm(name=f"norm{k}")(x.astype(jnp.float32)).astype(self.dtype))
    return x


def cells_as_objects(features):
  """(B, d, d, k) feature map -> (B, d*d, k+2) objects tagged with (x, y) in [-1, 1]."""
  b, h, w, k = features.shape
  ys, xs = jnp.meshgrid(jnp.linspace(-1, 1, h), jnp.linspace(-1, 1, w), indexing="ij")
  coords = jnp.broadcast_to(jnp.stack([xs, ys], -1), (b, h, w, 2)).astype(features.dtype)
  return jnp.concatenate([features, coords], -1).reshape(b, h * w, k + 2)


def relation_pairs(objects, question):
  """(B, N, D) objects, (B, Q) question -> (B, N*N, 2D+Q); row i*N+j is [o_i, o_j, q]."""
  b, n, d = objects.shape
  first = jnp.broadcast_to(objects[:, :, None, :], (b, n, n, d))
  second = jnp.broadcast_to(objects[:, None, :, :], (b, n, n, d))
  q = jnp.broadcast_to(question[:, None, None, :], (b, n, n, question.shape[-1]))
  return jnp.concatenate([first, second, q.astype(objects.dtype)], -1).reshape(b, n * n, -1)


class RelationNetwork(nn.Module):
  """a = f_phi(sum_ij g_theta(o_i, o_j, q)); f's last layer is linear (answer logits)."""
  num_answers: int
  g_units: Sequence[int] = (256, 256, 256, 256)
  f_units: Sequence[int] = (256, 256)
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, objects, question):
    x = relation_pairs(objects, question)
    x = nn.with_logical_constraint(x, ("batch", "length", None))
    for k, units in enumerate(self.g_units):
      x = nn.relu(dense(units, f"g{k}", self.dtype, in_axis=None if k == 0 else "embed")(x))
    # The sum over pairs makes the output invariant to object order; accumulate in float32.
    x = x.astype(jnp.float32).sum(axis=1).astype(self.dtype)
    for k, units in enumerate(self.f_units):
      x = nn.relu(dense(units, f"f{k}", self.dtype)(x))
    return dense(self.num_answers, "logits", self.dtype)(x)


class MLPHead(nn.Module):
  """The CNN+MLP baseline: the RN replaced by an MLP with as many layers and units,
  fed the whole flattened feature map and the question."""
  num_answers: int
  g_units: Sequence[int] = (256, 256, 256, 256)
  f_units: Sequence[int] = (256, 256)
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, objects, question):
    x = jnp.concatenate([objects.reshape(objects.shape[0], -1),
                         question.astype(objects.dtype)], -1)
    for k, units in enumerate(tuple(self.g_units) + tuple(self.f_units)):
      x = nn.relu(dense(units, f"mlp{k}", self.dtype, in_axis=None if k == 0 else "embed")(x))
    return dense(self.num_answers, "logits", self.dtype)(x)


class VisualQA(nn.Module):
  """Image (B, H, W, 3) in [0, 1] and 11-bit question (B, 11) -> answer logits (B, A)."""
  num_answers: int
  head: str = "rn"  # rn | mlp
  channels: Sequence[int] = (24, 24, 24, 24)
  g_units: Sequence[int] = (256, 256, 256, 256)
  f_units: Sequence[int] = (256, 256)
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images, questions):
    images = nn.with_logical_constraint(images.astype(self.dtype), ("batch", None, None, None))
    objects = cells_as_objects(ConvEncoder(self.channels, self.dtype, name="cnn")(images))
    heads = {"rn": RelationNetwork, "mlp": MLPHead}
    if self.head not in heads:
      raise ValueError(f"head must be one of {sorted(heads)}, got {self.head!r}")
    head = heads[self.head](self.num_answers, self.g_units, self.f_units, self.dtype,
                            name=self.head)
    return head(objects, questions).astype(jnp.float32)
