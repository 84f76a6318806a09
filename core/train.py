"""The train state, jitted steps with explicit shardings, and the training loop.

Step numbering: `state.step` counts completed updates; a checkpoint at step k
holds the state after k updates, and the batch of update k is
`task.train_batch(k)`, so a resumed run continues the identical stream.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import time
from typing import Any

import flax
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from core import checkpoint as checkpoint_lib
from core import distributed
from core import hardware
from core import metrics as metrics_lib
from core import sharding as sharding_lib
from core.config import to_json
from core.optim import make_optimizer
from core.task import ConfigError, load_task


class TrainingDiverged(RuntimeError):
  """Loss or gradient norm became NaN/Inf."""


@flax.struct.dataclass
class TrainState:
  step: jax.Array
  params: Any
  opt_state: Any


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
    self._boxed_abstract = jax.eval_shape(self._init_boxed, jax.random.key(0))
    self.state_shardings = sharding_lib.state_shardings(self._boxed_abstract, self.mesh, self.rules)
    sharding_lib.check_divisible(strip_boxes(self._boxed_abstract).params, self.state_shardings.params)
    example = self.task.train_batch(0)
    self.batch_shape = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), example)
    self.batch_sharding = sharding_lib.batch_shardings(example, self.mesh, self.rules)
    replicated = jax.sharding.NamedSharding(self.mesh, jax.sharding.PartitionSpec())
    self.train_step = jax.jit(
        self._train_step, in_shardings=(self.state_shardings, self.batch_sharding),
        out_shardings=(self.state_shardings, replicated), donate_argnums=(0,))
    self.eval_step = jax.jit(
        self._eval_step, in_shardings=(self.state_shardings.params, self.batch_sharding),
        out_shardings=replicated)

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

  def context(self):
    """Mesh + logical rules, active while tracing so activation constraints apply."""
    stack = contextlib.ExitStack()
    stack.enter_context(jax.set_mesh(self.mesh))
    stack.enter_context(nn.logical_axis_rules(self.rules))
    return stack

  def _init_boxed(self, rng):
    params = self.task.init_params(rng)
    return TrainState(step=jnp.zeros((), jnp.int32), params=params, opt_state=self.tx.init(params))

  def abstract_state(self):
    """ShapeDtypeStructs of the (unboxed) state, carrying their target shardings."""
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                        strip_boxes(self._boxed_abstract), self.state_shardings)

  def abstract_batch(self):
    return jax.tree.map(lambda x, s: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=s),
                        self.batch_shape, self.batch_sharding)

  def param_signature(self):
    return checkpoint_lib.param_signature(strip_boxes(self._boxed_abstract).params)

  def init_state(self, rng=None):
    rng = jax.random.key(self.config.seed) if rng is None else rng
    init = jax.jit(lambda r: nn.meta.unbox(self._init_boxed(r)), out_shardings=self.state_shardings)
    with self.context():
      return init(rng)

  # ---- steps --------------------------------------------------------------
  def _grads(self, params, batch, rng):
    grad_fn = jax.value_and_grad(self.task.loss, has_aux=True)
    accum = int(self.config.optimizer.grad_accum_steps)
    if accum == 1:
      (loss, aux), grads = grad_fn(params, batch, rng)
      return loss, aux, grads

    # Rows i, i+accum, ... form micro-batch i: each device keeps its own rows.
    def split(x):
      x = x.reshape((x.shape[0] // accum, accum) + x.shape[1:])
      return jnp.moveaxis(x, 1, 0)

    def body(carry, inputs):
      micro, index = inputs
      (loss, aux), grads = grad_fn(params, micro, jax.random.fold_in(rng, index))
      carry = jax.tree.map(jnp.add, carry, grads)
      return carry, (loss, aux)

    zeros = jax.tree.map(jnp.zeros_like, params)
    grads, (losses, auxes) = jax.lax.scan(
        body, zeros, (jax.tree.map(split, batch), jnp.arange(accum)))
    grads = jax.tree.map(lambda g: g / accum, grads)
    return jnp.mean(losses), _mean_metrics(auxes), grads

  def _train_step(self, state: TrainState, batch):
    rng = jax.random.fold_in(jax.random.key(self.config.seed), state.step)
    loss, aux, grads = self._grads(state.params, batch, rng)
    updates, opt_state = self.tx.update(grads, state.opt_state, state.params)
    params = jax.tree.map(jnp.add, state.params, updates)
    metrics = {"loss": loss, **aux, "grad_norm": _global_norm(grads),
               "learning_rate": self.schedule(state.step)}
    return TrainState(step=state.step + 1, params=params, opt_state=opt_state), metrics

  def _eval_step(self, params, batch):
    loss, aux = self.task.loss(params, batch, jax.random.key(0))
    return {"loss": loss, **aux}

  def compile_train_step(self, state=None):
    """AOT-compiles the train step (once) and returns (executable, FLOPs per step per device)."""
    with self.context():
      lowered = self.train_step.lower(self.abstract_state() if state is None else state,
                                      self.abstract_batch())
      compiled = lowered.compile()
    # XLA's cost analysis counts a loop body once; the HLO reader multiplies by trip counts,
    # so scanned, accumulated and pipelined steps get their true matmul FLOPs.
    try:
      flops = hardware.step_cost(compiled.as_text(), self.mesh.size).flops
    except Exception:  # pylint: disable=broad-except
      cost = compiled.cost_analysis()
      cost = cost[0] if isinstance(cost, (list, tuple)) else cost
      flops = float((cost or {}).get("flops", 0.0))
    return compiled, flops

  def run_steps(self, state, steps):
    """Applies the train steps numbered `steps`, in order; returns the state and each step's metrics."""
    history = []
    with self.context():
      for step in steps:
        state, metrics = self.train_step(state, self.global_batch(step))
        history.append(jax.device_get(metrics))
    return state, history

  # ---- data ---------------------------------------------------------------
  def global_batch(self, step: int):
    """This process's slice of the step's batch, assembled into global arrays."""
    local = self.task.train_batch(step, jax.process_index(), jax.process_count())
    return jax.tree.map(
        lambda x, s, g: jax.make_array_from_process_local_data(s, x, g.shape),
        local, self.batch_sharding, self.batch_shape)

  def place_global(self, batch):
    """Places a full (host-replicated) global batch, e.g. a held-out eval batch."""
    return jax.tree.map(
        lambda x, s: jax.make_array_from_callback(x.shape, s, lambda idx: x[idx]),
        batch, self.batch_sharding)

  def evaluate(self, params, step: int) -> dict:
    out = {}
    batches = self.task.eval_batches()
    if batches:
      with self.context():
        rows = [jax.device_get(self.eval_step(params, self.place_global(b))) for b in batches]
      out.update({k: float(np.mean([r[k] for r in rows])) for k in rows[0]})
    out.update(self.task.evaluate(params, step))
    return out


def _global_norm(tree):
  return jnp.sqrt(sum(jnp.sum(jnp.square(x.astype(jnp.float32))) for x in jax.tree.leaves(tree)))


def _check_finite(step: int, metrics, workdir: str, last_good: int | None):
  loss, grad_norm = float(metrics["loss"]), float(metrics["grad_norm"])
  if not (math.isfinite(loss) and math.isfinite(grad_norm)):
    kept = f"the last good checkpoint is step {last_good}" if last_good is not None else "no checkpoint was written"
    raise TrainingDiverged(
        f"training diverged at step {step}: loss={loss}, grad_norm={grad_norm}; {kept} "
        f"(in {os.path.join(workdir, 'checkpoints')}); lower optimizer.learning_rate or set optimizer.clip_norm")


def _log(message: str):
  if jax.process_index() == 0:
    print(message, flush=True)


def train(config, workdir: str) -> dict:
  """Trains (or resumes) `config` in `workdir`; returns the last train and eval metrics."""
  trainer = Trainer(config)
  trainer.task.check_data()
  is_main = jax.process_index() == 0
  os.makedirs(workdir, exist_ok=True)
  checkpointer = checkpoint_lib.Checkpointer(workdir, keep=config.keep_checkpoints)
  writer = metrics_lib.MetricWriter(workdir, enabled=is_main)
  signature = trainer.param_signature()
  watchdog = None
  try:
    latest = checkpointer.latest_step()
    if latest is not None:
      state, _ = checkpointer.restore(latest, trainer.abstract_state(), signature)
      writer.truncate_after(latest)
      _log(f"resumed from step {latest} in {checkpointer.directory}")
    else:
      state = trainer.init_state()
    if is_main:
      with open(os.path.join(workdir, "config.json"), "w") as f:
        f.write(to_json(config))
    start = int(jax.device_get(state.step))
    num_params = sum(math.prod(x.shape) for x in jax.tree.leaves(trainer.abstract_state().params))
    _log(f"{config.task}: {num_params:,} parameters, mesh {dict(trainer.mesh.shape)}, "
         f"{jax.device_count()} devices, {jax.process_count()} processes")

    step_fn, flops = trainer.compile_train_step()
    peak = float(config.peak_flops) or metrics_lib.measure_peak_flops()
    progress = metrics_lib.Progress(start, config.total_steps, flops, peak)
    meta = {"signature": signature, "task": config.task}
    last_good = latest
    train_metrics, eval_metrics, pending = {}, {}, None
    # Start the first step together: processes drift apart while compiling.
    distributed.barrier("train_loop")
    # Ends the run if a peer process is alive but stuck (heartbeats only catch dead ones).
    watchdog = distributed.step_watchdog()
    for step in range(start, config.total_steps):
      state, metrics = step_fn(state, trainer.global_batch(step))
      if pending is not None:  # check the previous step while this one runs
        _check_finite(*pending, workdir, last_good)
      pending = (step + 1, metrics)
      done = step + 1
      if done % config.log_every == 0 or done == config.total_steps:
        train_metrics = jax.device_get(metrics)
        speed = progress.update(done)
        writer.write(done, "train", {**train_metrics, **speed})
        _log(progress.line(done, {"loss": train_metrics["loss"]}, speed))
      if done % config.eval_every == 0 or done == config.total_steps:
        _check_finite(*pending, workdir, last_good)
        eval_metrics = trainer.evaluate(state.params, done)
        writer.write(done, "eval", eval_metrics)
        _log(f"eval step {done}: " + ", ".join(
            f"{k} {v:.4g}" if isinstance(v, (int, float)) else f"{k} {v!r}" for k, v in eval_metrics.items()))
      if done % config.checkpoint_every == 0 or done == config.total_steps:
        _check_finite(*pending, workdir, last_good)
        checkpointer.save(done, state, meta, force=done == config.total_steps)
        last_good = done
      watchdog.kick(done)
    if pending is not None:
      _check_finite(*pending, workdir, last_good)
    return {"train": train_metrics, "eval": eval_metrics}
  finally:
    if watchdog is not None:
      watchdog.close()
    checkpointer.close()
    writer.close()
