"""ResNet v1 (He et al. 2015), its plain baselines, and pre-activation ResNet v2 (He et al. 2016).

    v1 block:  y = relu(F(x) + shortcut(x)),  F = conv-BN-relu-conv-BN         (Fig. 2 / Fig. 5)
    plain:     y = relu(F(x))                  (the same layers, no shortcut)
    v2 block:  y = x + F(x),                   F = BN-relu-conv-BN-relu-conv ... (He 2016, Fig. 4e)

`Model(variant="resnet56")` builds a named network (VARIANTS): the CIFAR nets of 6n+2 layers
(He 2015 section 4.2: 3x3 stem of 16, three stages of n blocks of 16/32/64 filters, option-A
identity shortcuts that subsample and zero-pad), the ImageNet nets of Table 1 (7x7 stem, max
pool, stages of 64-512 filters, option-B projection shortcuts), and the pre-activation
bottleneck CIFAR nets of 9n+2 layers (He 2016 Table 3: ResNet-164 and -1001). Batch norm keeps
its running averages in the "batch_stats" collection. Parameters carry logical axis names only.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

# He et al. 2015: "We initialize the weights as in [13]" (He initialisation, fan-out as in
# the authors' Torch and torchvision code).
KERNEL_INIT = nn.initializers.variance_scaling(2.0, "fan_out", "normal")


def conv(features: int, kernel: int, strides: int, name: str, dtype, in_axis="embed") -> nn.Conv:
  """A bias-free convolution padded by kernel // 2 on each side (as the papers' Torch code);
  `in_axis=None` where no mesh axis divides the input channels (the image)."""
  pad = kernel // 2
  return nn.Conv(features, (kernel, kernel), strides=(strides, strides),
                 padding=((pad, pad), (pad, pad)), use_bias=False, name=name, dtype=dtype,
                 kernel_init=nn.with_logical_partitioning(KERNEL_INIT, (None, None, in_axis, "mlp")))


def batch_norm(train: bool, name: str, dtype) -> nn.BatchNorm:
  # Torch's momentum 0.1 is flax's 0.9. Under a data-parallel jit the statistics are those of
  # the global batch, as on one device.
  return nn.BatchNorm(use_running_average=not train, momentum=0.9, epsilon=1e-5, name=name,
                      dtype=dtype,
                      scale_init=nn.with_logical_partitioning(nn.initializers.ones, ("mlp",)),
                      bias_init=nn.with_logical_partitioning(nn.initializers.zeros, ("mlp",)))


def zero_pad_shortcut(x, features: int, strides: int):
  """Option A (He 2015, section 3.3): identity, subsampled by `strides`, zero-padded to `features`."""
  if strides > 1:
    x = x[:, ::strides, ::strides, :]
  extra = features - x.shape[-1]
  if extra:
    x = jnp.pad(x, ((0, 0), (0, 0), (0, 0), (extra // 2, extra - extra // 2)))
  return x


class BasicBlock(nn.Module):
  """Two 3x3 convolutions (v1); `shortcut` is "A" (zero-pad), "B" (projection) or "none" (plain)."""
  features: int
  strides: int = 1
  shortcut: str = "A"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    y = conv(self.features, 3, self.strides, "conv1", self.dtype)(x)
    y = nn.relu(batch_norm(train, "bn1", self.dtype)(y))
    y = conv(self.features, 3, 1, "conv2", self.dtype)(y)
    y = batch_norm(train, "bn2", self.dtype)(y)
    return nn.relu(y + _shortcut(self, x, self.features, train))


class Bottleneck(nn.Module):
  """1x1 (reduce) - 3x3 - 1x1 (expand x4), v1: the stride sits on the first 1x1 (He 2015's model)."""
  features: int
  strides: int = 1
  shortcut: str = "B"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    y = conv(self.features, 1, self.strides, "conv1", self.dtype)(x)
    y = nn.relu(batch_norm(train, "bn1", self.dtype)(y))
    y = conv(self.features, 3, 1, "conv2", self.dtype)(y)
    y = nn.relu(batch_norm(train, "bn2", self.dtype)(y))
    y = conv(4 * self.features, 1, 1, "conv3", self.dtype)(y)
    y = batch_norm(train, "bn3", self.dtype)(y)
    return nn.relu(y + _shortcut(self, x, 4 * self.features, train))


def _shortcut(block, x, features: int, train: bool, project_bn: bool = True):
  if block.shortcut == "none":
    return 0.0
  if x.shape[-1] == features and block.strides == 1:
    return x
  if block.shortcut == "A":
    return zero_pad_shortcut(x, features, block.strides)
  y = conv(features, 1, block.strides, "proj", block.dtype)(x)
  return batch_norm(train, "proj_bn", block.dtype)(y) if project_bn else y


class PreActBasicBlock(nn.Module):
  """He 2016 full pre-activation (Fig. 4e) with two 3x3 convolutions: BN-relu-3x3 (stride),
  BN-relu-3x3, added to the shortcut with nothing after the addition. Where the shape changes
  the shortcut ("A" zero-pad or "B" projection) takes the pre-activated input, as the bottleneck."""
  features: int
  strides: int = 1
  shortcut: str = "A"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    pre = nn.relu(batch_norm(train, "bn1", self.dtype)(x))
    y = conv(self.features, 3, self.strides, "conv1", self.dtype)(pre)
    y = nn.relu(batch_norm(train, "bn2", self.dtype)(y))
    y = conv(self.features, 3, 1, "conv2", self.dtype)(y)
    if x.shape[-1] == self.features and self.strides == 1:
      return y + x
    return y + _shortcut(self, pre, self.features, train, project_bn=False)


class PreActBottleneck(nn.Module):
  """He 2016 full pre-activation (Fig. 4e): BN-relu-1x1, BN-relu-3x3 (stride), BN-relu-1x1 (x4);
  where the shape changes the shortcut is a 1x1 projection of the pre-activated input."""
  features: int
  strides: int = 1
  shortcut: str = "B"
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool):
    pre = nn.relu(batch_norm(train, "bn1", self.dtype)(x))
    out_features = 4 * self.features
    if x.shape[-1] == out_features and self.strides == 1:
      shortcut = x
    else:
      shortcut = conv(out_features, 1, self.strides, "proj", self.dtype)(pre)
    y = conv(self.features, 1, 1, "conv1", self.dtype)(pre)
    y = nn.relu(batch_norm(train, "bn2", self.dtype)(y))
    y = conv(self.features, 3, self.strides, "conv2", self.dtype)(y)
    y = nn.relu(batch_norm(train, "bn3", self.dtype)(y))
    y = conv(out_features, 1, 1, "conv3", self.dtype)(y)
    return y + shortcut


BLOCKS = {"basic": BasicBlock, "bottleneck": Bottleneck, "preact_basic": PreActBasicBlock,
          "preact_bottleneck": PreActBottleneck}


class RepeatedBlock(nn.Module):
  """One shape-preserving block as a scan body: (carry, _) -> (carry, None)."""
  block: str
  features: int
  shortcut: str
  dtype: jnp.dtype
  train: bool

  @nn.compact
  def __call__(self, x, _):
    return BLOCKS[self.block](self.features, 1, self.shortcut, self.dtype, name="block")(x, self.train), None


def scanned_blocks(count: int, remat: str):
  """`count` identical blocks as one nn.scan (their variables stacked on a leading "layers" axis),
  so XLA compiles the block once however deep the stage; `remat` names a jax.checkpoint_policies
  policy under which each block is rematerialised in the backward pass ("" = none)."""
  body = RepeatedBlock
  if remat:
    body = nn.remat(body, prevent_cse=False, policy=getattr(jax.checkpoint_policies, remat))
  return nn.scan(body, variable_axes={"params": 0, "batch_stats": 0}, split_rngs={"params": True},
                 length=count, metadata_params={nn.PARTITION_NAME: "layers"})


class ResNet(nn.Module):
  """A ResNet (or its plain twin) from stage sizes, widths, block kind, shortcut and stem.

  images: float (B, H, W, C), already normalised; returns logits (B, num_classes).
  """
  stage_sizes: Sequence[int]
  widths: Sequence[int]
  block: str = "basic"
  shortcut: str = "A"           # "A" zero-pad identity, "B" projection where shapes change, "none"
  stem: str = "cifar"           # "cifar": 3x3 conv; "imagenet": 7x7/2 conv + 3x3/2 max pool
  stem_width: int = 16
  num_classes: int = 10
  dtype: jnp.dtype = jnp.float32
  # Blocks 2..n of each stage under one nn.scan ("stage{s}_blocks", variables stacked) instead
  # of n - 1 modules "stage{s}_block{b}": the same function, a compile time flat in depth.
  scan_blocks: bool = False
  remat: str = ""               # with scan_blocks: a jax.checkpoint_policies name, "" = no remat

  @nn.compact
  def __call__(self, images, train: bool = False):
    x = images.astype(self.dtype)
    preact = self.block.startswith("preact")
    if self.stem == "imagenet":
      x = conv(self.stem_width, 7, 2, "stem", self.dtype, in_axis=None)(x)
    else:
      x = conv(self.stem_width, 3, 1, "stem", self.dtype, in_axis=None)(x)
    if not preact:  # a pre-activation net normalises the stem's output inside its first block
      x = nn.relu(batch_norm(train, "stem_bn", self.dtype)(x))
    if self.stem == "imagenet":
      x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    block = BLOCKS[self.block]
    if self.remat and not self.scan_blocks:
      raise ValueError("remat applies to scanned blocks: set scan_blocks=True as well")
    for s, (size, width) in enumerate(zip(self.stage_sizes, self.widths)):
      # The first block of a stage may change the shape; the others keep it.
      x = block(width, 2 if s > 0 else 1, self.shortcut, self.dtype, name=f"stage{s + 1}_block1")(x, train)
      if self.scan_blocks and size > 1:
        x, _ = scanned_blocks(size - 1, self.remat)(self.block, width, self.shortcut, self.dtype, train,
                                                     name=f"stage{s + 1}_blocks")(x, None)
        continue
      for b in range(1, size):
        x = block(width, 1, self.shortcut, self.dtype, name=f"stage{s + 1}_block{b + 1}")(x, train)
    if preact:
      x = nn.relu(batch_norm(train, "final_bn", self.dtype)(x))
    x = x.mean(axis=(1, 2))
    return nn.Dense(self.num_classes, name="head", dtype=self.dtype,
                    kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(),
                                                             ("embed", None)),
                    bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (None,)))(x)


def _cifar(n: int, shortcut: str = "A") -> dict:
  return dict(stage_sizes=(n, n, n), widths=(16, 32, 64), block="basic", shortcut=shortcut,
              stem="cifar", stem_width=16)


def _imagenet(sizes, block: str, shortcut: str = "B") -> dict:
  return dict(stage_sizes=sizes, widths=(64, 128, 256, 512), block=block, shortcut=shortcut,
              stem="imagenet", stem_width=64)


def _preact_basic_cifar(n: int) -> dict:
  """The v1 CIFAR net of 6n+2 layers with its blocks pre-activated and nothing else changed
  (option-A shortcuts): the original-vs-pre-activation comparison of He 2016 Table 3 (ResNet-110)."""
  return dict(_cifar(n), block="preact_basic")


def _preact_cifar(n: int) -> dict:
  return dict(stage_sizes=(n, n, n), widths=(16, 32, 64), block="preact_bottleneck", shortcut="B",
              stem="cifar", stem_width=16)


# CIFAR depth 6n+2 (He 2015 Table 6; n = 1 is a small net for tests); pre-activation bottleneck depth 9n+2 (He 2016 Table 3);
# ImageNet depths of He 2015 Table 1.
VARIANTS = {
    **{f"resnet{6 * n + 2}": _cifar(n) for n in (1, 3, 5, 7, 9, 18)},
    **{f"plain{6 * n + 2}": _cifar(n, "none") for n in (1, 3, 5, 7, 9, 18)},
    **{f"preact_resnet{6 * n + 2}": _preact_basic_cifar(n) for n in (1, 3, 5, 7, 9, 18)},
    "resnet18": _imagenet((2, 2, 2, 2), "basic"),
    "resnet34": _imagenet((3, 4, 6, 3), "basic"),
    "resnet50": _imagenet((3, 4, 6, 3), "bottleneck"),
    "resnet101": _imagenet((3, 4, 23, 3), "bottleneck"),
    "resnet152": _imagenet((3, 8, 36, 3), "bottleneck"),
    "plain18": _imagenet((2, 2, 2, 2), "basic", "none"),
    "plain34": _imagenet((3, 4, 6, 3), "basic", "none"),
    "preact_resnet164": _preact_cifar(18),
    "preact_resnet1001": _preact_cifar(111),
}


def Model(variant: str = "resnet56", **kwargs) -> ResNet:  # pylint: disable=invalid-name
  """A named network, e.g. `Model("resnet56", num_classes=10)`; kwargs override its fields."""
  if variant not in VARIANTS:
    raise ValueError(f"unknown ResNet variant {variant!r}; use one of {', '.join(VARIANTS)}")
  return ResNet(**{**VARIANTS[variant], **kwargs})


def num_weight_layers(variant: str) -> int:
  """Convolutions and the classifier on the main path (the depth the papers name a net by)."""
  v = VARIANTS[variant]
  per_block = {"basic": 2, "bottleneck": 3, "preact_basic": 2, "preact_bottleneck": 3}[v["block"]]
  return 1 + per_block * sum(v["stage_sizes"]) + 1
