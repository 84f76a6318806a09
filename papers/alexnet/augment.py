"""The paper's two data augmentations (section 4.1), keyed by (seed, step, image index).

1. Random crops and horizontal reflections: the paper trains on random 224 x 224 patches of the
   256 x 256 images and their mirror images, and tests on the central patch (it averages ten
   patches; we score the central one). Here an image is first zero-padded by `pad` pixels, so a
   28 x 28 Fashion-MNIST image (pad 2) or a 32 x 32 CIFAR image (pad 4) yields crops of its own
   size, and an ImageNet image of 256 (pad 0) yields crops of 227.
2. "PCA colour" jitter: to every pixel [R, G, B] of an image add [p1, p2, p3] [a1 l1, a2 l2, a3 l3]^T,
   with p_i, l_i the eigenvectors and eigenvalues of the 3 x 3 covariance of the training set's
   RGB pixel values and a_i ~ N(0, 0.1) drawn once per image per presentation. Pixel values are
   scaled to [0, 1] here, so l_i is in those units. For a grayscale set (Fashion-MNIST) the
   covariance is the 1 x 1 pixel variance: the jitter is a brightness shift a1 * variance
   (about 1.2% of the range, one standard deviation).

Every draw comes from `np.random.default_rng([seed, step, index])`: a resumed run, or another
host holding other rows of the batch, draws the same crops, flips and colours.
"""
from __future__ import annotations

import numpy as np

PCA_STDDEV = 0.1  # "a_i drawn from a Gaussian with mean zero and standard deviation 0.1"


def example_rng(seed: int, step: int, index: int) -> np.random.Generator:
  return np.random.default_rng([seed, step, int(index)])


def draw(seed: int, step: int, indices, size: int, crop: int, channels: int):
  """Per image: crop offsets (dy, dx) in [0, size - crop], a flip bit, and the PCA alphas."""
  offsets, flips, alphas = [], [], []
  for index in indices:
    rng = example_rng(seed, step, index)
    offsets.append(rng.integers(0, size - crop + 1, size=2))
    flips.append(bool(rng.integers(2)))
    alphas.append(rng.normal(0.0, PCA_STDDEV, size=channels))
  return np.array(offsets).reshape(-1, 2), np.array(flips, bool), np.array(alphas).reshape(-1, channels)


def crop_flip(images: np.ndarray, offsets, flips, crop: int, pad: int) -> np.ndarray:
  """Each image zero-padded by `pad`, cut to `crop` x `crop` at its offset, mirrored if flipped."""
  padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  out = np.empty((len(images), crop, crop, images.shape[-1]), images.dtype)
  for i, ((dy, dx), flip) in enumerate(zip(offsets, flips)):
    patch = padded[i, dy:dy + crop, dx:dx + crop]
    out[i] = patch[:, ::-1] if flip else patch
  return out


def center_crop(images: np.ndarray, crop: int, pad: int) -> np.ndarray:
  """The central `crop` x `crop` patch of the padded images (what the network sees at test)."""
  padded = np.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)))
  top = (padded.shape[1] - crop) // 2
  left = (padded.shape[2] - crop) // 2
  return padded[:, top:top + crop, left:left + crop]


def pixel_covariance(images: np.ndarray, chunk: int = 4096) -> np.ndarray:
  """The C x C covariance of the pixel values (scaled to [0, 1]) over every pixel of `images`,
  accumulated in float64 over chunks (the whole training set does not fit in float64)."""
  channels = images.shape[-1]
  total, outer, count = np.zeros(channels), np.zeros((channels, channels)), 0
  for start in range(0, len(images), chunk):
    x = images[start:start + chunk].reshape(-1, channels).astype(np.float64) / 255.0
    total += x.sum(0)
    outer += x.T @ x
    count += len(x)
  mean = total / count
  return outer / count - np.outer(mean, mean)


def rgb_pca(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """(eigenvalues (C,), eigenvectors (C, C) as columns) of the training pixels' covariance."""
  eigenvalues, eigenvectors = np.linalg.eigh(pixel_covariance(images))
  return eigenvalues.astype(np.float32), eigenvectors.astype(np.float32)


def pca_shift(eigenvalues: np.ndarray, eigenvectors: np.ndarray, alphas: np.ndarray) -> np.ndarray:
  """The colour added to every pixel of image b: sum_i p_i * alphas[b, i] * l_i, shape (B, C)."""
  return (alphas * eigenvalues) @ eigenvectors.T


def augment(images, seed: int, step: int, indices, crop: int, pad: int, eigenvalues, eigenvectors):
  """Random crops and flips (uint8 images) and each image's PCA colour shift (float32, (B, C))."""
  size = images.shape[1] + 2 * pad
  offsets, flips, alphas = draw(seed, step, indices, size, crop, images.shape[-1])
  shifts = pca_shift(eigenvalues, eigenvectors, alphas).astype(np.float32)
  return crop_flip(images, offsets, flips, crop, pad), shifts
