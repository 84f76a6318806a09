"""The Nth-farthest task of Santoro et al. 2018 (section 4.1, appendix A.1).

A sequence shows K=8 vectors of D=16 dims drawn from U(-1, 1), one per step. Each
vector carries a random label (a permutation of 1..K, so labels do not match time
positions), and every step also carries the question "what is the n-th farthest
vector (Euclidean distance) from the vector labelled m?". Step t's input is the
40-dim concatenation (x_t; one_hot(label_t); one_hot(n); one_hot(m)); the target
is the label of the answer (n=1: farthest; n=K: the reference itself).
Fresh sequences every step, as in the paper; the test set is a fixed sample from the
held-out stream (core.task.heldout_rng).
"""
from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np
import optax

from core.task import ConfigError, Task, heldout_rng, ratio, spec, step_rng
from papers.relational_rnn.model import SequenceClassifier


def nth_farthest_batch(rng: np.random.Generator, batch_size: int, num_objects: int = 8,
                       num_features: int = 16):
  """(inputs [B, K, D + 3K] float32, targets [B] int32 labels in 0..K-1, n [B] 0-based)."""
  b = np.arange(batch_size)[:, None]
  vectors = rng.uniform(-1.0, 1.0, (batch_size, num_objects, num_features))
  labels = np.argsort(rng.random((batch_size, num_objects)), axis=1)  # label of each position
  n = rng.integers(0, num_objects, batch_size)          # 0 = farthest
  reference = rng.integers(0, num_objects, batch_size)  # position of the vector labelled m
  m = labels[b[:, 0], reference]
  distances = np.linalg.norm(vectors - vectors[b[:, 0], reference][:, None], axis=-1)
  farthest_first = np.argsort(-distances, axis=1, kind="stable")
  targets = labels[b[:, 0], farthest_first[b[:, 0], n]]
  eye = np.eye(num_objects)
  question = np.concatenate([eye[n], eye[m]], axis=-1)[:, None, :]
  inputs = np.concatenate(
      [vectors, eye[labels], np.broadcast_to(question, (batch_size, num_objects, 2 * num_objects))],
      axis=-1)
  return inputs.astype(np.float32), targets.astype(np.int32), n.astype(np.int32)


def core_kwargs(m) -> dict:
  """The RelationalMemoryCore / LSTMCore fields that `config.model` names (model.core)."""
  if m.core == "rmc":
    return dict(mem_slots=m.mem_slots, head_size=m.head_size, num_heads=m.num_heads,
                num_blocks=m.num_blocks, attention_mlp_layers=m.attention_mlp_layers,
                gate_style=m.gate_style or None, key_size=m.key_size or None)
  if m.core == "lstm":
    return dict(hidden_size=m.hidden_size)
  raise ConfigError(f"config.model.core must be 'rmc' or 'lstm', got {m.core!r}")


class NthFarthestTask(Task):
  """RMC (or LSTM) reads the 8 vectors and names the n-th farthest from vector m.

  Evaluation scores the fixed test set (`data.test_examples` sequences from
  `heldout_rng(seed)`) once, under the trainer's jit: loss, accuracy, accuracy per n
  (`accuracy_n1` .. `accuracy_nK`) and on the questions with n < K (`accuracy_nontrivial`).
  """

  def __init__(self, config):
    super().__init__(config)
    d, m = config.data, config.model
    if d.num_objects < 2:
      raise ConfigError(f"config.data.num_objects must be >= 2, got {d.num_objects}")
    if d.test_examples % d.eval_batch_size:
      raise ConfigError(f"config.data.test_examples ({d.test_examples}) must be a multiple of "
                        f"config.data.eval_batch_size ({d.eval_batch_size})")
    self.model = SequenceClassifier(num_classes=d.num_objects, core=m.core, core_kwargs=core_kwargs(m),
                                    mlp_sizes=tuple(m.mlp_sizes), unroll=m.unroll, dtype=self.dtype)

  def _batch(self, rng, size):
    d = self.config.data
    inputs, targets, n = nth_farthest_batch(rng, size, d.num_objects, d.num_features)
    return {"inputs": inputs, "targets": targets, "n": n}

  def init(self, rng):
    d = self.config.data
    x = jnp.zeros((1, d.num_objects, d.num_features + 3 * d.num_objects), jnp.float32)
    return self.model.init(rng, x)

  def batch_spec(self):
    b, d = self.config.batch_size, self.config.data
    return {"inputs": spec((b, d.num_objects, d.num_features + 3 * d.num_objects), np.float32),
            "targets": spec((b,), np.int32), "n": spec((b,), np.int32)}

  def loss(self, variables, batch, rng, *, train):
    logits, state = self.apply(variables, batch["inputs"], train=train, rng=rng)
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets"]).mean()
    accuracy = (jnp.argmax(logits, -1) == batch["targets"]).mean()
    return loss, {"accuracy": accuracy}, state

  def train_batch(self, step):
    return self._batch(step_rng(self.config.seed, step), self.config.batch_size)

  @functools.cached_property
  def test_set(self):
    """The fixed test set: `data.test_examples` sequences from the held-out stream."""
    return self._batch(heldout_rng(self.config.seed), self.config.data.test_examples)

  def eval_batches(self):
    test, size = self.test_set, self.config.data.eval_batch_size
    return [{k: v[i:i + size] for k, v in test.items()}
            for i in range(0, self.config.data.test_examples, size)]

  def eval_metrics(self, variables, batch):
    """Loss and accuracy over all rows, accuracy per n, and on the non-trivial n < K."""
    logits, _ = self.apply(variables, batch["inputs"], train=False)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets"])
    correct = (jnp.argmax(logits, -1) == batch["targets"]).astype(jnp.float32)
    rows = correct.shape[0]
    k = self.config.data.num_objects
    metrics = {"loss": (losses.sum(), rows), "accuracy": (correct.sum(), rows)}
    for i in range(k):  # n = i + 1; n = K asks for the reference itself
      is_n = (batch["n"] == i).astype(jnp.float32)
      metrics[f"accuracy_n{i + 1}"] = ratio(jnp.sum(correct * is_n), jnp.sum(is_n))
    nontrivial = (batch["n"] != k - 1).astype(jnp.float32)
    metrics["accuracy_nontrivial"] = ratio(jnp.sum(correct * nontrivial), jnp.sum(nontrivial))
    return metrics
