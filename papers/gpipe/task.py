"""Image classification with the pipelined ResNet-style stack.

Data (`config.data.source`):
  synthetic      class-conditional images (a fixed random template per class,
                 randomly shifted, plus noise): no download; the default. Training
                 batches are generated per step (`train_batch`), held-out ones from
                 `heldout_rng(seed)`.
  fashion_mnist  the real Fashion-MNIST (60k train / 10k test, 28x28), offline
                 from `apt-get install -y dataset-fashion-mnist` (docs/data.md), read from
                 `config.data.dir` (idx .gz files). The 60k training images are a
                 random-access source (`train_examples`) that core.data shuffles
                 every epoch; evaluation reads the first `data.eval_examples` test
                 images in order.
Either way the batch of step k is a pure function of (seed, k), so a resumed run
continues the identical stream.
"""
from __future__ import annotations

import gzip
import os
import threading

import jax
import jax.numpy as jnp
import numpy as np

from core.data import ArraySource
from core.task import ConfigError, DataMissingError, Task, heldout_rng, spec, step_rng
from papers.gpipe.model import PipelinedResNet

FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}
FASHION_MNIST_SIZE = 28


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
  supports_stages = True  # the residual blocks split into config.mesh.stage GPipe stages

  def __init__(self, config):
    super().__init__(config)
    m, d = config.model, config.data
    if d.source not in ("synthetic", "fashion_mnist"):
      raise ConfigError(f"data.source must be synthetic or fashion_mnist, got {d.source!r}")
    if m.num_blocks % self.num_stages:
      raise ConfigError(f"model.num_blocks {m.num_blocks} must be divisible by mesh.stage "
                        f"{self.num_stages} (one equal group of blocks per stage)")
    if m.channels % m.groups:
      raise ConfigError(f"model.channels {m.channels} is not divisible by model.groups {m.groups}")
    # The loss sees batch_size / grad_accum_steps rows; the pipeline would silently run
    # gcd(rows, M) micro-batches if M did not divide them.
    rows = config.batch_size // max(int(config.optimizer.get("grad_accum_steps", 1)), 1)
    if self.microbatches < 1 or rows % self.microbatches:
      raise ConfigError(f"the {rows} rows of a (micro-)batch must divide into "
                        f"pipeline.microbatches={self.microbatches} micro-batches")
    self.model = PipelinedResNet(
        num_classes=d.num_classes, channels=m.channels, num_blocks=m.num_blocks, groups=m.groups,
        stem_stride=m.stem_stride, num_stages=self.num_stages, microbatches=self.microbatches,
        remat=self.remat, dtype=self.dtype)
    self._arrays_cache = {}
    self._lock = threading.Lock()

  # ---- data -----------------------------------------------------------------
  def check_data(self):
    if self.config.data.source == "fashion_mnist":
      self._arrays("train")
      self._arrays("test")

  def _arrays(self, split):
    """Fashion-MNIST `split` as (images, labels), read once (thread-safe)."""
    with self._lock:
      if split not in self._arrays_cache:
        self._arrays_cache[split] = load_fashion_mnist(self.config.data.dir, split)
      return self._arrays_cache[split]

  def _image_size(self):
    d = self.config.data
    return FASHION_MNIST_SIZE if d.source == "fashion_mnist" else d.image_size

  def batch_spec(self):
    b, size = self.config.batch_size, self._image_size()
    return {"images": spec((b, size, size, 1), np.float32), "labels": spec((b,), np.int32)}

  def train_examples(self):
    if self.config.data.source != "fashion_mnist":
      return None  # synthetic: generated per step by train_batch
    images, labels = self._arrays("train")
    return ArraySource({"images": images, "labels": labels})

  def train_batch(self, step):
    d, c = self.config.data, self.config
    if d.source != "synthetic":
      raise ConfigError(f"data.source={d.source!r} trains from train_examples(), not train_batch")
    images, labels = synthetic_images(c.seed, step_rng(c.seed, step), c.batch_size, d.image_size,
                                      d.num_classes)
    return {"images": images, "labels": labels}

  def eval_batches(self):
    """`data.eval_examples` held-out images (rounded down to whole batches of batch_size)."""
    c, d, bs = self.config, self.config.data, self.config.batch_size
    n = d.eval_examples // bs * bs
    if d.source == "synthetic":
      images, labels = synthetic_images(c.seed, heldout_rng(c.seed), n, d.image_size, d.num_classes)
    else:  # the first n test images, in order
      images, labels = self._arrays("test")
      images, labels = images[:n], labels[:n]
    return [{"images": images[i:i + bs], "labels": labels[i:i + bs]} for i in range(0, n, bs)]

  # ---- model ----------------------------------------------------------------
  def init(self, rng):
    size = self._image_size()
    return self.model.init(rng, jnp.zeros((1, size, size, 1)))

  def loss(self, variables, batch, rng, *, train):
    # GroupNorm, no dropout: train and eval differ in nothing.
    logits, updates = self.apply(variables, batch["images"], train=train, rng=rng)
    log_probs = jax.nn.log_softmax(logits)
    nll = -jnp.take_along_axis(log_probs, batch["labels"][:, None], axis=-1)
    accuracy = jnp.mean((jnp.argmax(logits, -1) == batch["labels"]).astype(jnp.float32))
    return jnp.mean(nll), {"accuracy": accuracy}, updates
