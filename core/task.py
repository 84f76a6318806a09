"""The contract between a paper and the trainer (v2).

A paper's `task.py` subclasses `Task`; its config names it as
`config.task = "papers.<item>.task:<ClassName>"`. The trainer (core.train) owns the
mesh, shardings, optimizer, model-state bookkeeping, checkpoints, evaluation loop and
logging; the task owns the model, the data and the loss. Nothing here knows a mesh:
the trainer places the arrays, and the model only names logical axes.

A complete task, a classifier with batch norm and dropout (see tests/toy_task.py for
one that runs):

    class Classifier(Task):
      model_state = ("batch_stats",)          # mutable collections beside "params"

      def __init__(self, config):
        super().__init__(config)              # resolves config.dtype, mesh.stage, ...
        self.model = ConvNet(dtype=self.dtype)

      def init(self, rng):                    # flax variables, boxes allowed
        return self.model.init(rng, jnp.zeros((1, 28, 28, 1)), train=False)

      def batch_spec(self):                   # the global train batch, without reading data
        b = self.config.batch_size
        return {"images": spec((b, 28, 28, 1), np.float32), "labels": spec((b,), np.int32)}

      def loss(self, variables, batch, rng, *, train):
        logits, state = self.apply(variables, batch["images"], train=train, rng=rng)
        loss = optax.softmax_cross_entropy_with_integer_labels(logits, batch["labels"]).mean()
        return loss, {"accuracy": (logits.argmax(-1) == batch["labels"]).mean()}, state

      def train_examples(self):               # real data: one example per index, via grain
        return ArraySource(load_images("train"))      # (or `train_batch(step)` for synthetic data)

      def eval_batches(self):                 # global held-out batches, scored under jit
        ...

The rules the trainer relies on:
- `loss(..., train=False)` is deterministic: no dropout, batch norm reads its running
  statistics; `rng` is then unused. The trainer calls it so for every evaluation.
- `loss` returns `(loss, metrics, model_state_updates)`; `self.apply` builds the third
  element (the updated `model_state` collections in training, `{}` otherwise).
- Training data is either `train_examples()` (a random-access source of single examples,
  shuffled, sharded over processes and batched by core.data on grain) or
  `train_batch(step)` (the global batch of `step`, a pure function of (seed, step), for
  generated data; core.data slices each process's rows). Either way batch k is a pure
  function of (config.seed, k), so a resumed run sees the identical stream.
- Held-out data is drawn from `heldout_rng(config.seed, ...)`, a stream no training step uses.
- `eval_metrics` (default: `loss` in eval mode) returns sums and counts that the trainer
  adds up over all eval batches; `evaluate` is for host-side extras only (decoding,
  sampling, plots) and may be slow.
"""
from __future__ import annotations

import abc
import importlib
import inspect
from typing import Any, Iterable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

Batch = Mapping[str, np.ndarray]
Metrics = dict[str, Any]

DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
HELD_OUT_STREAM = 2**32 - 1  # no training step has this number


class ConfigError(ValueError):
  """A config, flag or workdir that cannot be used; the message says what to do."""


class DataMissingError(RuntimeError):
  """A data set that is not installed; the message says how to install it."""


def one_line(error: BaseException, limit: int = 300, with_type: bool = False) -> str:
  """An exception's message on one line of at most about `limit` characters, for error lines."""
  message = " ".join(str(error).split())
  if len(message) > limit:
    message = message[:limit] + " ..."
  if with_type:
    return f"{type(error).__name__}: {message}" if message else type(error).__name__
  return message or type(error).__name__


def spec(shape: Sequence[int], dtype) -> jax.ShapeDtypeStruct:
  """Shorthand for one entry of `Task.batch_spec()`."""
  return jax.ShapeDtypeStruct(tuple(int(n) for n in shape), np.dtype(dtype))


class Task(abc.ABC):
  """One experiment: model + data + loss + evaluation."""

  # Mutable flax collections kept beside "params" in the train state (e.g. "batch_stats").
  model_state: tuple[str, ...] = ()
  # Compute dtypes the task's model can run in (config.dtype).
  supported_dtypes: tuple[str, ...] = ("float32", "bfloat16")
  # Whether the model splits into config.mesh.stage pipeline stages.
  supports_stages: bool = False

  def __init__(self, config):
    self.config = config
    name = config.get("dtype", "float32")
    if name not in DTYPES:
      raise ConfigError(f"config.dtype must be one of {list(DTYPES)}, got {name!r}")
    if name not in self.supported_dtypes:
      raise ConfigError(f"{type(self).__name__} runs in {', '.join(self.supported_dtypes)} only; "
                        f"config.dtype={name!r} is not supported")
    self.dtype = DTYPES[name]
    stages = int(config.mesh.get("stage", 1)) if "mesh" in config else 1
    if stages != 1 and not self.supports_stages:
      raise ConfigError(f"{type(self).__name__} has no pipeline stages: config.mesh.stage must be 1, "
                        f"got {stages}")
    if stages < 1:
      raise ConfigError(f"config.mesh.stage must be a positive number of stages, got {stages}")
    self.num_stages = stages
    pipeline = config.get("pipeline", {})
    self.microbatches = int(pipeline.get("microbatches", 1))
    self.remat = bool(pipeline.get("remat", True))
    if stages > 1:
      accum = int(config.optimizer.get("grad_accum_steps", 1)) if "optimizer" in config else 1
      rows = int(config.batch_size) // max(accum, 1)
      if self.microbatches < 1 or rows % self.microbatches:
        raise ConfigError(f"pipeline.microbatches {self.microbatches} must divide the batch of "
                          f"{rows} rows that each pipelined step sees (batch_size / grad_accum_steps)")

  # ---- model ----------------------------------------------------------------
  @abc.abstractmethod
  def init(self, rng) -> Mapping[str, Any]:
    """Flax variables: {"params": ..., plus each collection of `model_state`}."""

  @abc.abstractmethod
  def loss(self, variables, batch: Batch, rng, *, train: bool) -> tuple[Any, Metrics, Mapping]:
    """Pure, jittable: (scalar loss, dict of scalar metrics, model-state updates)."""

  def apply(self, variables, *args, train: bool, rng=None, **kwargs):
    """`self.model.apply` in train or eval mode: returns (outputs, model-state updates).

    In training, the `model_state` collections are mutable and `rng` feeds the
    "dropout" stream; in evaluation nothing is mutable and no rng is passed. `train`
    is passed on to the model when its `__call__` takes a `train` argument (the flax
    convention for batch norm and dropout); other mode flags go in `kwargs`.
    """
    if "train" in inspect.signature(type(self.model).__call__).parameters:
      kwargs["train"] = train
    if train and self.model_state:
      rngs = {"dropout": rng} if rng is not None else {}
      return self.model.apply(variables, *args, rngs=rngs, mutable=list(self.model_state), **kwargs)
    rngs = {"dropout": rng} if train and rng is not None else {}
    return self.model.apply(variables, *args, rngs=rngs, **kwargs), {}

  # ---- data -----------------------------------------------------------------
  @abc.abstractmethod
  def batch_spec(self) -> Mapping[str, jax.ShapeDtypeStruct]:
    """Shapes and dtypes of the global train batch, computed without touching any data."""

  def check_data(self) -> None:
    """Raises DataMissingError (with the install command) if a data set is absent."""

  def train_examples(self):
    """A random-access source of single training examples (len, getitem), or None."""
    return None

  def train_batch(self, step: int) -> Batch:
    """The global training batch of `step` (generated data; used when train_examples is None)."""
    raise NotImplementedError(f"{type(self).__name__} defines neither train_examples nor train_batch")

  def eval_batches(self) -> Iterable[Batch]:
    """Fixed held-out global batches, scored by `eval_metrics` under the trainer's jit."""
    return ()

  # ---- evaluation -----------------------------------------------------------
  def eval_metrics(self, variables, batch: Batch) -> dict[str, tuple[Any, Any]]:
    """{name: (sum, count)}; the trainer reports sum/count over all eval batches.

    The default weights the loss and each metric of `loss(train=False)` by the batch's
    rows. Override it for metrics over a subset of rows (e.g. accuracy per question type).
    """
    loss, metrics, _ = self.loss(variables, batch, jax.random.key(0), train=False)
    rows = jax.tree.leaves(batch)[0].shape[0]
    return {name: (value * rows, rows) for name, value in {"loss": loss, **metrics}.items()}

  def evaluate(self, variables, step: int) -> Metrics:
    """Host-side extra evaluation (decoding, sampling, plots); may be slow."""
    del variables, step
    return {}


def load_task(config) -> Task:
  """Instantiates `config.task` ("module.path:ClassName")."""
  name = config.get("task")
  if not isinstance(name, str) or ":" not in name:
    raise ConfigError(f"config.task must be 'module:Class', got {name!r}")
  module_name, class_name = name.split(":", 1)
  try:
    cls = getattr(importlib.import_module(module_name), class_name)
  except (ImportError, AttributeError) as e:
    raise ConfigError(f"config.task={name!r} cannot be imported: {e}") from None
  return cls(config)


def _entropy(*words: int, extra: tuple[int, ...]) -> list[int]:
  # numpy seeds [a, b] and [a, b, 0] alike: ending the extra words with their count (never 0)
  # keeps every (words, extra) its own stream.
  return [*words, *extra, len(extra)] if extra else list(words)


def step_rng(seed: int, step: int, *extra: int) -> np.random.Generator:
  """A numpy generator that depends only on (seed, step, extra): resumable training data."""
  return np.random.default_rng(_entropy(seed, step, extra=extra))


def heldout_rng(seed: int, *extra: int) -> np.random.Generator:
  """The generator of held-out data: a stream that no training step draws from."""
  return np.random.default_rng(_entropy(seed, HELD_OUT_STREAM, extra=extra))


def ratio(numerator, denominator) -> tuple[Any, Any]:
  """An eval metric over a subset of rows: e.g. ratio(sum(correct * mask), sum(mask))."""
  return numerator, denominator
