"""Input pipelines on grain: the batch of step k is a pure function of (seed, k).

Two kinds of training data (core.task):
- a task's `train_examples()`, a random-access source of single examples: the global
  stream is the source shuffled with a new permutation every epoch (grain's index
  shuffle, seeded by config.seed), global batch k is stream elements [kB, (k+1)B), and
  a process reads only its own rows of it;
- a task's `train_batch(step)`, the generated global batch of a step: a process keeps
  its rows.
A process's rows are those its devices hold under the batch sharding
(`core.sharding.process_batch_rows`; `process_rows` for an even split in tests), so the
assembled global batch is the same, row for row, whatever the mesh and process count.

Either way the per-step batches come out of a grain dataset indexed by step, read
ahead on host threads (`ReadOptions`) while the accelerator runs the previous step;
`Prefetcher` measures the time the training loop waits for input.
"""
from __future__ import annotations

import collections
import functools
import time
from typing import Any, Mapping, Sequence

import grain
import numpy as np

from core.task import ConfigError, Task


class ArraySource:
  """Random access to the rows of equally long arrays: example i is {name: array[i]}."""

  def __init__(self, arrays: Mapping[str, np.ndarray]):
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) != 1:
      raise ValueError(f"arrays of an ArraySource must have equal lengths, got {lengths}")
    self.arrays = dict(arrays)
    self._len = next(iter(lengths.values()))

  def __len__(self) -> int:
    return self._len

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    return {name: a[index] for name, a in self.arrays.items()}


def process_rows(num_rows: int, process_index: int, process_count: int) -> slice:
  """Rows of a global batch that process `process_index` of `process_count` reads."""
  if num_rows % process_count:
    raise ConfigError(f"a batch of {num_rows} rows does not split into {process_count} process shards")
  n = num_rows // process_count
  return slice(process_index * n, (process_index + 1) * n)


def take_rows(batch: Mapping[str, np.ndarray], rows: slice | np.ndarray) -> dict[str, np.ndarray]:
  return {name: np.asarray(x)[rows] for name, x in batch.items()}


def stack(examples: Sequence[Mapping[str, Any]]) -> dict[str, np.ndarray]:
  return {name: np.stack([e[name] for e in examples]) for name in examples[0]}


@functools.lru_cache(maxsize=8)
def _epoch_permutation(num_examples: int, seed: int, epoch: int) -> np.ndarray:
  return np.random.default_rng([seed, epoch]).permutation(num_examples)


def epoch_batch_indices(num_examples: int, batch_size: int, step: int, seed: int) -> np.ndarray:
  """Example indices of step's batch for tasks that gather their own batches from arrays:
  positions [kB, (k+1)B) of a stream that visits the examples in a fresh permutation every
  epoch (numpy's, seeded by (seed, epoch)). Vectorised: no Python work per example, which
  on a fast step would show as input stall."""
  epochs, offsets = np.divmod(np.arange(step * batch_size, (step + 1) * batch_size), num_examples)
  indices = np.empty(batch_size, np.int64)
  for epoch in np.unique(epochs):  # one or two epochs per batch, more only if B > N
    here = epochs == epoch
    indices[here] = _epoch_permutation(num_examples, seed, int(epoch))[offsets[here]]
  return indices


def shuffled_stream(source, seed: int) -> grain.MapDataset:
  """The source's examples in a fresh seeded order every epoch, indexable without end."""
  if len(source) == 0:
    raise ConfigError("the training source has no examples")
  return grain.MapDataset.source(source).shuffle(seed=seed % 2**32)


def step_batches(task: Task, global_batch: int, rows: slice | np.ndarray = slice(None)) -> grain.MapDataset:
  """A grain dataset whose element k is rows `rows` (default: all) of the global batch of step k."""
  rows = np.arange(global_batch)[rows]
  source = task.train_examples()
  if source is not None:
    stream = shuffled_stream(source, task.config.seed)

    def read(step: int):
      first = step * global_batch
      return stack([stream[first + int(i)] for i in rows])
  else:
    def read(step: int):
      return take_rows(task.train_batch(step), rows)
  return grain.MapDataset.range(2**62).map(read)


def local_batch(task: Task, step: int, global_batch: int, process_index: int = 0,
                process_count: int = 1) -> dict[str, np.ndarray]:
  """Process `process_index`'s even share of the batch of `step` (no prefetch: tests and one-off reads)."""
  return step_batches(task, global_batch, process_rows(global_batch, process_index, process_count))[step]


# Read-ahead moves groups of consecutive batches of at least this many bytes, so that a
# tiny batch (a step of well under a millisecond) does not pay the thread hand-off each step.
GROUP_BYTES = 1 << 20
MAX_GROUP = 16


def read_group_size(batch_bytes: int) -> int:
  """How many consecutive step batches the read-ahead moves at once."""
  return int(min(MAX_GROUP, max(1, GROUP_BYTES // max(batch_bytes, 1))))


class Prefetcher:
  """Iterates the batches of steps start, start+1, ... read ahead on host threads.

  Batches are read in groups of `group` consecutive steps (one thread task each; see
  `read_group_size`), up to `buffer` groups ahead, so a batch that is slow to read holds back
  the earlier batches of its group too. `wait_seconds` accumulates the time `next()` blocked:
  the input stall of the loop.
  """

  def __init__(self, batches: grain.MapDataset, start: int, stop: int, threads: int = 2,
               buffer: int = 4, group: int = 1):
    if group < 1:
      raise ValueError(f"group must be at least 1, got {group}")

    def read_group(first: int) -> list:
      return [batches[step] for step in range(first, min(first + group, stop))]

    options = grain.ReadOptions(num_threads=threads, prefetch_buffer_size=buffer)
    groups = grain.MapDataset.range(start, max(start, stop), group).map(read_group)
    self._iterator = iter(groups.to_iter_dataset(options))
    self._ready = collections.deque()
    self.wait_seconds = 0.0

  def __iter__(self):
    return self

  def __next__(self):
    t = time.perf_counter()
    if not self._ready:
      self._ready.extend(next(self._iterator))
    batch = self._ready.popleft()
    self.wait_seconds += time.perf_counter() - t
    return batch
