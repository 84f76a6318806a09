"""Image classification with a ResNet or plain net: Fashion-MNIST offline, CIFAR-10/100 online.

Training data: the first `data.train_examples` images of the training split (0 = all), visited
in a new seeded order every epoch; batch k holds stream positions [kB, (k+1)B) with He et al.'s
augmentation keyed by (seed, step, image index), so batch k is a pure function of (seed, k).
Evaluation (batch-norm running averages): `test_error` / `test_accuracy` / `loss` over the
test split (its first `data.test_examples` images; 0 = all) and `train_error` over the first `data.eval_train_examples` training images
without augmentation, the training error of the papers' curves (He 2015 Fig. 1 and 6).
"""
from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np
import optax

from core import data as data_lib
from core import image_data
from core.task import ConfigError, Task, ratio, spec
from papers.resnet import model as resnet_model

TRAIN, TEST, PADDING = 0, 1, -1  # the "split" entry of an eval batch row


class ImageClassificationTask(Task):
  model_state = ("batch_stats",)

  def __init__(self, config):
    super().__init__(config)
    d = config.data
    if d.name not in image_data.NAMES:
      raise ConfigError(f"data.name must be one of {', '.join(image_data.NAMES)}, got {d.name!r}")
    if config.model.variant not in resnet_model.VARIANTS:
      raise ConfigError(f"model.variant must be one of {', '.join(resnet_model.VARIANTS)}, "
                        f"got {config.model.variant!r}")
    if d.eval_batch_size % 8:
      raise ConfigError(f"data.eval_batch_size {d.eval_batch_size} must be a multiple of 8 rows "
                        f"(so an eval batch splits over up to 8 devices)")
    self.shape = image_data.IMAGE_SHAPE[d.name]
    self.model = resnet_model.Model(config.model.variant,
                                    num_classes=image_data.NUM_CLASSES[d.name], dtype=self.dtype,
                                    scan_blocks=bool(config.model.get("scan_blocks", False)),
                                    remat=config.model.get("remat", ""))

  @functools.cached_property
  def _splits(self):
    d = self.config.data
    train = image_data.load_images(d.name, "train")
    if d.train_examples:
      if d.train_examples > len(train["labels"]):
        raise ConfigError(f"data.train_examples {d.train_examples} exceeds the "
                          f"{len(train['labels'])} training images of {d.name}")
      train = {k: v[:d.train_examples] for k, v in train.items()}
    test = image_data.load_images(d.name, "test")
    if d.test_examples:
      test = {k: v[:d.test_examples] for k, v in test.items()}
    return train, test

  def check_data(self):
    self._splits  # pylint: disable=pointless-statement  # raises DataMissingError

  # ---- model ----------------------------------------------------------------
  def init(self, rng):
    return self.model.init(rng, jnp.zeros((1, *self.shape), jnp.float32), train=False)

  def _logits(self, variables, images, train, rng=None):
    mean, std = (np.array(v, np.float32) for v in image_data.CHANNEL_STATS[self.config.data.name])
    x = (jnp.asarray(images, jnp.float32) / 255.0 - mean) / std
    return self.apply(variables, x, train=train, rng=rng)

  def loss(self, variables, batch, rng, *, train):
    logits, updates = self._logits(variables, batch["images"], train, rng)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["labels"]).mean()
    accuracy = (logits.argmax(-1) == batch["labels"]).mean()
    return loss, {"accuracy": accuracy, "error": 1.0 - accuracy}, updates

  def eval_metrics(self, variables, batch):
    logits, _ = self._logits(variables, batch["images"], train=False)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["labels"])
    wrong = (logits.argmax(-1) != batch["labels"]).astype(jnp.float32)
    is_train = (batch["split"] == TRAIN).astype(jnp.float32)
    is_test = (batch["split"] == TEST).astype(jnp.float32)
    return {
        "loss": ratio((losses * is_test).sum(), is_test.sum()),
        "test_error": ratio((wrong * is_test).sum(), is_test.sum()),
        "test_accuracy": ratio(((1 - wrong) * is_test).sum(), is_test.sum()),
        "train_error": ratio((wrong * is_train).sum(), is_train.sum()),
    }

  # ---- data -----------------------------------------------------------------
  def batch_spec(self):
    b = self.config.batch_size
    return {"images": spec((b, *self.shape), np.uint8), "labels": spec((b,), np.int32)}

  def train_indices(self, step: int) -> np.ndarray:
    """Training-image indices of the batch of `step`: positions [kB, (k+1)B) of the epoch stream."""
    return data_lib.epoch_batch_indices(len(self._splits[0]["labels"]), self.config.batch_size, step,
                                        self.config.seed)

  def train_batch(self, step):
    train = self._splits[0]
    indices = self.train_indices(step)
    images = train["images"][indices]
    if self.config.data.augment:
      images = image_data.augment(images, self.config.seed, step, indices)
    return {"images": images, "labels": train["labels"][indices]}

  def eval_batches(self):
    """The first eval_train_examples training images, then the test split, in batches of
    eval_batch_size rows; rows past the end are padding (split -1) that no metric counts."""
    train, test = self._splits
    k = min(self.config.data.eval_train_examples, len(train["labels"]))
    images = np.concatenate([train["images"][:k], test["images"]])
    labels = np.concatenate([train["labels"][:k], test["labels"]])
    split = np.concatenate([np.full(k, TRAIN), np.full(len(test["labels"]), TEST)]).astype(np.int32)
    size = self.config.data.eval_batch_size
    for start in range(0, len(labels), size):
      rows = slice(start, start + size)
      pad = size - len(labels[rows])
      yield {"images": np.pad(images[rows], ((0, pad), (0, 0), (0, 0), (0, 0))),
             "labels": np.pad(labels[rows], (0, pad)),
             "split": np.pad(split[rows], (0, pad), constant_values=PADDING)}
