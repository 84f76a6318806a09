"""Variational Lossy Autoencoder (Chen et al. 2017): a VAE whose decoder is a PixelCNN with a
small receptive field, and whose prior is an autoregressive flow.

    q(z|x)   = N(mu(x), diag sigma(x)^2)             Encoder: strided convs, then dense
    p(x|z)   = prod_i Bernoulli(x_i | x_<i in a window, z)   LocalPixelCNN
    p(z)     = N(f(z); 0, I) |det df/dz|             AutoregressiveFlowPrior (the "AF prior"),
               or N(z; 0, I)                          GaussianPrior

The decoder sees only a small window of previous pixels (one masked convolution of type A,
then a few of type B), so it can model local texture by itself but needs z for anything
global: the code keeps what the window cannot see (shape, class) and the decoder supplies the
rest (section 3 of the paper: a "lossy" code). f is a stack of MADE layers (Germain et al.
2015), eps_i = (z_i - m_i(z_<i)) * exp(-s_i(z_<i)), with the order reversed between layers;
its log-determinant is -sum_i s_i, so log p(z) is one parallel pass, and sampling z = f^-1(eps)
is sequential over the latent dimensions.

Parameters carry logical axis names only (nn.with_logical_partitioning).
"""
from __future__ import annotations

import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

LOG_2PI = math.log(2 * math.pi)


def _init(init, axes):
  return nn.with_logical_partitioning(init, axes)


def standard_normal_log_prob(x):
  """log N(x; 0, I) summed over the last axis."""
  return -0.5 * jnp.sum(x * x + LOG_2PI, axis=-1)


def bernoulli_log_prob(logits, x):
  """log Bernoulli(x | sigmoid(logits)) summed over all but the first axis (x in {0, 1})."""
  per_pixel = x * jax.nn.log_sigmoid(logits) + (1 - x) * jax.nn.log_sigmoid(-logits)
  return per_pixel.reshape(per_pixel.shape[0], -1).sum(-1)


# ---- decoder: a PixelCNN with a small receptive field ---------------------------------------

def pixelcnn_mask(kernel: int, mask_type: str) -> np.ndarray:
  """(kernel, kernel) 0/1 mask of a masked convolution (van den Oord et al. 2016): the rows
  above the centre, and the pixels left of the centre; type "B" also keeps the centre."""
  mask = np.zeros((kernel, kernel), np.float32)
  centre = kernel // 2
  mask[:centre, :] = 1
  mask[centre, :centre] = 1
  if mask_type == "B":
    mask[centre, centre] = 1
  return mask


class MaskedConv(nn.Module):
  """A same-padded convolution whose kernel is multiplied by a PixelCNN mask (one channel
  group: binary images have one channel, so no per-channel masking is needed)."""
  features: int
  kernel: int
  mask_type: str
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    in_axis = None if x.shape[-1] == 1 else "embed"
    w = self.param("kernel", _init(nn.initializers.lecun_normal(), (None, None, in_axis, "mlp")),
                   (self.kernel, self.kernel, x.shape[-1], self.features))
    b = self.param("bias", _init(nn.initializers.zeros, ("mlp",)), (self.features,))
    w = w * pixelcnn_mask(self.kernel, self.mask_type)[:, :, None, None]
    pad = self.kernel // 2
    y = jax.lax.conv_general_dilated(x.astype(self.dtype), w.astype(self.dtype), (1, 1),
                                     ((pad, pad), (pad, pad)),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + b.astype(self.dtype)


def receptive_field(first_kernel: int, kernel: int, num_layers: int) -> int:
  """How far (in rows up, and columns either side) the decoder's output at a pixel can see:
  the type-A layer reaches first_kernel // 2, each of the num_layers type-B layers kernel // 2 more."""
  return first_kernel // 2 + num_layers * (kernel // 2)


class LocalPixelCNN(nn.Module):
  """Bernoulli logits of each pixel from the pixels before it in a small window, and from z.

  One type-A masked convolution of `first_kernel`, `num_layers` type-B ones of `kernel`, then
  two 1x1 layers; z enters every layer as a bias map (z -> dense 7x7 map -> transposed convs
  up to the image size), which depends on z only, so causality is that of the masks.
  """
  channels: int = 32
  first_kernel: int = 5
  kernel: int = 3
  num_layers: int = 2
  dtype: jnp.dtype = jnp.float32

  def z_maps(self, z, height: int, width: int):
    """Per-layer conditioning maps (B, H, W, channels) from z."""
    c = self.channels
    h = nn.Dense(7 * 7 * c, dtype=self.dtype, name="z_dense",
                 kernel_init=_init(nn.initializers.lecun_normal(), ("embed", "mlp")),
                 bias_init=_init(nn.initializers.zeros, ("mlp",)))(z)
    h = nn.elu(h.reshape(z.shape[0], 7, 7, c))
    scale = 7
    for i in range(2):  # 7 -> 14 -> 28
      h = nn.elu(nn.ConvTranspose(c, (4, 4), strides=(2, 2), padding="SAME", dtype=self.dtype,
                                  name=f"z_up{i}",
                                  kernel_init=_init(nn.initializers.lecun_normal(),
                                                    (None, None, "embed", "mlp")),
                                  bias_init=_init(nn.initializers.zeros, ("mlp",)))(h))
      scale *= 2
    h = h[:, :height, :width]  # the 20x20 digits use the top-left of a 28x28 map
    return [nn.Dense(c, dtype=self.dtype, name=f"z_to_layer{i}",
                     kernel_init=_init(nn.initializers.lecun_normal(), ("embed", "mlp")),
                     bias_init=_init(nn.initializers.zeros, ("mlp",)))(h)
            for i in range(self.num_layers + 1)]

  @nn.compact
  def __call__(self, x, z):
    """x: (B, H, W, 1) in {0, 1}; z: (B, D). Returns logits (B, H, W, 1)."""
    maps = self.z_maps(z, x.shape[1], x.shape[2])
    h = MaskedConv(self.channels, self.first_kernel, "A", self.dtype, name="conv_a")(x)
    h = nn.elu(h + maps[0])
    for i in range(self.num_layers):
      h = h + nn.elu(MaskedConv(self.channels, self.kernel, "B", self.dtype,
                                name=f"conv_b{i}")(h) + maps[i + 1])
    h = nn.elu(nn.Dense(self.channels, dtype=self.dtype, name="out_hidden",
                        kernel_init=_init(nn.initializers.lecun_normal(), ("embed", "mlp")),
                        bias_init=_init(nn.initializers.zeros, ("mlp",)))(h))
    return nn.Dense(1, dtype=self.dtype, name="out_logits",
                    kernel_init=_init(nn.initializers.lecun_normal(), ("mlp", None)),
                    bias_init=_init(nn.initializers.zeros, (None,)))(h).astype(jnp.float32)


# ---- encoder ----------------------------------------------------------------------------------

class Encoder(nn.Module):
  """q(z|x): two stride-2 3x3 convolutions, a dense layer, then mean and log-std of z."""
  latent_dim: int = 32
  channels: Sequence[int] = (32, 64)
  hidden: int = 256
  dtype: jnp.dtype = jnp.float32

  @nn.compact
  def __call__(self, x):
    h = x.astype(self.dtype)
    for i, c in enumerate(self.channels):
      in_axis = None if i == 0 else "embed"
      h = nn.elu(nn.Conv(c, (3, 3), strides=(2, 2), padding="SAME", dtype=self.dtype,
                         name=f"conv{i}",
                         kernel_init=_init(nn.initializers.lecun_normal(),
                                           (None, None, in_axis, "mlp")),
                         bias_init=_init(nn.initializers.zeros, ("mlp",)))(h))
    h = h.reshape(h.shape[0], -1)
    h = nn.elu(nn.Dense(self.hidden, dtype=self.dtype, name="hidden",
                        kernel_init=_init(nn.initializers.lecun_normal(), ("embed", "mlp")),
                        bias_init=_init(nn.initializers.zeros, ("mlp",)))(h))
    out = nn.Dense(2 * self.latent_dim, dtype=self.dtype, name="out",
                   kernel_init=_init(nn.initializers.lecun_normal(), ("mlp", None)),
                   bias_init=_init(nn.initializers.zeros, (None,)))(h).astype(jnp.float32)
    mean, log_std = jnp.split(out, 2, axis=-1)
    return mean, log_std


# ---- priors -------------------------------------------------------------------------------------

def made_masks(dim: int, hidden: Sequence[int]) -> list[np.ndarray]:
  """MADE masks (Germain et al. 2015) for inputs of degree 1..dim: hidden unit k has degree
  1 + k mod (dim - 1) and sees inputs of degree <= its own; output i (degree i + 1) sees hidden
  units of degree < i + 1, so output i depends on inputs 0..i-1 only."""
  degrees = [np.arange(1, dim + 1)]
  for h in hidden:
    degrees.append(1 + np.arange(h) % max(dim - 1, 1))
  masks = [(d_out[None, :] >= d_in[:, None]).astype(np.float32)
           for d_in, d_out in zip(degrees[:-1], degrees[1:])]
  out_degrees = np.arange(1, dim + 1)
  masks.append((out_degrees[None, :] > degrees[-1][:, None]).astype(np.float32))
  return masks


class MADE(nn.Module):
  """Shift m(z) and log-scale s(z), output i a function of z_<i only."""
  hidden: Sequence[int] = (64, 64)

  @nn.compact
  def __call__(self, z):
    dim = z.shape[-1]
    masks = made_masks(dim, self.hidden)
    h = z
    for i, (mask, width) in enumerate(zip(masks[:-1], self.hidden)):
      w = self.param(f"w{i}", _init(nn.initializers.lecun_normal(), ("embed", "mlp")),
                     (h.shape[-1], width))
      b = self.param(f"b{i}", _init(nn.initializers.zeros, ("mlp",)), (width,))
      h = nn.elu(h @ (w * mask) + b)
    # Zero-initialised output: the flow starts as the identity (a standard Gaussian prior).
    w = self.param("w_out", _init(nn.initializers.zeros, ("mlp", None)), (h.shape[-1], 2 * dim))
    b = self.param("b_out", _init(nn.initializers.zeros, (None,)), (2 * dim,))
    out = h @ (w * np.concatenate([masks[-1]] * 2, axis=1)) + b
    shift, log_scale = jnp.split(out, 2, axis=-1)
    return shift, log_scale


class AutoregressiveFlowPrior(nn.Module):
  """p(z) = N(f(z); 0, I) |det df/dz|, f = num_layers MADE transforms with reversals between."""
  num_layers: int = 2
  hidden: Sequence[int] = (64, 64)

  def setup(self):
    self.mades = [MADE(self.hidden, name=f"made{i}") for i in range(self.num_layers)]

  def forward(self, z):
    """eps = f(z) and log |det df/dz| (per row)."""
    log_det = jnp.zeros(z.shape[:-1], z.dtype)
    x = z
    for made in self.mades:
      shift, log_scale = made(x)
      x = ((x - shift) * jnp.exp(-log_scale))[..., ::-1]
      log_det = log_det - log_scale.sum(-1)
    return x, log_det

  def log_prob(self, z):
    eps, log_det = self.forward(z)
    return standard_normal_log_prob(eps) + log_det

  def sample(self, eps):
    """z = f^-1(eps): each layer inverted one dimension at a time (dim passes of its MADE)."""
    x = eps
    for made in reversed(self.mades):
      y = x[..., ::-1]
      x = jnp.zeros_like(y)
      for _ in range(y.shape[-1]):  # after pass i, x_0..x_i are exact
        shift, log_scale = made(x)
        x = y * jnp.exp(log_scale) + shift
    return x

  def __call__(self, z):
    return self.log_prob(z)


class GaussianPrior(nn.Module):
  """p(z) = N(z; 0, I)."""

  def log_prob(self, z):
    return standard_normal_log_prob(z)

  def sample(self, eps):
    return eps

  def __call__(self, z):
    return self.log_prob(z)


# ---- the VAE ------------------------------------------------------------------------------------

class VLAE(nn.Module):
  """Encoder, prior ("af" or "gaussian") and LocalPixelCNN decoder.

  `__call__(x, rng)` returns per-row log p(x|z), log q(z|x), log p(z) for one z ~ q(z|x):
  their combination log p(x|z) + log p(z) - log q(z|x) is one importance weight; its mean is
  the ELBO.
  """
  latent_dim: int = 32
  prior: str = "af"
  encoder_channels: Sequence[int] = (32, 64)
  encoder_hidden: int = 256
  decoder_channels: int = 32
  first_kernel: int = 5
  kernel: int = 3
  decoder_layers: int = 2
  flow_layers: int = 2
  flow_hidden: Sequence[int] = (64, 64)
  dtype: jnp.dtype = jnp.float32

  def setup(self):
    self.encoder = Encoder(self.latent_dim, self.encoder_channels, self.encoder_hidden, self.dtype)
    self.decoder = LocalPixelCNN(self.decoder_channels, self.first_kernel, self.kernel,
                                 self.decoder_layers, self.dtype)
    if self.prior == "af":
      self.prior_net = AutoregressiveFlowPrior(self.flow_layers, self.flow_hidden)
    elif self.prior == "gaussian":
      self.prior_net = GaussianPrior()
    else:
      raise ValueError(f"prior must be 'af' or 'gaussian', got {self.prior!r}")

  def encode(self, x):
    return self.encoder(x)

  def decode_logits(self, x, z):
    return self.decoder(x, z)

  def prior_log_prob(self, z):
    return self.prior_net.log_prob(z)

  def prior_sample(self, eps):
    return self.prior_net.sample(eps)

  def log_weight_terms(self, x, rng):
    mean, log_std = self.encode(x)
    eps = jax.random.normal(rng, mean.shape, jnp.float32)
    z = mean + jnp.exp(log_std) * eps
    log_q = standard_normal_log_prob(eps) - log_std.sum(-1)
    log_px = bernoulli_log_prob(self.decode_logits(x, z), x)
    return log_px, log_q, self.prior_log_prob(z)

  def __call__(self, x, rng):
    return self.log_weight_terms(x, rng)


def log_mean_exp(log_w, axis: int = -1):
  """log (1/K sum_k exp(log_w_k)), stably."""
  return jax.nn.logsumexp(log_w, axis=axis) - math.log(log_w.shape[axis])


def importance_sampled_log_likelihood(terms_fn, rng, num_samples: int):
  """log p(x) ~= log (1/K sum_k p(x|z_k) p(z_k) / q(z_k|x)), z_k ~ q(z|x) (Burda et al. 2016, eq. 8).

  `terms_fn(key)` draws one z per row and returns the per-row (log p(x|z), log q(z|x), log p(z));
  the K draws run one after another (lax.map), so memory is that of one draw. Returns the
  per-row estimate and the terms, each of shape (K, rows).
  """
  keys = jax.random.split(rng, num_samples)
  log_px, log_q, log_pz = jax.lax.map(terms_fn, keys)
  return log_mean_exp(log_px + log_pz - log_q, axis=0), (log_px, log_q, log_pz)
