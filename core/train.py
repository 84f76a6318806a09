"""The train state, jitted steps with explicit shardings, and the training loop.

Step numbering: `state.step` counts completed updates; a checkpoint at step k holds the
state after k updates, and the batch of update k is the task's batch of step k
(core.data), so a resumed run continues the identical stream.
"""
from __future__ import annotations

import contextlib
import functools
import math
import sys
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from etils import epath

from core import checkpoint as checkpoint_lib
from core import data as data_lib
from core import distributed
from core import hardware
from core import metrics as metrics_lib
from core import sharding as sharding_lib
from core.config import to_json
from core.optim import make_optimizer
from core.task import ConfigError, load_task, one_line


class TrainingDiverged(RuntimeError):
  """Loss or gradient norm became NaN/Inf."""


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  model_state: Any  # the task's mutable collections (e.g. batch-norm statistics), or {}
  opt_state: Any

  def variables(self):
    return {"params": self.params, **self.model_state}


def strip_boxes(tree):
  """Removes logical-partitioning boxes without applying sharding constraints."""
  return jax.tree.map(lambda x: x.value if isinstance(x, nn.meta.AxisMetadata) else x, tree,
                      is_leaf=lambda x: isinstance(x, nn.meta.AxisMetadata))


def _mean_metrics(metrics):
  return jax.tree.map(lambda x: jnp.mean(x, axis=0), metrics)


class Trainer:
  """Builds everything a run needs from a config: task, mesh, optimizer, jitted steps."""

  def __init__(self, config, mesh=None, devices=None):
    self.config = config
    self.task = load_task(config)
    self.rules = sharding_lib.logical_rules(config)
    self.mesh = mesh if mesh is not None else sharding_lib.make_mesh(config.mesh, devices)
    self.tx, self.schedule = make_optimizer(config)
    self._check_batch()
    self.batch_shape = dict(self.task.batch_spec())
    self._check_batch_spec()
    self._boxed_abstract = jax.eval_shape(self._init_boxed, jax.random.key(0))
    sharding_lib.check_logical_names(self._boxed_abstract, self.rules, self._trace_loss)
    self.state_shardings = sharding_lib.state_shardings(self._boxed_abstract, self.mesh, self.rules)
    unboxed = strip_boxes(self._boxed_abstract)
    sharding_lib.check_divisible(unboxed.params, self.state_shardings.params)
    self.batch_sharding = sharding_lib.batch_shardings(self.batch_shape, self.mesh, self.rules)
    replicated = jax.sharding.NamedSharding(self.mesh, jax.sharding.PartitionSpec())
    self.train_step = jax.jit(
        self._train_step, in_shardings=(self.state_shardings, self.batch_sharding),
        out_shardings=(self.state_shardings, replicated), donate_argnums=(0,))
    # Eval batches are placed by `place_global` (rows over the batch axes); their keys and shapes
    # may differ from the train batch's (e.g. longer test sequences), so their sharding is the input's.
    self.eval_step = jax.jit(
        self._eval_step, in_shardings=(self.state_shardings.params, self.state_shardings.model_state,
                                       None), out_shardings=replicated)
    self._batches = None

  # ---- construction -------------------------------------------------------
  def _check_batch(self):
    c = self.config
    accum = int(c.optimizer.grad_accum_steps)
    if accum < 1 or c.batch_size % accum:
      raise ConfigError(f"batch_size {c.batch_size} is not divisible by optimizer.grad_accum_steps {accum}")
    shards = sharding_lib.batch_axis_size(self.mesh, self.rules)
    micro = c.batch_size // accum
    if micro % shards or c.batch_size % jax.process_count():
      raise ConfigError(
          f"batch_size {c.batch_size} (micro-batch {micro}) must divide evenly over the {shards} "
          f"batch shards of mesh {dict(self.mesh.shape)} and {jax.process_count()} processes")

  def _check_batch_spec(self):
    for name, s in self.batch_shape.items():
      if not s.shape or s.shape[0] != self.config.batch_size:
        raise ConfigError(f"{type(self.task).__name__}.batch_spec()[{name!r}] has shape {s.shape}; "
                          f"its leading dimension must be batch_size {self.config.batch_size}")

  def context(self):
    """Mesh + logical rules, active while tracing so activation constraints apply."""
    stack = contextlib.ExitStack()
    stack.enter_context(jax.set_mesh(self.mesh))
    stack.enter_context(nn.logical_axis_rules(self.rules))
    return stack

  def _init_boxed(self, rng):
    variables = dict(self.task.init(rng))
    if "params" not in variables:
      raise ConfigError(f"{type(self.task).__name__}.init must return flax variables with a 'params' entry")
    params = variables.pop("params")
    if set(variables) != set(self.task.model_state):
      raise ConfigError(f"{type(self.task).__name__}.init returned collections {sorted(variables)} beside "
                        f"'params'; its model_state declares {sorted(self.task.model_state)}")
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state=variables,
                      opt_state=self.tx.init(params))

  def _trace_loss(self):
    """Traces the loss once (abstractly) so that activation axis names can be checked."""
    state = strip_boxes(self._boxed_abstract)
    with jax.set_mesh(self.mesh):
      jax.eval_shape(lambda s, b: self.task.loss(s.variables(), b, jax.random.key(0), train=True),
                     state, self.batch_shape)

  def abstract_state(self):
    """ShapeDtypeStructs of the (unboxed) state, carrying their target shardings."""
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                        strip_boxes(self._boxed_abstract), self.state_shardings)

  def abstract_batch(self):
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                        self.batch_shape, self.batch_sharding)

  def param_signature(self):
    state = strip_boxes(self._boxed_abstract)
    return checkpoint_lib.param_signature({"params": state.params, **state.model_state})

  def init_state(self, rng=None):
    rng = jax.random.key(self.config.seed) if rng is None else rng
    init = jax.jit(lambda r: nn.meta.unbox(self._init_boxed(r)), out_shardings=self.state_shardings)
    with self.context():
      return init(rng)

  def model_flops(self) -> float:
    """Model FLOPs of one train step over the global batch: 3 x the forward matmuls."""
    state = self.abstract_state()
    with self.context():
      return 3 * hardware.jaxpr_flops(
          lambda s, b: self.task.loss(s.variables(), b, None, train=False)[0], state, self.abstract_batch())

  # ---- steps --------------------------------------------------------------
  def _loss_fn(self, params, model_state, batch, rng):
    loss, metrics, updates = self.task.loss({"params": params, **model_state}, batch, rng, train=True)
    unknown = set(updates) - set(model_state)
    if unknown:
      raise ConfigError(f"{type(self.task).__name__}.loss updated collections {sorted(unknown)} that are "
                        f"not in its model_state {sorted(model_state)}")
    return loss, (metrics, {**model_state, **updates})

  def _grads(self, params, model_state, batch, rng):
    grad_fn = jax.value_and_grad(self._loss_fn, has_aux=True)
    accum = int(self.config.optimizer.grad_accum_steps)
    if accum == 1:
      (loss, (aux, model_state)), grads = grad_fn(params, model_state, batch, rng)
      return loss, aux, model_state, grads

    # Rows i, i+accum, ... form micro-batch i: each device keeps its own rows.
    def split(x):
      x = x.reshape((x.shape[0] // accum, accum) + x.shape[1:])
      return jnp.moveaxis(x, 1, 0)

    def body(carry, inputs):
      grads_sum, state = carry
      micro, index = inputs
      (loss, (aux, state)), grads = grad_fn(params, state, micro, jax.random.fold_in(rng, index))
      return (jax.tree.map(jnp.add, grads_sum, grads), state), (loss, aux)

    zeros = jax.tree.map(jnp.zeros_like, params)
    (grads, model_state), (losses, auxes) = jax.lax.scan(
        body, (zeros, model_state), (jax.tree.map(split, batch), jnp.arange(accum)))
    grads = jax.tree.map(lambda g: g / accum, grads)
    return jnp.mean(losses), _mean_metrics(auxes), model_state, grads

  def _train_step(self, state: TrainState, batch):
    rng = jax.random.fold_in(jax.random.key(self.config.seed), state.step)
    loss, aux, model_state, grads = self._grads(state.params, state.model_state, batch, rng)
    updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
    params = jax.tree.map(jnp.add, state.params, updates)
    metrics = {"loss": loss, **aux, "grad_norm": _global_norm(grads),
               "learning_rate": self.schedule(state.step)}
    return TrainState(step=state.step + 1, params=params, model_state=model_state,
                      opt_state=opt_state), metrics

  def _eval_step(self, params, model_state, batch):
    sums = self.task.eval_metrics({"params": params, **model_state}, batch)
    return {k: (jnp.asarray(t, jnp.float32), jnp.asarray(n, jnp.float32)) for k, (t, n) in sums.items()}

  def compile_train_step(self, state=None):
    """AOT-compiles the train step (once) and returns the executable."""
    with self.context():
      return self.train_step.lower(self.abstract_state() if state is None else state,
                                   self.abstract_batch()).compile()

  def run_steps(self, state, steps):
    """Applies the train steps numbered `steps`, in order; returns the state and each step's metrics."""
    history = []
    with self.context():
      for step in steps:
        state, metrics = self.train_step(state, self.global_batch(step))
        history.append(jax.device_get(metrics))
    return state, history

  # ---- data ---------------------------------------------------------------
  def step_batches(self):
    """This process's batches, indexed by step (a grain MapDataset)."""
    if self._batches is None:
      self._batches = data_lib.step_batches(self.task, self.config.batch_size, self.process_rows)
    return self._batches

  @functools.cached_property
  def process_rows(self) -> np.ndarray:
    """The rows of each global batch this process reads: those its devices hold."""
    sharding = jax.tree.leaves(self.batch_sharding)[0]
    return sharding_lib.process_batch_rows(sharding, self.config.batch_size)

  def assemble(self, local):
    """This process's rows of a step's batch, assembled into global arrays."""
    if set(local) != set(self.batch_shape):
      raise ConfigError(f"{type(self.task).__name__} produced a batch with keys {sorted(local)}; "
                        f"its batch_spec has {sorted(self.batch_shape)}")
    rows = len(self.process_rows)
    for name, x in local.items():
      want = self.batch_shape[name]
      if x.shape[1:] != want.shape[1:] or x.shape[0] != rows or x.dtype != want.dtype:
        raise ConfigError(f"{type(self.task).__name__} batch entry {name!r} is {x.dtype}{list(x.shape)} "
                          f"but batch_spec says {want.dtype}{[rows, *want.shape[1:]]} per process")
    return jax.tree.map(
        lambda x, s, g: jax.make_array_from_process_local_data(s, x, g.shape),
        local, self.batch_sharding, self.batch_shape)

  def global_batch(self, step: int):
    return self.assemble(self.step_batches()[step])

  def place_global(self, batch):
    """Places a full (host-replicated) global batch, e.g. a held-out eval batch."""
    shards = sharding_lib.batch_axis_size(self.mesh, self.rules)
    def place(x):
      x = np.asarray(x)
      if x.shape[0] % shards:
        raise ConfigError(f"an eval batch of {x.shape[0]} rows does not split over the {shards} batch "
                          f"shards of mesh {dict(self.mesh.shape)}; make the eval batch size a multiple")
      sharding = jax.sharding.NamedSharding(self.mesh, sharding_lib.batch_spec(self.rules, x.ndim))
      return jax.make_array_from_callback(x.shape, sharding, lambda idx: x[idx])
    return jax.tree.map(place, dict(batch))

  def evaluate(self, state: TrainState, step: int, *, on_host_error=None) -> dict:
    """Sums the task's eval metrics over its eval batches (jitted, sharded), then host extras.

    `on_host_error(exception)`, if given, is called when the task's host-side `evaluate`
    raises, and the jitted metrics are returned without its extras; by default it raises.
    """
    totals = {}
    with self.context():
      for batch in self.task.eval_batches():
        sums = jax.device_get(self.eval_step(state.params, state.model_state, self.place_global(batch)))
        for name, (total, count) in sums.items():
          t, n = totals.get(name, (0.0, 0.0))
          totals[name] = (t + float(total), n + float(count))
    out = {name: t / n if n else float("nan") for name, (t, n) in totals.items()}
    with self.context():
      try:
        out.update(self.task.evaluate(state.variables(), step))
      except Exception as e:  # pylint: disable=broad-except
        if on_host_error is None:
          raise
        on_host_error(e)
    return out


def restore_latest(config, workdir: str, step: int | None = None) -> tuple[Trainer, TrainState, int]:
  """(trainer on one device, its train state at the workdir's newest checkpoint, or at `step`,
  and that step): how sampling, plotting and diagnostic scripts read a finished or running
  run (`core.config.run_config(workdir)` gives its config)."""
  trainer = Trainer(config, devices=jax.devices()[:1])
  checkpointer = checkpoint_lib.Checkpointer(workdir, async_save=False)
  try:
    steps = checkpointer.all_steps()
    if not steps:
      raise ConfigError(f"{workdir} has no checkpoint yet (one every {config.checkpoint_every} steps)")
    if step is None:
      step = max(steps)
    elif step not in steps:
      raise ConfigError(f"{workdir} has no checkpoint of step {step}; it has {sorted(steps)}")
    state, _ = checkpointer.restore(step, trainer.abstract_state(), trainer.param_signature())
  finally:
    checkpointer.close()
  return trainer, state, step


def _global_norm(tree):
  return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in jax.tree.leaves(tree)))


def _check_finite(step: int, metrics, workdir, last_good: int | None):
  loss, grad_norm = float(metrics["loss"]), float(metrics["grad_norm"])
  if not (math.isfinite(loss) and math.isfinite(grad_norm)):
    kept = f"the last good checkpoint is step {last_good}" if last_good is not None else "no checkpoint was written"
    raise TrainingDiverged(
        f"training diverged at step {step}: loss={loss}, grad_norm={grad_norm}; {kept} "
        f"(in {epath.Path(workdir) / 'checkpoints'}); lower optimizer.learning_rate or set optimizer.clip_norm")


def _log(message: str):
  if jax.process_index() == 0:
    print(message, flush=True)


def _warn_host_eval(task, step: int):
  """The training loop's `on_host_error`: one warning line, and the run goes on."""
  def warn(error: BaseException):
    where = f"process {jax.process_index()}: " if jax.process_count() > 1 else ""
    print(f"warning: {where}{type(task).__name__}.evaluate failed at step {step} "
          f"({one_line(error, limit=500, with_type=True)}); the run goes on, with the jitted "
          f"eval metrics of this step only", file=sys.stderr, flush=True)
  return warn


def _last_metrics(workdir) -> dict:
  """The last logged train and eval rows of a workdir ({} where there are none)."""
  out = {"train": {}, "eval": {}}
  if jax.process_index() == 0:
    try:
      rows = metrics_lib.read_metrics(str(workdir))
    except Exception:  # pylint: disable=broad-except  # only a summary: never fail for it
      rows = []
    for row in rows:
      if row.get("split") in out:
        out[row["split"]] = {k: v for k, v in row.items() if k not in ("step", "split")}
  return out


def train(config, workdir: str) -> dict:
  """Trains (or resumes) `config` in `workdir` (a local path or gs://...); returns the last metrics.

  Resumes from the newest checkpoint that reads back (core.checkpoint); a run whose checkpoint
  already reached `total_steps` returns at once. On SIGTERM (a preemption notice) every process
  stops at the same step, saves a checkpoint there and raises `distributed.Preempted`
  (a SystemExit with status EXIT_PREEMPTED).
  """
  trainer = Trainer(config)
  trainer.task.check_data()
  is_main = jax.process_index() == 0
  workdir = epath.Path(workdir)
  workdir.mkdir(parents=True, exist_ok=True)
  checkpointer = checkpoint_lib.Checkpointer(workdir, keep=config.keep_checkpoints)
  # Before the restore: a notice that comes while restoring or compiling then stops the run
  # at the first step past the newest checkpoint.
  preemption = distributed.PreemptionWatch()
  writer = watchdog = batches = None
  try:
    preemption.reached(checkpointer.latest_step() or 0)
    signature = trainer.param_signature()
    restored = checkpointer.restore_newest_intact(trainer.abstract_state(), signature, warn=_log)
    latest = restored.step if restored is not None else None
    if latest is not None and latest >= config.total_steps:
      _log(f"run already finished: step {latest} of {config.total_steps} in {checkpointer.directory} "
           f"(nothing to do; raise --config.total_steps to train further)")
      return _last_metrics(workdir)
    writer = metrics_lib.MetricWriter(workdir, enabled=is_main)
    if restored is not None:
      state = restored.state
      writer.truncate_after(latest)
      _log(f"resumed from step {latest} in {checkpointer.directory}")
    else:
      state = trainer.init_state()
    if is_main:
      (workdir / "config.json").write_text(to_json(config))
    start = int(jax.device_get(state.step))
    if preemption.reached(start):  # every process agreed to stop before training: nothing new to save
      kept = f"the newest checkpoint is step {start}" if restored is not None else "no checkpoint yet"
      _log(f"preempted (SIGTERM) before the first step ({kept}); exiting with status "
           f"{distributed.EXIT_PREEMPTED}: re-run the same command to resume")
      raise distributed.Preempted(start)
    num_params = sum(math.prod(x.shape) for x in jax.tree.leaves(trainer.abstract_state().params))
    _log(f"{config.task}: {num_params:,} parameters, mesh {dict(trainer.mesh.shape)}, "
         f"{jax.device_count()} devices, {jax.process_count()} processes")
    hazard = sharding_lib.gradient_hazard(trainer.mesh, trainer.rules)
    if hazard:
      _log(hazard)

    step_fn = trainer.compile_train_step()
    peak, peak_source = hardware.peak_flops(jax.devices()[0], float(config.peak_flops))
    progress = metrics_lib.Progress(start, config.total_steps, trainer.model_flops(),
                                    peak * jax.device_count(), peak_source)
    meta = {"signature": signature, "task": config.task}
    last_good = latest
    train_metrics, eval_metrics, pending = {}, {}, None
    batch_bytes = sum(math.prod(x.shape) * x.dtype.itemsize for x in jax.tree.leaves(trainer.batch_shape))
    batches = data_lib.Prefetcher(trainer.step_batches(), start, config.total_steps,
                                  group=data_lib.read_group_size(batch_bytes))
    # Start the first step together: processes drift apart while compiling.
    distributed.barrier("train_loop")
    # Ends the run if a peer process is alive but stuck (heartbeats only catch dead ones).
    watchdog = distributed.step_watchdog()
    for step in range(start, config.total_steps):
      state, metrics = step_fn(state, trainer.assemble(next(batches)))
      if pending is not None:  # check the previous step while this one runs
        _check_finite(*pending, workdir, last_good)
      pending = (step + 1, metrics)
      done = step + 1
      final = done == config.total_steps
      # Every process asks at every step (the sync point needs it); at the last step the run
      # finishes instead, its checkpoint written before the evaluation.
      preempted = preemption.reached(done) and not final
      if done % config.log_every == 0 or final:
        train_metrics = jax.device_get(metrics)
        speed = progress.update(done, batches.wait_seconds)
        writer.write(done, "train", {**train_metrics, **speed})
        _log(progress.line(done, {"loss": train_metrics["loss"]}, speed))
      # The checkpoint comes before the evaluation: a crash in the task's host-side evaluate
      # (sampling, plots) must not lose the step's state, least of all the final one.
      if done % config.checkpoint_every == 0 or final or preempted:
        _check_finite(*pending, workdir, last_good)
        checkpointer.save(done, state, meta, force=final or preempted)
        last_good = done
        if final or preempted:
          checkpointer.wait()
      if preempted:
        _log(f"preempted (SIGTERM): saved a checkpoint at step {done} in {checkpointer.directory}; "
             f"exiting with status {distributed.EXIT_PREEMPTED}: re-run the same command to resume")
        raise distributed.Preempted(done)
      if done % config.eval_every == 0 or final:
        _check_finite(*pending, workdir, last_good)
        eval_metrics = trainer.evaluate(state, done, on_host_error=_warn_host_eval(trainer.task, done))
        writer.write(done, "eval", eval_metrics)
        _log(f"eval step {done}: " + ", ".join(
            f"{k} {v:.4g}" if isinstance(v, (int, float)) else f"{k} {v!r}" for k, v in eval_metrics.items()))
      watchdog.kick(done)
    if pending is not None:
      _check_finite(*pending, workdir, last_good)
    return {"train": train_metrics, "eval": eval_metrics}
  finally:
    preemption.close()
    if watchdog is not None:
      watchdog.close()
    checkpointer.close()
    if writer is not None:
      writer.close()
