"""Optax optimizers and learning-rate schedules from `config.optimizer`."""
from __future__ import annotations

import jax.numpy as jnp
import optax

from core.task import ConfigError


def noam_schedule(factor: float, d_model: int, warmup_steps: int) -> optax.Schedule:
  """Vaswani et al. 2017, eq. (3): factor * d^-0.5 * min(s^-0.5, s * w^-1.5), s counted from 1."""
  if warmup_steps <= 0:
    raise ConfigError("optimizer.schedule='noam' needs optimizer.warmup_steps > 0")

  def schedule(count):
    step = jnp.asarray(count, jnp.float32) + 1.0
    return factor * d_model ** -0.5 * jnp.minimum(step ** -0.5, step * warmup_steps ** -1.5)
  return schedule


def step_decay_schedule(learning_rate: float, decay_start: int, decay_every: int,
                        decay_factor: float) -> optax.Schedule:
  """Constant for `decay_start` steps, then multiplied by `decay_factor` every `decay_every` steps:
  lr * factor ** (floor((s - start) / every) + 1) from step `start` on (e.g. a decay every epoch)."""
  if decay_start < 0 or decay_every < 1:
    raise ConfigError(f"optimizer.schedule='step_decay' needs optimizer.decay_start >= 0 and "
                      f"optimizer.decay_every >= 1, got {decay_start} and {decay_every}")
  if not 0.0 < decay_factor <= 1.0:
    raise ConfigError(f"optimizer.decay_factor must be in (0, 1] (it multiplies the learning rate), "
                      f"got {decay_factor}")
  # Written out: optax's staircase exponential_decay first decays a whole period after its
  # transition_begin, which would need decay_start >= decay_every.
  def schedule(count):
    count = jnp.asarray(count)
    decays = jnp.where(count >= decay_start, (count - decay_start) // decay_every + 1, 0)
    return learning_rate * jnp.power(jnp.float32(decay_factor), decays.astype(jnp.float32))
  return schedule


def with_warmup(schedule: optax.Schedule, learning_rate: float, warmup_steps: int,
                constant_rate: float = 0.0) -> optax.Schedule:
  """`schedule` from step `warmup_steps` on (its own step count, not shifted); before it a
  linear ramp from 0 to `learning_rate`, or, with `constant_rate` > 0, that constant rate (He et
  al. 2015 train ResNet-110 at 0.01 for the first 400 iterations, then at 0.1)."""
  if warmup_steps < 0 or constant_rate < 0:
    raise ConfigError(f"optimizer.warmup_steps and optimizer.warmup_learning_rate must be >= 0, got "
                      f"{warmup_steps} and {constant_rate}")
  if not warmup_steps:
    return schedule
  def warmed(count):
    count = jnp.asarray(count)
    early = (jnp.full(count.shape, constant_rate, jnp.float32) if constant_rate
             else learning_rate * count.astype(jnp.float32) / warmup_steps)
    return jnp.where(count < warmup_steps, early, schedule(count))
  return warmed


def make_schedule(opt, total_steps: int) -> optax.Schedule:
  lr, warmup = float(opt.learning_rate), int(opt.warmup_steps)
  decay = int(opt.decay_steps) or int(total_steps)
  name = opt.schedule
  if name == "constant":
    if warmup:
      return optax.join_schedules(
          [optax.linear_schedule(0.0, lr, warmup), optax.constant_schedule(lr)], [warmup])
    return optax.constant_schedule(lr)
  if name == "noam":
    return noam_schedule(lr, int(opt.noam_d_model), warmup)
  if name in ("cosine", "warmup_cosine"):
    return optax.warmup_cosine_decay_schedule(0.0 if warmup else lr, lr, warmup, max(decay, warmup + 1))
  if name == "linear":
    return optax.join_schedules(
        [optax.linear_schedule(0.0, lr, warmup), optax.linear_schedule(lr, 0.0, max(decay - warmup, 1))],
        [warmup])
  if name == "step_decay":
    decayed = step_decay_schedule(lr, int(opt.get("decay_start", 0)), int(opt.get("decay_every", 1)),
                                  float(opt.get("decay_factor", 1.0)))
    return with_warmup(decayed, lr, warmup, float(opt.get("warmup_learning_rate", 0.0)))
  raise ConfigError(
      f"unknown optimizer.schedule {name!r}; use constant, cosine, warmup_cosine, linear, noam or step_decay")


def make_optimizer(config) -> tuple[optax.GradientTransformation, optax.Schedule]:
  opt = config.optimizer
  schedule = make_schedule(opt, config.total_steps)
  name = opt.name
  if name == "adam":
    core = optax.adam(schedule, b1=opt.b1, b2=opt.b2, eps=opt.eps)
  elif name == "adamw":
    core = optax.adamw(schedule, b1=opt.b1, b2=opt.b2, eps=opt.eps, weight_decay=opt.weight_decay)
  elif name == "sgd":
    core = optax.sgd(schedule)
  elif name == "momentum":
    core = optax.sgd(schedule, momentum=opt.momentum, nesterov=False)
  elif name == "rmsprop":
    # Graves-style RMSProp with momentum (as in the NTM paper): centered, decay rho.
    core = optax.rmsprop(schedule, decay=opt.rmsprop_decay, eps=opt.eps, momentum=opt.momentum,
                         centered=True)
  elif name == "adadelta":
    # Zeiler 2012 (Bahdanau et al.'s optimiser): rho the decay of both running averages.
    core = optax.adadelta(schedule, rho=opt.get("rho", 0.95), eps=opt.eps)
  else:
    raise ConfigError(f"unknown optimizer.name {name!r}; use adam, adamw, sgd, momentum, rmsprop or adadelta")
  chain = []
  if opt.clip_value:
    chain.append(optax.clip(opt.clip_value))
  if opt.clip_norm:
    chain.append(optax.clip_by_global_norm(opt.clip_norm))
  if name != "adamw" and opt.weight_decay:
    chain.append(optax.add_decayed_weights(opt.weight_decay))
  chain.append(core)
  return optax.chain(*chain), schedule
