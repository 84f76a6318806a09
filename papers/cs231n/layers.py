"""The CS231n assignment layers as pure JAX functions (the course writes each forward pass with a
hand-derived backward pass; here `jax.grad` is the backward pass and the tests check it numerically).

    k-nearest neighbour   pairwise L1 / L2 distances (vectorised, in chunks), majority vote,
                          k chosen by n-fold cross-validation (assignment 1, knn.ipynb)
    svm_loss              multiclass hinge loss, margin 1 (Weston-Watkins; assignment 1, svm.ipynb)
    softmax_loss          cross-entropy of the softmax (assignment 1, softmax.ipynb)
    batch_norm            Ioffe & Szegedy 2015 with running averages (assignment 2, BatchNormalization)
    dropout               inverted dropout: kept units are scaled by 1/p in training, so that the
                          network is used unchanged at test time (assignment 2, Dropout)
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np


# ---- k-nearest neighbour ------------------------------------------------------------------

def pairwise_distances(queries, references, metric: str = "l2"):
  """(Q, R) distances between the rows of `queries` (Q, D) and `references` (R, D).

  L2 uses the course's no-loop identity |q - r|^2 = |q|^2 - 2 q.r + |r|^2 (one matrix product);
  L1 has no such identity and sums |q - r| over D, which is memory-bound (Q x R x D)."""
  queries, references = jnp.asarray(queries), jnp.asarray(references)
  if metric == "l2":
    squared = ((queries ** 2).sum(1)[:, None] - 2.0 * queries @ references.T
               + (references ** 2).sum(1)[None, :])
    return jnp.sqrt(jnp.maximum(squared, 0.0))  # rounding can make tiny distances negative
  if metric == "l1":
    return jnp.abs(queries[:, None, :] - references[None, :, :]).sum(-1)
  raise ValueError(f"metric must be 'l1' or 'l2', got {metric!r}")


@functools.partial(jax.jit, static_argnames=("metric", "k_max"))
def _nearest_labels(queries, references, reference_labels, metric: str, k_max: int):
  distances = pairwise_distances(queries, references, metric)
  _, nearest = jax.lax.top_k(-distances, k_max)  # ties: the lower index first
  return reference_labels[nearest]


def nearest_labels(queries, references, reference_labels, k_max: int, metric: str = "l2",
                   chunk: int = 500) -> np.ndarray:
  """Labels of the k_max nearest references of each query, nearest first: (Q, k_max) int.

  Queries go `chunk` rows at a time so that a (chunk, R) distance matrix is all that lives
  in memory (an L1 chunk also holds chunk x R x D differences: keep it small)."""
  references = jnp.asarray(references, jnp.float32)
  labels = jnp.asarray(reference_labels, jnp.int32)
  out = []
  for start in range(0, len(queries), chunk):
    rows = jnp.asarray(queries[start:start + chunk], jnp.float32)
    out.append(np.asarray(_nearest_labels(rows, references, labels, metric, k_max)))
  return np.concatenate(out)


def vote(neighbour_labels: np.ndarray, k: int, num_classes: int) -> np.ndarray:
  """Majority label among the first k neighbours; a tie goes to the smallest label (as the
  course's np.argmax over np.bincount)."""
  counts = np.zeros((len(neighbour_labels), num_classes), np.int64)
  np.add.at(counts, (np.arange(len(neighbour_labels))[:, None], neighbour_labels[:, :k]), 1)
  return counts.argmax(1)


def cross_validate_k(images: np.ndarray, labels: np.ndarray, ks, num_folds: int = 5,
                     metric: str = "l2", num_classes: int = 10, chunk: int = 500):
  """Assignment 1's cross-validation: split the training set into `num_folds` folds; for each
  fold, classify it with the other folds as references; accuracy[k] is one value per fold.
  Returns (best k by mean accuracy, {k: [accuracy of each fold]})."""
  folds_x, folds_y = np.array_split(images, num_folds), np.array_split(labels, num_folds)
  accuracies = {k: [] for k in ks}
  for i in range(num_folds):
    references = np.concatenate(folds_x[:i] + folds_x[i + 1:])
    reference_labels = np.concatenate(folds_y[:i] + folds_y[i + 1:])
    neighbours = nearest_labels(folds_x[i], references, reference_labels, max(ks), metric, chunk)
    for k in ks:
      accuracies[k].append(float((vote(neighbours, k, num_classes) == folds_y[i]).mean()))
  best = max(ks, key=lambda k: (np.mean(accuracies[k]), -k))  # ties: the smaller k
  return best, accuracies


# ---- linear-classifier losses ---------------------------------------------------------------

def svm_loss(scores, labels, delta: float = 1.0):
  """Mean over rows of sum_{j != y} max(0, s_j - s_y + delta)."""
  correct = jnp.take_along_axis(scores, labels[:, None], axis=1)
  margins = jnp.maximum(0.0, scores - correct + delta)
  margins = jnp.where(jax.nn.one_hot(labels, scores.shape[1], dtype=bool), 0.0, margins)
  return margins.sum(1).mean()


def softmax_loss(scores, labels):
  """Mean over rows of -log softmax(s)_y, with the max subtracted for numerical stability."""
  log_probs = jax.nn.log_softmax(scores, axis=1)
  return -jnp.take_along_axis(log_probs, labels[:, None], axis=1).mean()


def l2_penalty(params, reg: float):
  """The course's regularisation `reg * sum(W * W)` over weight matrices (kernels), not biases."""
  kernels = [leaf for path, leaf in jax.tree_util.tree_leaves_with_path(params)
             if any(getattr(key, "key", None) == "kernel" for key in path)]
  return reg * sum(jnp.sum(jnp.square(w)) for w in kernels)


# ---- batch normalisation and dropout ------------------------------------------------------

def batch_norm(x, gamma, beta, running_mean, running_var, *, train: bool, momentum: float = 0.9,
               eps: float = 1e-5):
  """Normalises each feature (the last axis; for images, each channel over batch, height and
  width: spatial batch norm). Returns (y, new_running_mean, new_running_var).

  Training uses the batch's mean and (biased) variance and updates the running averages as the
  course does: running = momentum * running + (1 - momentum) * batch. Evaluation uses the
  running averages and leaves them unchanged."""
  axes = tuple(range(x.ndim - 1))
  if train:
    mean, var = x.mean(axes), x.var(axes)
    running_mean = momentum * running_mean + (1.0 - momentum) * mean
    running_var = momentum * running_var + (1.0 - momentum) * var
  else:
    mean, var = running_mean, running_var
  y = (x - mean) * jax.lax.rsqrt(var + eps) * gamma + beta
  return y, running_mean, running_var


def dropout_mask(rng, keep: float, shape):
  """Bernoulli(keep) mask, already divided by keep (inverted dropout)."""
  return jax.random.bernoulli(rng, keep, shape).astype(jnp.float32) / keep


def dropout(x, keep: float, *, train: bool, rng=None, mask=None):
  """Inverted dropout with keep probability `keep` (the course's `p`): each unit is kept with
  probability keep and scaled by 1/keep, so E[output] = x; identity at test time. `mask` (from
  `dropout_mask`) fixes the draw, e.g. for a gradient check."""
  if not train or keep >= 1.0:
    return x
  if mask is None:
    mask = dropout_mask(rng, keep, x.shape)
  return x * mask.astype(x.dtype)
