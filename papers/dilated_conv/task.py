"""Semantic segmentation with the dilated front end (+ context module): canvases or VOC 2012.

Loss: per-pixel softmax cross entropy at the input resolution: the 1/8-resolution class
scores are upsampled bilinearly (as the paper does), pixels labelled 255 ("void") are ignored.
Evaluation over the held-out canvases (or VOC val): `loss`, `pixel_accuracy` and `iou_<k>`
= intersection / union of class k, as sums the trainer adds over eval batches (so they are the
entries of one confusion matrix of the whole held-out set); `evaluate` accumulates that
confusion matrix on the host and reports `miou`, the mean over classes of IoU (the paper's
metric).
"""
from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from core import image_data
from core.config import run_config
from core.task import ConfigError, Task, ratio, spec
from core.validate import check_choice
from papers.dilated_conv import model as model_lib
from papers.dilated_conv import segmentation_data as sd

DATA_NAMES = ("canvases", "voc2012")


def confusion_matrix(predictions, labels, num_classes: int):
  """counts[i, j] = pixels of true class i predicted as j; labels outside [0, C) are ignored."""
  valid = (labels >= 0) & (labels < num_classes)
  index = jnp.where(valid, labels * num_classes + predictions, 0).reshape(-1)
  counts = jnp.zeros(num_classes * num_classes, jnp.float32).at[index].add(
      valid.reshape(-1).astype(jnp.float32))
  return counts.reshape(num_classes, num_classes)


def iou_parts(confusion):
  """Per class (intersection, union) = (n_kk, sum_j n_kj + sum_i n_ik - n_kk)."""
  diagonal = jnp.diagonal(confusion)
  return diagonal, confusion.sum(0) + confusion.sum(1) - diagonal


def mean_iou(confusion) -> float:
  """Mean IoU over the classes that occur in the truth or the predictions."""
  intersection, union = (np.asarray(x, np.float64) for x in iou_parts(jnp.asarray(confusion)))
  present = union > 0
  return float((intersection[present] / union[present]).mean())


def load_front_end(workdir: str):
  """The front-end parameters at the newest checkpoint of the training run in `workdir`."""
  from core.train import restore_latest  # pylint: disable=g-import-not-at-top  # (imports core.task)
  config = run_config(workdir, "python -m launch.train --config configs/dilated_conv.py:front_end "
                               f"--workdir {workdir} (model.init_from names the front end's run)")
  _, state, _ = restore_latest(config, workdir)
  return jax.device_get(state.params["front_end"])


class SegmentationTask(Task):

  def __init__(self, config):
    super().__init__(config)
    d, m = config.data, config.model
    check_choice(config, "data.name", tuple(DATA_NAMES))
    check_choice(config, "model.front_end", tuple(model_lib.FRONT_ENDS))
    check_choice(config, "model.context", ("none", "basic", "large"))
    self.size = d.canvas.size if d.name == "canvases" else d.crop
    if self.size % 8:
      raise ConfigError(f"the image side {self.size} must be a multiple of 8 (the front end's output stride)")
    if d.eval_batch_size % 8:
      raise ConfigError(f"data.eval_batch_size {d.eval_batch_size} must be a multiple of 8 rows")
    self.num_classes = 11 if d.name == "canvases" else sd.VOC_CLASSES
    self.channels = 1 if d.name == "canvases" else 3
    if d.name == "canvases":
      self.canvas = sd.CanvasSpec(**d.canvas.to_dict())
      if not 0 < self.canvas.min_side <= self.canvas.max_side <= self.size:
        raise ConfigError(f"data.canvas needs 0 < min_side <= max_side <= size, got {self.canvas}")
      self.mean, self.std = image_data.CHANNEL_STATS["fashion_mnist"]
    else:
      self.mean, self.std = sd.VOC_MEAN, sd.VOC_STD
    self.model = model_lib.DilatedSegmenter(front_end=m.front_end, num_classes=self.num_classes,
                                            context=m.context, dropout=m.dropout,
                                            identity_noise=m.identity_noise,
                                            train_front_end=m.get("train_front_end", True), dtype=self.dtype)
    self.front_end_params = load_front_end(m.init_from) if m.get("init_from") else None

  # ---- data -------------------------------------------------------------------
  @functools.cached_property
  def _items(self):
    return {split: image_data.load_images("fashion_mnist", split) for split in ("train", "test")}

  def check_data(self):
    if self.config.data.name == "canvases":
      self._items  # pylint: disable=pointless-statement  # raises DataMissingError
    else:
      sd.voc_root(self.config.data.voc_dir)

  def source(self, split: str):
    """Train or held-out examples as a random-access source."""
    d = self.config.data
    if d.name == "canvases":
      length = d.train_canvases if split == "train" else d.test_canvases
      return sd.CanvasSource(self._items[split], self.canvas, self.config.seed, split, length)
    return sd.VocSource(d.voc_dir, "train" if split == "train" else "val", d.crop, self.config.seed,
                        random_crop=split == "train")

  def train_examples(self):
    return self.source("train")

  def batch_spec(self):
    b, s = self.config.batch_size, self.size
    return {"images": spec((b, s, s, self.channels), np.uint8), "labels": spec((b, s, s), np.int32)}

  def eval_batches(self):
    """The held-out examples in batches of eval_batch_size; padding rows are all label -1."""
    source, size = self.source("test"), self.config.data.eval_batch_size
    for start in range(0, len(source), size):
      rows = [source[i] for i in range(start, min(start + size, len(source)))]
      images = np.stack([r["images"] for r in rows])
      labels = np.stack([r["labels"] for r in rows])
      pad = size - len(rows)
      yield {"images": np.pad(images, ((0, pad), (0, 0), (0, 0), (0, 0))),
             "labels": np.pad(labels, ((0, pad), (0, 0), (0, 0)), constant_values=-1)}

  # ---- model ------------------------------------------------------------------
  def init(self, rng):
    variables = self.model.init(rng, jnp.zeros((1, self.size, self.size, self.channels)), train=False)
    if self.front_end_params is None:
      return variables
    # Stage two: the trained front end's values in the new front end's (logically named) boxes.
    params = dict(variables["params"])
    params["front_end"] = jax.tree.map(
        lambda box, value: box.replace_boxed(jnp.asarray(value)), params["front_end"],
        self.front_end_params, is_leaf=lambda x: isinstance(x, nn.Partitioned))
    return {**variables, "params": params}

  def scores(self, variables, images, train=False, rng=None):
    """Class scores at the input resolution: the network's 1/8 scores upsampled bilinearly."""
    x = (jnp.asarray(images, jnp.float32) / 255.0 - np.array(self.mean, np.float32)) / np.array(self.std, np.float32)
    coarse, updates = self.apply(variables, x, train=train, rng=rng)
    b, _, _, c = coarse.shape
    return jax.image.resize(coarse.astype(jnp.float32), (b, self.size, self.size, c), "bilinear"), updates

  def _pixel_losses(self, scores, labels):
    valid = (labels >= 0) & (labels < self.num_classes)
    losses = optax.softmax_cross_entropy_with_integer_labels(scores, jnp.where(valid, labels, 0))
    return losses * valid, valid.astype(jnp.float32)

  def loss(self, variables, batch, rng, *, train):
    scores, updates = self.scores(variables, batch["images"], train, rng)
    losses, valid = self._pixel_losses(scores, batch["labels"])
    count = jnp.maximum(valid.sum(), 1.0)
    correct = (scores.argmax(-1) == batch["labels"]) * valid
    return losses.sum() / count, {"pixel_accuracy": correct.sum() / count}, updates

  def eval_metrics(self, variables, batch):
    scores, _ = self.scores(variables, batch["images"])
    losses, valid = self._pixel_losses(scores, batch["labels"])
    predictions = scores.argmax(-1)
    intersection, union = iou_parts(confusion_matrix(predictions, batch["labels"], self.num_classes))
    out = {"loss": ratio(losses.sum(), valid.sum()),
           "pixel_accuracy": ratio(((predictions == batch["labels"]) * valid).sum(), valid.sum())}
    out.update({f"iou_{k}": ratio(intersection[k], union[k]) for k in range(self.num_classes)})
    return out

  @functools.cached_property
  def _confusion(self):
    return jax.jit(lambda v, images, labels: confusion_matrix(
        self.scores(v, images)[0].argmax(-1), labels, self.num_classes))

  def confusion(self, variables) -> np.ndarray:
    """The confusion matrix of the whole held-out set."""
    total = np.zeros((self.num_classes, self.num_classes))
    for batch in self.eval_batches():
      total += np.asarray(self._confusion(variables, batch["images"], batch["labels"]))
    return total

  def evaluate(self, variables, step):
    del step
    return {"miou": mean_iou(self.confusion(variables))}
