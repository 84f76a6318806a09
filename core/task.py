"""The contract between a paper and the trainer.

A paper's `task.py` defines a subclass of `Task`; its config names it as
`config.task = "papers.<item>.task:<ClassName>"`. The trainer (core.train) owns
meshes, sharding, optimizers, checkpoints and logging; the task owns the model,
the data and the loss. Everything here is mesh-free: the trainer places the
arrays, and the model only names logical axes.
"""
from __future__ import annotations

import abc
import importlib
from typing import Any, Mapping

import numpy as np

Batch = Mapping[str, np.ndarray]
Metrics = dict[str, Any]


class ConfigError(ValueError):
  """A config, flag or workdir that cannot be used; the message says what to do."""


class DataMissingError(RuntimeError):
  """A data set that is not installed; the message says how to install it."""


class Task(abc.ABC):
  """One experiment: model + data + loss + evaluation.

  Data order must be a pure function of (config.seed, step) so that a resumed
  run sees the identical stream. `train_batch(step, shard, num_shards)` returns
  shard `shard` of `num_shards` equal slices (along axis 0) of the global batch
  of that step: a process reads only its own slice.
  """

  def __init__(self, config):
    self.config = config

  def check_data(self) -> None:
    """Raises DataMissingError (with the install command) if data is absent."""

  @abc.abstractmethod
  def init_params(self, rng) -> Any:
    """Parameters (may carry flax logical-partitioning boxes)."""

  @abc.abstractmethod
  def loss(self, params, batch: Batch, rng) -> tuple[Any, Metrics]:
    """Pure, jittable: scalar loss and a dict of scalar metrics (averaged)."""

  @abc.abstractmethod
  def train_batch(self, step: int, shard: int = 0, num_shards: int = 1) -> Batch:
    """The `shard`-th slice of the global training batch for `step`."""

  def eval_batches(self) -> list[Batch] | None:
    """Fixed held-out batches (global), scored with `loss` under jit; or None."""
    return None

  def evaluate(self, params, step: int) -> Metrics:
    """Host-side extra evaluation (decoding, sampling, plots); may be slow."""
    del params, step
    return {}


def load_task(config) -> Task:
  """Instantiates `config.task` ("module.path:ClassName")."""
  spec = config.get("task")
  if not isinstance(spec, str) or ":" not in spec:
    raise ConfigError(f"config.task must be 'module:Class', got {spec!r}")
  module_name, class_name = spec.split(":", 1)
  try:
    cls = getattr(importlib.import_module(module_name), class_name)
  except (ImportError, AttributeError) as e:
    raise ConfigError(f"config.task={spec!r} cannot be imported: {e}") from None
  return cls(config)


def step_rng(seed: int, step: int, *extra: int) -> np.random.Generator:
  """A numpy generator that depends only on (seed, step, extra): resumable data."""
  return np.random.default_rng([seed, step, *extra])


def shard_rows(batch: Batch, shard: int, num_shards: int) -> dict[str, np.ndarray]:
  """Rows [shard * n, (shard + 1) * n) of every array: one process's slice of a global batch."""
  def take(x):
    if len(x) % num_shards:
      raise ConfigError(f"a batch of {len(x)} rows does not split into {num_shards} process shards")
    n = len(x) // num_shards
    return x[shard * n:(shard + 1) * n]
  return {k: take(v) for k, v in batch.items()}
