"""The CS231n classifiers trained on images: Fashion-MNIST offline, CIFAR-10 through TFDS.

The data pipeline, its order (a pure function of (seed, step)) and the evaluation batches are
those of the ResNet image task (papers/resnet/task.py), without augmentation by default (the
course's assignments train on the raw images). What changes is the model (model.Classifier),
the data loss (`model.loss`: "softmax" cross-entropy or the multiclass "svm" hinge loss) and the
course's L2 regularisation `model.reg * sum(W * W)` added to the training loss.

Eval metrics (batch-norm running averages, no dropout): `test_accuracy`, `test_error` and `loss`
(the data loss, without the penalty) over the test split, and `train_error` over the first
`data.eval_train_examples` training images.
"""
from __future__ import annotations

import jax
import jax.numpy as jnp

from core import image_data
from core.task import ConfigError, Task, ratio
from core.validate import check_choice
from papers.cs231n import layers
from papers.cs231n.model import KINDS, Classifier
from papers.resnet.task import TEST, TRAIN, ImageClassificationTask

DATA_LOSSES = {"softmax": layers.softmax_loss, "svm": layers.svm_loss}


class CS231nTask(ImageClassificationTask):
  supported_dtypes = ("float32",)

  def __init__(self, config):  # pylint: disable=super-init-not-called
    Task.__init__(self, config)  # the ResNet task's data, with a model of its own
    d, m = config.data, config.model
    check_choice(config, "data.name", tuple(image_data.NAMES))
    if d.eval_batch_size % 8:
      raise ConfigError(f"data.eval_batch_size {d.eval_batch_size} must be a multiple of 8 rows "
                        f"(so an eval batch splits over up to 8 devices)")
    check_choice(config, "model.kind", tuple(KINDS))
    check_choice(config, "model.loss", tuple(DATA_LOSSES))
    if not 0.0 < m.dropout_keep <= 1.0:
      raise ConfigError(f"model.dropout_keep is a keep probability in (0, 1], got {m.dropout_keep}")
    self.shape = image_data.IMAGE_SHAPE[d.name]
    self.data_loss = DATA_LOSSES[m.loss]
    # Only a net with batch norm has running averages to keep.
    self.model_state = ("batch_stats",) if m.batchnorm and m.kind != "linear" else ()
    self.model = Classifier(kind=m.kind, num_classes=image_data.NUM_CLASSES[d.name],
                            hidden=m.hidden, channels=tuple(m.channels), batchnorm=m.batchnorm,
                            dropout_keep=m.dropout_keep)

  def loss(self, variables, batch, rng, *, train):
    scores, updates = self._logits(variables, batch["images"], train, rng)
    data_loss = self.data_loss(scores, batch["labels"])
    penalty = layers.l2_penalty(variables["params"], self.config.model.reg) if train else 0.0
    accuracy = (scores.argmax(-1) == batch["labels"]).mean()
    return data_loss + penalty, {"data_loss": data_loss, "accuracy": accuracy,
                                 "error": 1.0 - accuracy}, updates

  def eval_metrics(self, variables, batch):
    scores, _ = self._logits(variables, batch["images"], train=False)
    # Per-row data losses (the mean loss of a one-row batch), to sum over the test rows only.
    losses = jax.vmap(lambda s, y: self.data_loss(s[None], y[None]))(scores, batch["labels"])
    wrong = (scores.argmax(-1) != batch["labels"]).astype(jnp.float32)
    is_train = (batch["split"] == TRAIN).astype(jnp.float32)
    is_test = (batch["split"] == TEST).astype(jnp.float32)
    return {
        "loss": ratio((losses * is_test).sum(), is_test.sum()),
        "test_error": ratio((wrong * is_test).sum(), is_test.sum()),
        "test_accuracy": ratio(((1 - wrong) * is_test).sum(), is_test.sum()),
        "train_error": ratio((wrong * is_train).sum(), is_train.sum()),
    }
