"""Sort-of-CLEVR visual QA with a CNN+RN or the CNN+MLP baseline (Santoro et al. 2017).

An example is one (image, question) pair; a training batch draws `batch_size` of them, with
replacement, from the `train_images` x 20 pairs of the training split. The test split is
`test_images` further scenes (the paper: 9,800 training and 200 held-out images).
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from core.task import ConfigError, Task, step_rng
from papers.relation_networks import model as rn_model
from papers.relation_networks import sort_of_clevr as soc

KIND_NAMES = tuple(f"{t}_{s}" for t, subtypes in zip(("nonrel", "rel"), soc.SUBTYPES)
                   for s in subtypes)
QUESTIONS_PER_IMAGE = 20


class SortOfClevrTask(Task):

  def __init__(self, config):
    super().__init__(config)
    m, d = config.model, config.data
    if m.head not in ("rn", "mlp"):
      raise ConfigError(f"config.model.head must be 'rn' or 'mlp', got {m.head!r}")
    self.model = rn_model.VisualQA(
        num_answers=soc.NUM_ANSWERS, head=m.head, channels=tuple(m.channels),
        g_units=tuple(m.g_units), f_units=tuple(m.f_units), dtype=jnp.dtype(config.dtype))
    self._scene = functools.lru_cache(maxsize=None)(functools.partial(
        self._make_scene, image_size=d.image_size, object_size=d.object_size))

  def _make_scene(self, split, index, image_size, object_size):
    return soc.scene(self.config.seed, split, index, image_size, object_size,
                     QUESTIONS_PER_IMAGE // 2)

  def _examples(self, split, image_ids, question_ids):
    scenes = [self._scene(split, int(i)) for i in image_ids]
    return {
        "images": np.stack([s.image for s in scenes]),
        "questions": np.stack([s.questions[j] for s, j in zip(scenes, question_ids)]),
        "answers": np.array([s.answers[j] for s, j in zip(scenes, question_ids)], np.int32),
        "kinds": np.array([s.kinds[j] for s, j in zip(scenes, question_ids)], np.int32),
    }

  def init_params(self, rng):
    size = self.config.data.image_size
    images = jnp.zeros((2, size, size, 3), jnp.float32)
    return self.model.init(rng, images, jnp.zeros((2, soc.QUESTION_BITS)))["params"]

  def logits(self, params, batch):
    images = jnp.asarray(batch["images"], jnp.float32) / 255.0
    return self.model.apply({"params": params}, images, jnp.asarray(batch["questions"]))

  def loss(self, params, batch, rng):
    del rng  # the Sort-of-CLEVR model has no dropout
    logits = self.logits(params, batch)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["answers"]).mean()
    correct = (logits.argmax(-1) == batch["answers"]).astype(jnp.float32)
    relational = (batch["kinds"] >= 3).astype(jnp.float32)
    return loss, {
        "accuracy": correct.mean(),
        "relational_accuracy": (correct * relational).sum() / jnp.maximum(relational.sum(), 1),
        "non_relational_accuracy":
            (correct * (1 - relational)).sum() / jnp.maximum((1 - relational).sum(), 1),
    }

  def train_batch(self, step, shard=0, num_shards=1):
    batch_size = self.config.batch_size
    if batch_size % num_shards:
      raise ConfigError(f"batch_size={batch_size} must divide by the {num_shards} data shards")
    rng = step_rng(self.config.seed, step)
    image_ids = rng.integers(0, self.config.data.train_images, batch_size)
    question_ids = rng.integers(0, QUESTIONS_PER_IMAGE, batch_size)
    rows = slice(shard * batch_size // num_shards, (shard + 1) * batch_size // num_shards)
    return self._examples("train", image_ids[rows], question_ids[rows])

  def test_batches(self):
    """The whole test split, whole images per batch, so every batch is half relational."""
    per_batch = self.config.data.eval_images_per_batch
    if self.config.data.test_images % per_batch:
      raise ConfigError("data.test_images must be a multiple of data.eval_images_per_batch")
    for start in range(0, self.config.data.test_images, per_batch):
      image_ids = np.repeat(np.arange(start, start + per_batch), QUESTIONS_PER_IMAGE)
      question_ids = np.tile(np.arange(QUESTIONS_PER_IMAGE), per_batch)
      yield self._examples("test", image_ids, question_ids)

  @functools.cached_property
  def _predict(self):
    def predict(params, batch):
      logits = self.logits(params, batch)
      losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["answers"])
      return losses, logits.argmax(-1)
    return jax.jit(predict)

  def evaluate(self, params, step):
    """Test loss and accuracy: overall, relational, non-relational and per question kind.

    One host-side pass over the test split (no `eval_batches`), so the per-kind counts are
    exact and the test set is scored once per evaluation.
    """
    del step
    losses, correct, kinds = [], [], []
    for batch in self.test_batches():
      loss, prediction = jax.device_get(self._predict(params, batch))
      losses.append(loss)
      correct.append(prediction == batch["answers"])
      kinds.append(batch["kinds"])
    losses, correct, kinds = map(np.concatenate, (losses, correct, kinds))
    metrics = {"loss": float(losses.mean()), "accuracy": float(correct.mean()),
               "relational_accuracy": float(correct[kinds >= 3].mean()),
               "non_relational_accuracy": float(correct[kinds < 3].mean())}
    metrics.update({f"accuracy_{name}": float(correct[kinds == k].mean())
                    for k, name in enumerate(KIND_NAMES)})
    return metrics
