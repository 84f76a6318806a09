"""AlexNet (Krizhevsky, Sutskever, Hinton 2012): five convolutions, three dense layers.

    conv1 -> act -> LRN -> max pool -> conv2 -> act -> LRN -> max pool -> conv3 -> act
    -> conv4 -> act -> conv5 -> act -> max pool -> dense -> act -> dropout -> dense -> act
    -> dropout -> dense (logits)                                       (section 3.5, Figure 2)

The paper's choices, each switchable for the ablations: ReLU (or tanh, Figure 1), local
response normalisation after conv1 and conv2 (section 3.3), overlapping 3x3 stride-2 max
pooling (or non-overlapping 2x2, section 3.4), dropout 0.5 in the first two dense layers
(section 4.2), and the two-GPU layout (section 3.2) as `towers=2`: conv2, conv4 and conv5
see only the kernel maps of their own tower (`feature_group_count`), while conv3 and the
dense layers connect across towers. conv1 of two towers that each read the whole image is one
convolution with both towers' kernels, so it needs no grouping. LRN normalises within a tower,
as each GPU held only its own maps. Parameters carry logical axis names only.
"""
from __future__ import annotations

from typing import Sequence

import flax.linen as nn
import jax.numpy as jnp

ACTIVATIONS = {"relu": nn.relu, "tanh": jnp.tanh}


def local_response_norm(x, *, depth: int = 5, k: float = 2.0, alpha: float = 1e-4,
                        beta: float = 0.75, groups: int = 1):
  """Section 3.3: b^i = a^i / (k + alpha * sum_{j=max(0, i-n/2)}^{min(N-1, i+n/2)} (a^j)^2)^beta
  over the `depth` = n adjacent kernel maps of the last axis (alpha is not divided by n, as in
  the paper; Caffe's LRN divides it). With `groups` > 1 each group of maps (a tower) is
  normalised on its own: the sum stops at the tower's edge."""
  *lead, channels = x.shape
  x = x.reshape(*lead, groups, channels // groups)
  squares = jnp.square(x.astype(jnp.float32))
  half = depth // 2
  padded = jnp.pad(squares, [(0, 0)] * (x.ndim - 1) + [(half, half)])
  window = sum(padded[..., j:j + x.shape[-1]] for j in range(depth))
  out = x / jnp.power(k + alpha * window, beta).astype(x.dtype)
  return out.reshape(*lead, channels)


def _kernel_init(init: str):
  # The paper: "zero-mean Gaussian distribution with standard deviation 0.01" (section 5). At the
  # small scale He initialisation lets a few hundred steps of SGD get somewhere.
  if init == "paper":
    return nn.initializers.normal(0.01)
  if init == "he":
    return nn.initializers.variance_scaling(2.0, "fan_in", "normal")
  raise ValueError(f"unknown init {init!r}; use 'paper' or 'he'")


class AlexNet(nn.Module):
  """AlexNet with the paper's layer types; the sizes are fields (see SIZES)."""
  conv_features: Sequence[int] = (96, 256, 384, 384, 256)
  conv_kernels: Sequence[int] = (11, 5, 3, 3, 3)
  conv1_stride: int = 4
  conv1_padding: str = "VALID"   # 227 -> 55 (the paper's "224" works out only at 227)
  dense_features: Sequence[int] = (4096, 4096)
  num_classes: int = 1000
  activation: str = "relu"       # "relu" | "tanh"
  lrn: bool = True
  overlap_pool: bool = True      # 3x3 stride 2 (True) or 2x2 stride 2 (False)
  pool_padding: str = "VALID"    # "SAME" keeps 28 -> 14 -> 7 -> 4 for either pool
  towers: int = 1                # 2: the paper's two-GPU connectivity
  dropout: float = 0.5
  weight_init: str = "he"             # "paper": N(0, 0.01) weights, biases 1 in conv2/4/5 and dense
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x, train: bool = False):
    if self.activation not in ACTIVATIONS:
      raise ValueError(f"unknown activation {self.activation!r}; use relu or tanh")
    act = ACTIVATIONS[self.activation]
    kernel_init = _kernel_init(self.weight_init)
    one = nn.initializers.ones if self.weight_init == "paper" else nn.initializers.zeros
    window = 3 if self.overlap_pool else 2

    def pool(y):
      return nn.max_pool(y, (window, window), strides=(2, 2), padding=self.pool_padding)

    def lrn(y):
      return local_response_norm(y, groups=self.towers) if self.lrn else y

    # The paper's bias 1 goes to conv2, conv4, conv5 (section 5): layers 2, 4, 5 here.
    for i, (features, kernel) in enumerate(zip(self.conv_features, self.conv_kernels)):
      layer = i + 1
      grouped = self.towers if layer in (2, 4, 5) else 1
      stride = self.conv1_stride if layer == 1 else 1
      padding = self.conv1_padding if layer == 1 else "SAME"
      in_axis = None if layer == 1 else "embed"   # no mesh axis divides the image's channels
      x = nn.Conv(features, (kernel, kernel), strides=(stride, stride), padding=padding,
                  feature_group_count=grouped, dtype=self.dtype, name=f"conv{layer}",
                  kernel_init=nn.with_logical_partitioning(kernel_init,
                                                           (None, None, in_axis, "mlp")),
                  bias_init=nn.with_logical_partitioning(one if layer in (2, 4, 5)
                                                         else nn.initializers.zeros, ("mlp",)))(x)
      x = act(x)
      if layer in (1, 2):
        x = pool(lrn(x))
      elif layer == 5:
        x = pool(x)
    x = x.reshape(x.shape[0], -1)
    for i, features in enumerate(self.dense_features):
      x = nn.Dense(features, dtype=self.dtype, name=f"dense{i + 1}",
                   kernel_init=nn.with_logical_partitioning(kernel_init, ("embed", "mlp")),
                   bias_init=nn.with_logical_partitioning(one, ("mlp",)))(x)
      x = nn.Dropout(self.dropout, deterministic=not train)(act(x))
    return nn.Dense(self.num_classes, dtype=self.dtype, name="logits",
                    kernel_init=nn.with_logical_partitioning(kernel_init, ("mlp", None)),
                    bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (None,)))(x)


# Named sizes. "imagenet": the paper's network (section 3.5, 227 x 227 x 3 input, ~61M parameters).
# "small": the same layer types at 28 x 28 (Fashion-MNIST) or 32 x 32 (CIFAR) with 5x5 / 3x3
# kernels, stride 1 and SAME pooling. "tiny": for tests and the 8-device config check.
SIZES = {
    "imagenet": dict(conv_features=(96, 256, 384, 384, 256), conv_kernels=(11, 5, 3, 3, 3),
                     conv1_stride=4, conv1_padding="VALID", dense_features=(4096, 4096),
                     pool_padding="VALID", weight_init="paper"),
    "small": dict(conv_features=(24, 48, 64, 64, 48), conv_kernels=(5, 5, 3, 3, 3),
                  conv1_stride=1, conv1_padding="SAME", dense_features=(256, 256),
                  pool_padding="SAME"),
    "tiny": dict(conv_features=(8, 16, 16, 16, 16), conv_kernels=(5, 5, 3, 3, 3),
                 conv1_stride=1, conv1_padding="SAME", dense_features=(32, 32),
                 pool_padding="SAME"),
}


def Model(size: str = "imagenet", **kwargs) -> AlexNet:  # pylint: disable=invalid-name
  """A named AlexNet, e.g. `Model("small", num_classes=10, activation="tanh")`."""
  if size not in SIZES:
    raise ValueError(f"unknown AlexNet size {size!r}; use one of {', '.join(SIZES)}")
  return AlexNet(**{**SIZES[size], **kwargs})
