"""The CS231n classifiers as Flax modules (scores only: the losses are in layers.py).

    linear       x -> W x + b                                   (SVM or softmax, assignment 1)
    two_layer    affine - [batch norm] - relu - [dropout] - affine        (assignment 1/2)
    convnet      (conv 3x3 - [spatial batch norm] - relu - 2x2 max pool) x N
                 - affine - [batch norm] - relu - [dropout] - affine       (assignment 2)

`Classifier(kind=...)` builds one of them. Batch norm keeps its running averages in the
"batch_stats" collection and dropout draws from the "dropout" rng stream, both through the pure
functions of layers.py. Parameters carry logical axis names only. With `dtype=None` a module
computes in its inputs' dtype (float64 in the gradient checks).
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

from papers.cs231n import layers

KINDS = ("linear", "two_layer", "convnet")


# Logical axes of a layer's (input, output) features. Consecutive layers alternate them, the
# input axis of one being the output axis of the one before (as a transformer's MLP does with
# ("embed", "mlp") then ("mlp", "embed")), and every layer's output is constrained to rows split
# over the batch axes and features whole (`batch_rows`): left to XLA's propagation, activations
# split over "fsdp" twice (rows and features) got a wrong gradient from the CPU partitioner on a
# data x fsdp x tensor mesh (jax 0.10.2).
AXES = ("embed", "mlp")


def batch_rows(x):
  """x split over the "batch" axes by rows, its other dimensions whole (no-op without a mesh)."""
  return nn.with_logical_constraint(x, ("batch",) + (None,) * (x.ndim - 1))


def other(axis: str) -> str:
  return AXES[1 - AXES.index(axis)]


def dense(features: int, name: str, in_axis: str, dtype=None, init=nn.initializers.lecun_normal(),
          use_bias: bool = True) -> nn.Dense:
  return nn.Dense(features, name=name, dtype=dtype, use_bias=use_bias,
                  kernel_init=nn.with_logical_partitioning(init, (in_axis, other(in_axis))),
                  bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (other(in_axis),)))


class BatchNorm(nn.Module):
  """layers.batch_norm with learned scale / shift ("params") and running averages ("batch_stats")."""
  axis: str = "mlp"  # the logical axis of the features
  momentum: float = 0.9
  eps: float = 1e-5

  @nn.compact
  def __call__(self, x, train: bool):
    features = x.shape[-1]
    gamma = self.param("scale", nn.with_logical_partitioning(nn.initializers.ones, (self.axis,)),
                       (features,))
    beta = self.param("bias", nn.with_logical_partitioning(nn.initializers.zeros, (self.axis,)),
                      (features,))
    mean = self.variable("batch_stats", "mean", jnp.zeros, (features,), jnp.float32)
    var = self.variable("batch_stats", "var", jnp.ones, (features,), jnp.float32)
    y, new_mean, new_var = layers.batch_norm(x, gamma, beta, mean.value, var.value, train=train,
                                             momentum=self.momentum, eps=self.eps)
    if train and not self.is_initializing():
      mean.value, var.value = new_mean, new_var
    return y


class Dropout(nn.Module):
  """layers.dropout with its mask drawn from the "dropout" rng stream in training."""
  keep: float

  @nn.compact
  def __call__(self, x, train: bool):
    if not train or self.keep >= 1.0:
      return x
    return layers.dropout(x, self.keep, train=True, rng=self.make_rng("dropout"))


class Classifier(nn.Module):
  """Class scores (N, num_classes) of images (N, H, W, C)."""
  kind: str = "linear"
  num_classes: int = 10
  hidden: int = 100
  channels: Sequence[int] = (16, 32)
  batchnorm: bool = False
  dropout_keep: float = 1.0
  dtype: jnp.dtype | None = None

  @nn.compact
  def __call__(self, x, train: bool = False):
    if self.kind not in KINDS:
      raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {self.kind!r}")
    axis = "embed"  # of the input features (pixels)
    if self.kind == "convnet":
      for i, features in enumerate(self.channels):
        # The image's few channels are not split (in_axis None for the first convolution).
        x = nn.Conv(features, (3, 3), padding="SAME", use_bias=not self.batchnorm,
                    name=f"conv{i + 1}", dtype=self.dtype,
                    kernel_init=nn.with_logical_partitioning(
                        nn.initializers.he_normal(), (None, None, axis if i else None, other(axis))),
                    bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (other(axis),)))(x)
        x = batch_rows(x)
        axis = other(axis)
        if self.batchnorm:
          x = BatchNorm(axis, name=f"conv{i + 1}_bn")(x, train)
        x = nn.max_pool(nn.relu(x), (2, 2), strides=(2, 2))
    x = x.reshape(x.shape[0], -1)
    if self.kind != "linear":
      # No bias before batch norm: its shift (beta) takes that role.
      x = batch_rows(dense(self.hidden, "hidden", axis, dtype=self.dtype,
                           use_bias=not self.batchnorm)(x))
      axis = other(axis)
      if self.batchnorm:
        x = BatchNorm(axis, name="hidden_bn")(x, train)
      x = Dropout(self.dropout_keep)(nn.relu(x), train)
    # The course starts a linear classifier at W = 0.001 * randn: its weights then show the
    # class templates that training drew, not the initial noise.
    init = nn.initializers.normal(1e-3) if self.kind == "linear" else nn.initializers.lecun_normal()
    return batch_rows(dense(self.num_classes, "scores", axis, dtype=self.dtype, init=init)(x))
