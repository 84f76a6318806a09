"""Sorting a set of numbers (Vinyals, Bengio, Kudlur 2016, sec. 4.4 and 5.1.3).

An example is N numbers drawn uniformly from [0, 1); the answer is their indices in
increasing order of value. A training batch is a pure function of (seed, step)
(`core.task.step_rng`); the test sets come from the held-out stream (`heldout_rng`).

`config.data.output_order` picks how the answer is emitted (sec. 5.1.3, the output-order
experiment):
  sorted   the indices in increasing order of value (Table 1's setting)
  fixed    the same indices in one fixed arbitrary order of ranks (e.g. ranks 4, 0, 2, 3, 1)
  random   the answer as a set of (index, rank) tuples, in a fresh random order for every
           example: the model also emits each pointed element's rank

Accuracy is the paper's: the fraction of test sets answered entirely right (greedy decoding;
for `random`, every emitted (index, rank) tuple right). The input-order experiment scores the
same test sets presented in another random order (`accuracy_shuffled`), presented already
sorted (`accuracy_presorted`), and how often the decoded answers under the two random
orders name the same elements (`order_agreement`): 1 by construction for read-process-write.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import optax

from core.task import ConfigError, Task, heldout_rng, ratio, spec, step_rng
from core.validate import check_choice
from papers.order_matters.model import SetPointerNet

OUTPUT_ORDERS = ("sorted", "fixed", "random")
ENCODERS = ("set", "lstm")


def fixed_rank_order(n: int) -> np.ndarray:
  """The `fixed` output order: one arbitrary permutation of the ranks 0..n-1 (not the identity)."""
  order = np.random.default_rng(n).permutation(n)
  return order if n < 2 or not np.array_equal(order, np.arange(n)) else order[::-1].copy()


def sorting_examples(rng: np.random.Generator, rows: int, n: int, output_order: str) -> dict:
  """`rows` sets of `n` numbers with their targets: pointers [rows, n] and ranks [rows, n]
  (ranks[b, t] is the rank of the element pointed at in step t), and `shuffle` [rows, n],
  a further random permutation of each set (used by the input-order evaluation)."""
  inputs = rng.random((rows, n)).astype(np.float32)
  if output_order == "sorted":
    ranks = np.tile(np.arange(n), (rows, 1))
  elif output_order == "fixed":
    ranks = np.tile(fixed_rank_order(n), (rows, 1))
  else:
    ranks = rng.permuted(np.tile(np.arange(n), (rows, 1)), axis=1)
  order = np.argsort(inputs, axis=1, kind="stable")
  pointers = np.take_along_axis(order, ranks, axis=1)
  shuffle = rng.permuted(np.tile(np.arange(n), (rows, 1)), axis=1)
  return {"inputs": inputs, "pointers": pointers.astype(np.int32), "ranks": ranks.astype(np.int32),
          "shuffle": shuffle.astype(np.int32)}


def answer_is_right(inputs, pointers, ranks):
  """[B] bool: pointers are distinct and each pointed element has the emitted rank."""
  true_rank = jnp.argsort(jnp.argsort(inputs, axis=1), axis=1)
  distinct = jnp.all(jnp.sort(pointers, axis=1) == jnp.arange(inputs.shape[1]), axis=1)
  return distinct & jnp.all(jnp.take_along_axis(true_rank, pointers, axis=1) == ranks, axis=1)


class SortingTask(Task):

  def __init__(self, config):
    super().__init__(config)
    m, d = config.model, config.data
    check_choice(config, "model.encoder", tuple(ENCODERS))
    check_choice(config, "data.output_order", tuple(OUTPUT_ORDERS))
    if d.num_elements < 2:
      raise ConfigError(f"config.data.num_elements must be at least 2, got {d.num_elements}")
    if m.process_steps < 0 or m.glimpses < 0:
      raise ConfigError("config.model.process_steps and config.model.glimpses must be >= 0")
    if d.eval_batch_size < 1 or d.eval_sets % d.eval_batch_size:
      raise ConfigError(f"data.eval_sets {d.eval_sets} must be a multiple of data.eval_batch_size "
                        f"{d.eval_batch_size}")
    self.num_elements = d.num_elements
    self.model = SetPointerNet(
        hidden=m.hidden, process_steps=m.process_steps, glimpses=m.glimpses, encoder=m.encoder,
        num_ranks=d.num_elements if d.output_order == "random" else 0,
        mask_pointed=m.get("mask_pointed", False), dtype=self.dtype)

  # ---- model ----------------------------------------------------------------
  def init(self, rng):
    n = self.num_elements
    return self.model.init(rng, jnp.zeros((2, n)), jnp.zeros((2, n), jnp.int32), jnp.zeros((2, n), jnp.int32))

  def _losses(self, variables, batch):
    """Per-example negative log-likelihood of the target, and teacher-forced step accuracy."""
    (pointer_logits, rank_logits), _ = self.apply(
        variables, batch["inputs"], batch["pointers"], batch["ranks"], train=False)
    nll = optax.softmax_cross_entropy_with_integer_labels(pointer_logits, batch["pointers"]).sum(-1)
    right = pointer_logits.argmax(-1) == batch["pointers"]
    if rank_logits is not None:
      nll = nll + optax.softmax_cross_entropy_with_integer_labels(rank_logits, batch["ranks"]).sum(-1)
      right = right & (rank_logits.argmax(-1) == batch["ranks"])
    return nll, right.astype(jnp.float32)

  def loss(self, variables, batch, rng, *, train):
    del rng, train  # no dropout, no state: train and eval differ in nothing
    nll, right = self._losses(variables, batch)
    return nll.mean(), {"step_accuracy": right.mean()}, {}

  def decode(self, variables, inputs):
    """Greedy answers: (pointers [B, N], ranks [B, N])."""
    return self.model.apply(variables, inputs, method=SetPointerNet.greedy)

  def eval_metrics(self, variables, batch):
    inputs, shuffle = batch["inputs"], batch["shuffle"]
    rows = inputs.shape[0]
    nll, right = self._losses(variables, batch)
    # One decoding of the three presentations of each set (one graph to compile, not three).
    shuffled = jnp.take_along_axis(inputs, shuffle, axis=1)
    presentations = jnp.concatenate([inputs, shuffled, jnp.sort(inputs, axis=1)])
    all_pointers, all_ranks = self.decode(variables, presentations)
    correct = answer_is_right(presentations, all_pointers, all_ranks).reshape(3, rows)
    pointers, pointers_s = all_pointers[:rows], all_pointers[rows:2 * rows]
    ranks, ranks_s = all_ranks[:rows], all_ranks[rows:2 * rows]
    # The same answer under both orders: the same elements (mapped back through the shuffle)
    # with the same ranks, step by step.
    same = jnp.all((jnp.take_along_axis(shuffle, pointers_s, axis=1) == pointers) & (ranks_s == ranks), axis=1)
    f = lambda x: x.astype(jnp.float32).sum()
    return {
        "loss": (nll.sum(), rows),
        "step_accuracy": (right.mean(-1).sum(), rows),
        "accuracy": (f(correct[0]), rows),
        "accuracy_shuffled": (f(correct[1]), rows),
        "accuracy_presorted": (f(correct[2]), rows),
        "order_agreement": ratio(f(same), rows),
    }

  # ---- data -----------------------------------------------------------------
  def batch_spec(self):
    b, n = self.config.batch_size, self.num_elements
    return {"inputs": spec((b, n), np.float32), "pointers": spec((b, n), np.int32),
            "ranks": spec((b, n), np.int32), "shuffle": spec((b, n), np.int32)}

  def train_batch(self, step):
    return sorting_examples(step_rng(self.config.seed, step), self.config.batch_size,
                            self.num_elements, self.config.data.output_order)

  def eval_batches(self):
    d = self.config.data
    examples = sorting_examples(heldout_rng(self.config.seed), d.eval_sets, self.num_elements,
                                d.output_order)
    for start in range(0, d.eval_sets, d.eval_batch_size):
      yield {k: v[start:start + d.eval_batch_size] for k, v in examples.items()}
