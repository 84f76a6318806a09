"""The dilated front end and the context module of Yu & Koltun (2016).

    dilated 3x3 convolution:  (F *_l k)(p) = sum_{s + l t = p} F(s) k(t)        (section 2)

`FrontEnd`: VGG-16 adapted to dense prediction (section 4): the last two pooling layers are
removed, the convolutions after them are dilated by 2 (conv5) and 4 (fc6), so the output is at
1/8 of the input resolution. `FrontEnd(FRONT_END_VGG16)` is the paper's network;
`FRONT_END_SMALL` is the same structure (3 pools, conv4 undilated, conv5 dilated 2, fc6
dilated 4, two 1x1 layers) with fewer and narrower layers, for a CPU; `FRONT_END_LOCAL` keeps
only conv1-conv3 and the pools (a 30 x 30 pixel window per score, `front_end_receptive_field`),
so that on large items the context module has context to add.

`ContextModule`: 8 layers of 3x3 convolutions dilated 1, 1, 2, 4, 8, 16, 1 and a final 1x1
(Table 1), ReLU after the first 7; "basic" keeps C channels, "large" widens to 2C, 2C, 4C, 8C,
16C, 32C, 32C, C. Initialised as the identity (section 3): basic exactly (eq. 4), large with
the generalised identity plus small Gaussian noise (eq. 5). Because layers 1-7 truncate, the
module at init computes max(x, 0): the identity on its non-negative part, as in the paper.

Parameters carry logical axis names only: "embed" (input channels), "mlp" (output channels),
"classes" (the C class-score channels output, which a tensor axis need not divide; as
input they are left unnamed, since a kernel may not name one axis twice).
"""
from __future__ import annotations

import dataclasses
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

CONTEXT_DILATIONS = (1, 1, 2, 4, 8, 16, 1, 1)
CONTEXT_KERNELS = (3, 3, 3, 3, 3, 3, 3, 1)
LARGE_WIDTHS = (2, 2, 4, 8, 16, 32, 32, 1)  # multiples of C (Table 1, "Large")
IDENTITY_NOISE = 1e-3  # sigma of eq. 5: "sigma << C / c_{i+1}"
HE_INIT = nn.initializers.variance_scaling(2.0, "fan_in", "normal")


def receptive_field(kernels: Sequence[int], dilations: Sequence[int]) -> list[int]:
  """Side of the receptive field after each stride-1 layer: r_i = r_{i-1} + (k_i - 1) d_i."""
  sides, side = [], 1
  for k, d in zip(kernels, dilations):
    side += (k - 1) * d
    sides.append(side)
  return sides


def context_receptive_field() -> list[int]:
  """Table 1's receptive-field row: 3, 5, 9, 17, 33, 65, 67, 67."""
  return receptive_field(CONTEXT_KERNELS, CONTEXT_DILATIONS)


def identity_kernel(kernel: int, c_in: int, c_out: int, classes: int, noise: float, rng):
  """Eq. 5: k(t, a -> b) = C / c_out if t = 0 and floor(aC / c_in) = floor(bC / c_out), else
    epsilon ~ N(0, noise^2). With c_in = c_out = C and noise 0 it is eq. 4, the exact identity."""
  a = np.arange(c_in)[:, None] * classes // c_in
  b = np.arange(c_out)[None, :] * classes // c_out
  identity = np.zeros((kernel, kernel, c_in, c_out), bool)
  identity[kernel // 2, kernel // 2] = a == b
  epsilon = noise * jax.random.normal(rng, identity.shape) if noise else jnp.zeros(identity.shape)
  return jnp.where(identity, classes / c_out, epsilon)


def conv(features, kernel, dilation, name, in_axis, out_axis, dtype, kernel_init=HE_INIT):
  """A kernel x kernel convolution dilated by `dilation`, zero-padded to keep the size."""
  return nn.Conv(features, (kernel, kernel), kernel_dilation=(dilation, dilation), padding="SAME",
                 name=name, dtype=dtype,
                 kernel_init=nn.with_logical_partitioning(kernel_init, (None, None, in_axis, out_axis)),
                 bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (out_axis,)))


@dataclasses.dataclass(frozen=True)
class FrontEndSpec:
  blocks: tuple[tuple[int, int], ...]  # (convolutions, channels) of conv1 ... conv5
  fc_width: int                         # fc6 and fc7 channels
  fc6_kernel: int                       # 7 in VGG-16 (fc6 as a convolution)


# Simonyan & Zisserman's configuration D.
FRONT_END_VGG16 = FrontEndSpec(blocks=((2, 64), (2, 128), (3, 256), (3, 512), (3, 512)),
                               fc_width=4096, fc6_kernel=7)
FRONT_END_SMALL = FrontEndSpec(blocks=((1, 16), (1, 32), (2, 64), (1, 64), (1, 64)),
                               fc_width=128, fc6_kernel=3)
FRONT_END_TINY = FrontEndSpec(blocks=((1, 8), (1, 8), (1, 16), (1, 16), (1, 16)),
                              fc_width=16, fc6_kernel=3)
# Conv1-conv3 and the three pools of `small`, no conv4/conv5, fc6 as a 1x1: class scores at
# 1/8 from a 30 x 30 pixel window, so that labels of large items need context it cannot see.
FRONT_END_LOCAL = FrontEndSpec(blocks=((1, 16), (1, 32), (2, 64), (0, 64), (0, 64)),
                               fc_width=128, fc6_kernel=1)
FRONT_ENDS = {"vgg16": FRONT_END_VGG16, "small": FRONT_END_SMALL, "tiny": FRONT_END_TINY,
              "local": FRONT_END_LOCAL}


def front_end_receptive_field(spec: FrontEndSpec) -> int:
  """Side in input pixels of the window one output score of `FrontEnd(spec)` reads: each
  k x k layer dilated d adds (k - 1) d steps of the current stride, each 2x2 pool one step."""
  side, stride = 1, 1
  for block, (convs, _) in enumerate(spec.blocks, start=1):
    side += convs * 2 * (2 if block == 5 else 1) * stride
    if block <= 3:
      side, stride = side + stride, stride * 2
  return side + (spec.fc6_kernel - 1) * 4 * stride


class FrontEnd(nn.Module):
  """VGG with pool4 and pool5 removed; conv5 dilated 2, fc6 dilated 4; class scores at 1/8."""
  spec: FrontEndSpec
  num_classes: int
  dropout: float = 0.0  # VGG's 0.5 after fc6 and fc7
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    in_axis = None  # the image's channels: no mesh axis divides 1 or 3
    for block, (convs, width) in enumerate(self.spec.blocks, start=1):
      dilation = 2 if block == 5 else 1
      for i in range(1, convs + 1):
        x = nn.relu(conv(width, 3, dilation, f"conv{block}_{i}", in_axis, "mlp", self.dtype)(x))
        in_axis = "embed"
      if block <= 3:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = nn.relu(conv(self.spec.fc_width, self.spec.fc6_kernel, 4, "fc6", "embed", "mlp", self.dtype)(x))
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    x = nn.relu(conv(self.spec.fc_width, 1, 1, "fc7", "embed", "mlp", self.dtype)(x))
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return conv(self.num_classes, 1, 1, "final", "embed", "classes", self.dtype)(x)


class ContextModule(nn.Module):
  """Table 1: C -> C class scores through 8 layers of exponentially growing dilation."""
  num_classes: int
  size: str = "basic"  # "basic" | "large"
  noise: float = IDENTITY_NOISE  # eq. 5's sigma (large only; basic is the exact identity)
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    if self.size not in ("basic", "large"):
      raise ValueError(f"context module size must be 'basic' or 'large', got {self.size!r}")
    c = self.num_classes
    widths = [c * m for m in LARGE_WIDTHS] if self.size == "large" else [c] * 8
    noise = self.noise if self.size == "large" else 0.0
    c_in, last = c, len(widths) - 1
    for i, (width, k, d) in enumerate(zip(widths, CONTEXT_KERNELS, CONTEXT_DILATIONS)):
      init = lambda rng, shape, dtype=jnp.float32, c_in=c_in, width=width, k=k: identity_kernel(
          k, c_in, width, c, noise, rng).astype(dtype)
      in_axis = None if c_in == c else "embed"  # one logical name may not repeat
      out_axis = "classes" if width == c else "mlp"
      x = conv(width, k, d, f"ctx{i + 1}", in_axis, out_axis, self.dtype, kernel_init=init)(x)
      if i < last:
        x = nn.relu(x)
      c_in = width
    return x


class DilatedSegmenter(nn.Module):
  """Front end, then optionally a context module, on images (B, H, W, ch) with H, W multiples
  of 8: class scores (B, H/8, W/8, C)."""
  front_end: str = "small"  # a key of FRONT_ENDS
  num_classes: int = 11
  context: str = "none"     # "none" | "basic" | "large"
  dropout: float = 0.0
  identity_noise: float = IDENTITY_NOISE
  train_front_end: bool = True  # False: gradients stop at the front end's output (section 4's
                                # second stage, the context module trained on a fixed front end)
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, images, train: bool = False):
    if self.front_end not in FRONT_ENDS:
      raise ValueError(f"front_end must be one of {', '.join(FRONT_ENDS)}, got {self.front_end!r}")
    scores = FrontEnd(FRONT_ENDS[self.front_end], self.num_classes, self.dropout, self.dtype,
                      name="front_end")(images, train)
    if not self.train_front_end:
      scores = jax.lax.stop_gradient(scores)
    if self.context != "none":
      scores = ContextModule(self.num_classes, self.context, self.identity_noise, self.dtype,
                             name="context")(scores)
    return scores
