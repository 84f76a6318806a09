"""AlexNet image classification: Fashion-MNIST offline, CIFAR-10 and ImageNet (ILSVRC-2012) via TFDS.

Training data: the first `data.train_examples` images of the training split (0 = all), visited
in a new seeded order every epoch; batch k holds stream positions [kB, (k+1)B), each image with
the paper's random crop, flip and PCA colour shift keyed by (seed, step, image index)
(papers/alexnet/augment.py), so batch k is a pure function of (seed, k). The colour shift
travels beside the uint8 crop and is added on the device, after scaling to [0, 1].
Evaluation scores the central crop: `test_error`, `test_top5_error`, `loss` over the test split
(its first `data.test_examples` images; 0 = all; ILSVRC-2012's validation set for ImageNet) and
`train_error` over the first `data.eval_train_examples` training images (the training error of
the paper's Figure 1).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from core import data as data_lib
from core import image_data
from core.task import ConfigError, DataMissingError, Task, ratio, spec
from core.validate import check_choice
from papers.alexnet import augment as aug
from papers.alexnet import model as alexnet_model

TRAIN, TEST, PADDING = 0, 1, -1  # the "split" entry of an eval batch row
IMAGENET = "imagenet2012"
IMAGENET_SIDE = 256  # section 2: rescale the shorter side to 256, take the central 256 x 256
NAMES = image_data.NAMES + (IMAGENET,)
NUM_CLASSES = {**image_data.NUM_CLASSES, IMAGENET: 1000}
STORED_SHAPE = {**image_data.IMAGE_SHAPE, IMAGENET: (IMAGENET_SIDE, IMAGENET_SIDE, 3)}
# The usual ImageNet pixel statistics (torchvision's); only used to centre and scale the input.
CHANNEL_STATS = {**image_data.CHANNEL_STATS,
                 IMAGENET: ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225))}


def imagenet_image(image: np.ndarray) -> np.ndarray:
  """Section 2: shorter side rescaled to 256, then the central 256 x 256 patch (uint8)."""
  from PIL import Image  # pylint: disable=g-import-not-at-top
  h, w = image.shape[:2]
  scale = IMAGENET_SIDE / min(h, w)
  size = (max(IMAGENET_SIDE, round(w * scale)), max(IMAGENET_SIDE, round(h * scale)))
  resized = np.asarray(Image.fromarray(image).resize(size, Image.BILINEAR))
  top, left = (resized.shape[0] - IMAGENET_SIDE) // 2, (resized.shape[1] - IMAGENET_SIDE) // 2
  return resized[top:top + IMAGENET_SIDE, left:left + IMAGENET_SIDE]


class ImageNetSplit:
  """A TFDS imagenet2012 split read image by image (it does not fit in memory)."""

  def __init__(self, split: str, limit: int = 0):
    import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
    try:
      self.source = tfds.data_source(IMAGENET, split=split)
    except Exception as e:  # pylint: disable=broad-except  # not prepared: manual download
      raise DataMissingError(
          f"imagenet2012 is not prepared in TFDS ({type(e).__name__}); download ILSVRC2012_img_train.tar "
          f"and ILSVRC2012_img_val.tar from image-net.org into ~/tensorflow_datasets/downloads/manual/ "
          f"and run `tfds build imagenet2012`, or use data.name='fashion_mnist' offline") from None
    self.size = min(limit, len(self.source)) if limit else len(self.source)

  def __len__(self):
    return self.size

  def take(self, indices) -> dict[str, np.ndarray]:
    examples = [self.source[int(i)] for i in indices]
    return {"images": np.stack([imagenet_image(np.asarray(e["image"])) for e in examples]),
            "labels": np.array([e["label"] for e in examples], np.int32)}


class InMemorySplit:
  """A whole split as arrays (Fashion-MNIST, CIFAR)."""

  def __init__(self, arrays: dict[str, np.ndarray]):
    self.arrays = arrays

  def __len__(self):
    return len(self.arrays["labels"])

  def take(self, indices) -> dict[str, np.ndarray]:
    return {k: v[np.asarray(indices)] for k, v in self.arrays.items()}


@functools.lru_cache(maxsize=4)
def _load_images(loader, name: str, split: str) -> dict[str, np.ndarray]:
  """`loader(name, split)`, kept: the trainer builds the task more than once per process (reading
  Fashion-MNIST's training split takes seconds). Keyed by the loader, so a replaced one is called."""
  return loader(name, split)


class AlexNetTask(Task):

  def __init__(self, config):
    super().__init__(config)
    d, m = config.data, config.model
    check_choice(config, "data.name", tuple(NAMES))
    check_choice(config, "model.size", tuple(alexnet_model.SIZES))
    check_choice(config, "model.activation", tuple(alexnet_model.ACTIVATIONS))
    if m.towers not in (1, 2):
      raise ConfigError(f"model.towers must be 1 or 2 (the paper's two GPUs), got {m.towers}")
    if d.eval_batch_size % 8:
      raise ConfigError(f"data.eval_batch_size {d.eval_batch_size} must be a multiple of 8 rows "
                        f"(so an eval batch splits over up to 8 devices)")
    stored = STORED_SHAPE[d.name]
    if not 0 < d.crop <= stored[0] + 2 * d.pad:
      raise ConfigError(f"data.crop {d.crop} must be in 1..{stored[0] + 2 * d.pad} "
                        f"({d.name} images of {stored[0]} pixels padded by data.pad {d.pad})")
    self.shape = (d.crop, d.crop, stored[-1])
    self.model = alexnet_model.Model(
        m.size, num_classes=NUM_CLASSES[d.name], activation=m.activation, lrn=m.lrn,
        overlap_pool=m.overlap_pool, towers=m.towers, dropout=m.dropout, dtype=self.dtype)

  @functools.cached_property
  def _splits(self):
    d = self.config.data
    if d.name == IMAGENET:
      return (ImageNetSplit("train", d.train_examples),
              ImageNetSplit("validation", d.test_examples))
    train = _load_images(image_data.load_images, d.name, "train")
    if d.train_examples:
      if d.train_examples > len(train["labels"]):
        raise ConfigError(f"data.train_examples {d.train_examples} exceeds the "
                          f"{len(train['labels'])} training images of {d.name}")
      train = {k: v[:d.train_examples] for k, v in train.items()}
    test = _load_images(image_data.load_images, d.name, "test")
    if d.test_examples:
      test = {k: v[:d.test_examples] for k, v in test.items()}
    return InMemorySplit(train), InMemorySplit(test)

  @functools.cached_property
  def pca(self) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues and eigenvectors of the RGB covariance of (the first data.pca_examples of)
    the training images, for the colour jitter."""
    train = self._splits[0]
    n = min(self.config.data.pca_examples or len(train), len(train))
    return aug.rgb_pca(train.take(np.arange(n))["images"])

  def check_data(self):
    self._splits  # pylint: disable=pointless-statement  # raises DataMissingError

  # ---- model ----------------------------------------------------------------
  def init(self, rng):
    return self.model.init(rng, jnp.zeros((1, *self.shape), jnp.float32), train=False)

  def _logits(self, variables, images, colour, train, rng=None):
    mean, std = (np.array(v, np.float32) for v in CHANNEL_STATS[self.config.data.name])
    x = jnp.asarray(images, jnp.float32) / 255.0
    if colour is not None:
      x = x + colour[:, None, None, :]
    return self.apply(variables, (x - mean) / std, train=train, rng=rng)

  def loss(self, variables, batch, rng, *, train):
    logits, updates = self._logits(variables, batch["images"], batch.get("colour"), train, rng)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["labels"]).mean()
    accuracy = (logits.argmax(-1) == batch["labels"]).mean()
    return loss, {"accuracy": accuracy, "error": 1.0 - accuracy}, updates

  def eval_metrics(self, variables, batch):
    logits, _ = self._logits(variables, batch["images"], None, train=False)
    labels = batch["labels"]
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
    wrong = (logits.argmax(-1) != labels).astype(jnp.float32)
    # Top-5: the label is not among the five highest logits (for 10 classes, still informative).
    _, top5 = jax.lax.top_k(logits, min(5, logits.shape[-1]))
    wrong5 = 1.0 - (top5 == labels[:, None]).any(-1).astype(jnp.float32)
    is_train = (batch["split"] == TRAIN).astype(jnp.float32)
    is_test = (batch["split"] == TEST).astype(jnp.float32)
    return {
        "loss": ratio((losses * is_test).sum(), is_test.sum()),
        "test_error": ratio((wrong * is_test).sum(), is_test.sum()),
        "test_top5_error": ratio((wrong5 * is_test).sum(), is_test.sum()),
        "train_error": ratio((wrong * is_train).sum(), is_train.sum()),
    }

  # ---- data -----------------------------------------------------------------
  def batch_spec(self):
    b, channels = self.config.batch_size, self.shape[-1]
    return {"images": spec((b, *self.shape), np.uint8), "labels": spec((b,), np.int32),
            "colour": spec((b, channels), np.float32)}

  def train_indices(self, step: int) -> np.ndarray:
    """Training-image indices of the batch of `step`: positions [kB, (k+1)B) of the epoch stream."""
    return data_lib.epoch_batch_indices(len(self._splits[0]), self.config.batch_size, step,
                                        self.config.seed)

  def train_batch(self, step):
    d = self.config.data
    indices = self.train_indices(step)
    batch = self._splits[0].take(indices)
    if d.augment:
      images, colour = aug.augment(batch["images"], self.config.seed, step, indices, d.crop, d.pad,
                                   *self.pca)
      if not d.pca_jitter:
        colour = np.zeros_like(colour)
    else:
      images = aug.center_crop(batch["images"], d.crop, d.pad)
      colour = np.zeros((len(indices), self.shape[-1]), np.float32)
    return {"images": images, "labels": batch["labels"], "colour": colour}

  def eval_batches(self):
    """The first eval_train_examples training images, then the test split, central crops, in
    batches of eval_batch_size rows; rows past the end are padding (split -1) no metric counts."""
    d = self.config.data
    train, test = self._splits
    rows = [(train, i, TRAIN) for i in range(min(d.eval_train_examples, len(train)))]
    rows += [(test, i, TEST) for i in range(len(test))]
    size = d.eval_batch_size
    for start in range(0, len(rows), size):
      chunk = rows[start:start + size]
      images, labels = [], []
      for split in (train, test):
        picked = [i for s, i, _ in chunk if s is split]
        if picked:
          part = split.take(picked)
          images.append(part["images"])
          labels.append(part["labels"])
      images = aug.center_crop(np.concatenate(images), d.crop, d.pad)
      labels = np.concatenate(labels)
      tags = np.array([t for _, _, t in chunk], np.int32)
      pad = size - len(chunk)
      yield {"images": np.pad(images, ((0, pad), (0, 0), (0, 0), (0, 0))),
             "labels": np.pad(labels, (0, pad)),
             "split": np.pad(tags, (0, pad), constant_values=PADDING)}
