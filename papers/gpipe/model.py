"""A ResNet-style convolutional stack, its residual blocks pipelined with GPipe.

GPipe (Huang et al. 2019) pipelines any network written as a sequence of layers;
here the sequence is `num_blocks` identical pre-activation residual blocks
(He et al. 2016) between a stem convolution and a pooled linear classifier.
GroupNorm stands in for the paper's BatchNorm: it normalises each example on
its own, so splitting the batch into micro-batches changes no number (GPipe's
BatchNorm statistics are per micro-batch).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax.numpy as jnp

from core.pipeline import Pipeline

_part = nn.with_logical_partitioning


def _conv(channels, axes, dtype, zero=False, name=None, strides=1):
  init = nn.initializers.zeros if zero else nn.initializers.he_normal()
  return nn.Conv(channels, (3, 3), strides=strides, use_bias=False, dtype=dtype,
                 kernel_init=_part(init, (None, None) + axes), name=name)


def _norm(groups, dtype, name=None):
  return nn.GroupNorm(num_groups=groups, dtype=dtype, name=name,
                      scale_init=_part(nn.initializers.ones, ("embed",)),
                      bias_init=_part(nn.initializers.zeros, ("embed",)))


class ResidualBlock(nn.Module):
  """x + conv(relu(norm(conv(relu(norm(x)))))): shape-preserving, so it stacks."""
  channels: int
  groups: int = 8
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x):
    h = nn.relu(_norm(self.groups, self.dtype, name="norm1")(x))
    h = _conv(self.channels, ("embed", "mlp"), self.dtype, name="conv1")(h)
    h = nn.relu(_norm(self.groups, self.dtype, name="norm2")(h))
    # zero-initialised last conv: each block starts as the identity, so a deep
    # stack trains from the first step (as Goyal et al. 2017 do with BN scales).
    h = _conv(self.channels, ("mlp", "embed"), self.dtype, zero=True, name="conv2")(h)
    return x + h


class PipelinedResNet(nn.Module):
  """Stem conv -> `num_blocks` ResidualBlocks in `num_stages` GPipe stages -> classifier."""
  num_classes: int = 10
  channels: int = 32
  num_blocks: int = 8
  groups: int = 8
  stem_stride: int = 1
  num_stages: int = 1
  microbatches: int = 1
  remat: bool = True
  unroll: bool = False
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images):
    x = _conv(self.channels, (None, "embed"), self.dtype, name="stem",
              strides=self.stem_stride)(images.astype(self.dtype))
    x = Pipeline(ResidualBlock, dict(channels=self.channels, groups=self.groups, dtype=self.dtype),
                 num_layers=self.num_blocks, num_stages=self.num_stages,
                 microbatches=self.microbatches, remat=self.remat, unroll=self.unroll,
                 name="blocks")(x)
    x = nn.relu(_norm(self.groups, self.dtype, name="final_norm")(x))
    x = jnp.mean(x, axis=(1, 2))
    logits = nn.Dense(self.num_classes, dtype=self.dtype, name="head",
                      kernel_init=_part(nn.initializers.lecun_normal(), ("embed", "vocab")),
                      bias_init=_part(nn.initializers.zeros, ("vocab",)))(x)
    return logits.astype(jnp.float32)
