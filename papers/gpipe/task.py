"""Image classification with the pipelined ResNet-style stack.

Data (`config.data.source`):
  synthetic      class-conditional images (a fixed random template per class,
                 randomly shifted, plus noise): no download; the default.
  fashion_mnist  the real Fashion-MNIST (60k train / 10k test, 28x28), offline
                 from `apt-get install -y dataset-fashion-mnist`, read from
                 `config.data.dir` (idx .gz files).
The batch of step k is a pure function of (seed, k), so a resumed run continues
the identical stream.
"""
from __future__ import annotations

import gzip
import os

import jax
import jax.numpy as jnp
import numpy as np

from core.task import ConfigError, DataMissingError, Task, shard_rows, step_rng
from papers.gpipe.model import PipelinedResNet

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
EVAL_SEED_OFFSET = 1_000_003


def read_idx(path: str) -> np.ndarray:
  """An idx file: 2 zero bytes, a type byte (0x08 = uint8), ndim, big-endian uint32 dims, data."""
  with gzip.open(path, "rb") as f:
    raw = f.read()
  if raw[2] != 0x08:
    raise ValueError(f"{path}: idx type {raw[2]:#x} is not uint8")
  ndim = raw[3]
  dims = np.frombuffer(raw, ">u4", count=ndim, offset=4)
  return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_fashion_mnist(directory: str, split: str):
  """(images [N, 28, 28, 1] float32 in [-1, 1], labels [N] int32)."""
  paths = [os.path.join(directory, name) for name in _FILES[split]]
  missing = [p for p in paths if not os.path.exists(p)]
  if missing:
    raise DataMissingError(f"Fashion-MNIST not found ({missing[0]}): run "
                           "`sudo apt-get install -y dataset-fashion-mnist` or set --config.data.dir")
  images, labels = (read_idx(p) for p in paths)
  return (images[..., None].astype(np.float32) / 127.5 - 1.0), labels.astype(np.int32)


def synthetic_images(seed: int, rng: np.random.Generator, n: int, size: int, classes: int):
  """Noisy, randomly shifted copies of one fixed smooth random template per class."""
  base = np.random.default_rng([seed, 7]).normal(size=(classes, size // 4, size // 4))
  templates = np.kron(base, np.ones((4, 4)))  # blocky, so shifts keep the class visible
  labels = rng.integers(0, classes, size=n).astype(np.int32)
  shifts = rng.integers(-2, 3, size=(n, 2))
  images = np.stack([np.roll(templates[c], tuple(s), axis=(0, 1)) for c, s in zip(labels, shifts)])
  images = images + rng.normal(scale=1.0, size=images.shape)
  return images[..., None].astype(np.float32), labels


class ImageClassificationTask(Task):
  """Cross-entropy classification; metrics: loss, accuracy."""

  def __init__(self, config):
    super().__init__(config)
    m, d = config.model, config.data
    if d.source not in ("synthetic", "fashion_mnist"):
      raise ConfigError(f"data.source must be synthetic or fashion_mnist, got {d.source!r}")
    if m.num_blocks % config.mesh.stage:
      raise ConfigError(f"model.num_blocks {m.num_blocks} must be divisible by mesh.stage "
                        f"{config.mesh.stage} (one equal group of blocks per stage)")
    if m.channels % m.groups:
      raise ConfigError(f"model.channels {m.channels} is not divisible by model.groups {m.groups}")
    self.model = PipelinedResNet(
        num_classes=d.num_classes, channels=m.channels, num_blocks=m.num_blocks, groups=m.groups,
        stem_stride=m.stem_stride,
        num_stages=config.mesh.stage, microbatches=config.pipeline.microbatches,
        remat=config.pipeline.remat, dtype=jnp.bfloat16 if config.dtype == "bfloat16" else jnp.float32)
    self._train = self._test = None

  def check_data(self):
    if self.config.data.source == "fashion_mnist":
      self._arrays("train")

  def _arrays(self, split):
    if getattr(self, "_" + split) is None:
      setattr(self, "_" + split, load_fashion_mnist(self.config.data.dir, split))
    return getattr(self, "_" + split)

  def _image_size(self):
    return 28 if self.config.data.source == "fashion_mnist" else self.config.data.image_size

  def init_params(self, rng):
    size = self._image_size()
    return self.model.init(rng, jnp.zeros((1, size, size, 1)))["params"]

  def loss(self, params, batch, rng):
    del rng
    logits = self.model.apply({"params": params}, batch["images"])
    log_probs = jax.nn.log_softmax(logits)
    nll = -jnp.take_along_axis(log_probs, batch["labels"][:, None], axis=-1)
    accuracy = jnp.mean((jnp.argmax(logits, -1) == batch["labels"]).astype(jnp.float32))
    loss = jnp.mean(nll)
    return loss, {"accuracy": accuracy}

  def _draw(self, rng, n, split, seed):
    d = self.config.data
    if d.source == "synthetic":
      images, labels = synthetic_images(seed, rng, n, d.image_size, d.num_classes)
    else:
      images, labels = self._arrays(split)
      idx = rng.integers(0, len(labels), size=n)
      images, labels = images[idx], labels[idx]
    return {"images": images, "labels": labels}

  def train_batch(self, step, shard=0, num_shards=1):
    c = self.config
    batch = self._draw(step_rng(c.seed, step), c.batch_size, "train", c.seed)
    return shard_rows(batch, shard, num_shards)

  def eval_batches(self):
    c, bs = self.config, self.config.batch_size
    n = c.data.eval_examples // bs * bs
    if c.data.source == "synthetic":
      data = self._draw(step_rng(c.seed + EVAL_SEED_OFFSET, 0), n, "test", c.seed)
    else:  # the first n test images, in order
      images, labels = self._arrays("test")
      data = {"images": images[:n], "labels": labels[:n]}
    return [{k: v[i:i + bs] for k, v in data.items()} for i in range(0, n, bs)]
