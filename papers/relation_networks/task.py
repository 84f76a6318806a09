"""Sort-of-CLEVR visual QA with a CNN+RN or the CNN+MLP baseline (Santoro et al. 2017).

An example is one (image, question) pair; a training batch draws `batch_size` of them, with
replacement, from the `train_images` x 20 pairs of the training split, by (seed, step). The
test split is `test_images` further scenes drawn from `heldout_rng(seed, index)` (the paper:
9,800 training and 200 held-out images); `eval_batches` holds all of its questions, whole
images per batch, and `eval_metrics` scores them under the trainer's jit: loss and accuracy
overall, on relational and non-relational questions and on each of the six question kinds.
"""
from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np
import optax

from core.task import ConfigError, Task, ratio, spec, step_rng
from core.validate import check_choice
from papers.relation_networks import model as rn_model
from papers.relation_networks import sort_of_clevr as soc

KIND_NAMES = tuple(f"{t}_{s}" for t, subtypes in zip(("nonrel", "rel"), soc.SUBTYPES)
                   for s in subtypes)
QUESTIONS_PER_IMAGE = 20
RELATIONAL_KINDS = 3  # kinds 3, 4, 5 are relational (kind = 3 * type + subtype)


class SortOfClevrTask(Task):

  def __init__(self, config):
    super().__init__(config)
    m, d = config.model, config.data
    check_choice(config, "model.head", ("rn", "mlp"))
    if d.eval_images_per_batch < 1 or d.test_images % d.eval_images_per_batch:
      raise ConfigError(f"data.test_images {d.test_images} must be a multiple of "
                        f"data.eval_images_per_batch {d.eval_images_per_batch}")
    self.model = rn_model.VisualQA(
        num_answers=soc.NUM_ANSWERS, head=m.head, channels=tuple(m.channels),
        g_units=tuple(m.g_units), f_units=tuple(m.f_units), dtype=self.dtype)
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

  # ---- model ----------------------------------------------------------------
  def init(self, rng):
    size = self.config.data.image_size
    images = jnp.zeros((2, size, size, 3), jnp.float32)
    return self.model.init(rng, images, jnp.zeros((2, soc.QUESTION_BITS)))

  def _logits(self, variables, batch, rng, train):
    images = jnp.asarray(batch["images"], jnp.float32) / 255.0
    return self.apply(variables, images, jnp.asarray(batch["questions"]), train=train, rng=rng)

  def loss(self, variables, batch, rng, *, train):
    # No dropout and no running statistics: train and eval differ in nothing.
    logits, updates = self._logits(variables, batch, rng, train)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["answers"]).mean()
    correct = (logits.argmax(-1) == batch["answers"]).astype(jnp.float32)
    relational = (batch["kinds"] >= RELATIONAL_KINDS).astype(jnp.float32)
    return loss, {
        "accuracy": correct.mean(),
        "relational_accuracy": (correct * relational).sum() / jnp.maximum(relational.sum(), 1),
        "non_relational_accuracy":
            (correct * (1 - relational)).sum() / jnp.maximum((1 - relational).sum(), 1),
    }, updates

  def eval_metrics(self, variables, batch):
    """Sums and counts over the batch's questions, overall and per question subset."""
    logits, _ = self._logits(variables, batch, None, train=False)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["answers"])
    correct = (logits.argmax(-1) == batch["answers"]).astype(jnp.float32)
    kinds = batch["kinds"]
    rows = kinds.shape[0]
    relational = (kinds >= RELATIONAL_KINDS).astype(jnp.float32)
    metrics = {
        "loss": (losses.sum(), rows),
        "accuracy": (correct.sum(), rows),
        "relational_accuracy": ratio((correct * relational).sum(), relational.sum()),
        "non_relational_accuracy": ratio((correct * (1 - relational)).sum(),
                                         (1 - relational).sum()),
    }
    for k, name in enumerate(KIND_NAMES):
      mask = (kinds == k).astype(jnp.float32)
      metrics[f"accuracy_{name}"] = ratio((correct * mask).sum(), mask.sum())
    return metrics

  # ---- data -----------------------------------------------------------------
  def batch_spec(self):
    b, size = self.config.batch_size, self.config.data.image_size
    return {"images": spec((b, size, size, 3), np.uint8),
            "questions": spec((b, soc.QUESTION_BITS), np.uint8),
            "answers": spec((b,), np.int32), "kinds": spec((b,), np.int32)}

  def train_batch(self, step):
    batch_size = self.config.batch_size
    rng = step_rng(self.config.seed, step)
    image_ids = rng.integers(0, self.config.data.train_images, batch_size)
    question_ids = rng.integers(0, QUESTIONS_PER_IMAGE, batch_size)
    return self._examples("train", image_ids, question_ids)

  def eval_batches(self):
    """The whole test split, `eval_images_per_batch` whole images (x 20 questions) a batch,
    so every batch is half relational and its batch-norm statistics come from whole images."""
    per_batch = self.config.data.eval_images_per_batch
    for start in range(0, self.config.data.test_images, per_batch):
      image_ids = np.repeat(np.arange(start, start + per_batch), QUESTIONS_PER_IMAGE)
      question_ids = np.tile(np.arange(QUESTIONS_PER_IMAGE), per_batch)
      yield self._examples("test", image_ids, question_ids)
