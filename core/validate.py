"""The shared keys of a config, checked in one place before anything is built.

`core.config.load_config` calls `check_config` after the command-line overrides and the
config's `derive`, so `launch.train`, `launch.compile` and `launch.sweep` (every point)
refuse a bad value with one line, e.g. `config.total_steps must be >= 1, got -5`, before a
workdir, a mesh or a model exists. Only the keys `core` reads for every paper (those of
`configs/common.py`) are checked by name here, plus rules for every field: no NaN, integers
fit an int32, and an integer whose default is >= 0 (a size, a count) is not set negative.
Anything else about a paper's own `model.*` / `data.*` values is its task's to check.

The limits are the ones the trainer needs: step counts fit the int32 step counter, seeds
fit the 32-bit key jax derives from them (larger seeds would alias smaller ones).
"""
from __future__ import annotations

import math
from typing import Any

from core.task import ConfigError

INT32_MAX = 2**31 - 1
SEED_MAX = 2**32 - 1
# The mesh axes (core.sharding imports them from here: this module must not load jax or flax).
MESH_AXES = ("data", "fsdp", "tensor", "stage")
OPTIMIZERS = ("adam", "adamw", "sgd", "momentum", "rmsprop", "adadelta")
SCHEDULES = ("constant", "cosine", "linear", "noam", "warmup_cosine", "step_decay")

_MISSING = object()


def _get(config, dotted: str) -> Any:
  node = config
  for part in dotted.split("."):
    try:
      if part not in node:
        return _MISSING
      node = node[part]
    except TypeError:  # a value where a group was expected
      return _MISSING
  return node


def _is_int(value) -> bool:
  return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool)


def check_int(config, key: str, low: int, high: int = INT32_MAX, allow: tuple[int, ...] = ()) -> None:
  value = _get(config, key)
  if value is _MISSING or value in allow and _is_int(value):
    return
  if not _is_int(value):
    raise ConfigError(f"config.{key} must be an integer, got {value!r}")
  if value < low:
    extra = f" (or {', '.join(map(str, allow))})" if allow else ""
    raise ConfigError(f"config.{key} must be >= {low}{extra}, got {value}")
  if value > high:
    raise ConfigError(f"config.{key} must be <= {high}, got {value}")


def check_float(config, key: str, low: float, high: float = math.inf, *, strict_low: bool = False,
                none_ok: bool = False) -> None:
  value = _get(config, key)
  if value is _MISSING or (value is None and none_ok):
    return
  if not _is_number(value) or not math.isfinite(value):
    raise ConfigError(f"config.{key} must be a finite number, got {value!r}")
  if strict_low and value <= low:
    raise ConfigError(f"config.{key} must be > {low}, got {value}")
  if value < low:
    raise ConfigError(f"config.{key} must be >= {low}, got {value}")
  if value > high:
    raise ConfigError(f"config.{key} must be <= {high}, got {value}")


def check_choice(config, key: str, choices: tuple[str, ...]) -> None:
  value = _get(config, key)
  if value is not _MISSING and value not in choices:
    raise ConfigError(f"config.{key} must be one of {', '.join(choices)}, got {value!r}")


def _check_mesh(config) -> None:
  mesh = _get(config, "mesh")
  if mesh is _MISSING:
    return
  unknown = sorted(set(mesh.keys()) - set(MESH_AXES))
  if unknown:
    raise ConfigError(f"config.mesh has unknown axes {unknown}; allowed: {', '.join(MESH_AXES)}")
  for axis in mesh.keys():
    check_int(config, f"mesh.{axis}", 1, allow=(-1,))
  free = [a for a in mesh.keys() if mesh[a] == -1]
  if len(free) > 1:
    raise ConfigError(f"config.mesh: only one axis may be -1 (the rest of the devices), got {free}")


def _check_rules(config) -> None:
  rules = _get(config, "sharding.rules")
  if rules is _MISSING:
    return
  shape = "a tuple of (logical_name, mesh_axes) pairs"
  if not isinstance(rules, (tuple, list)):
    raise ConfigError(f"config.sharding.rules must be {shape}, got {rules!r}")
  for rule in rules:
    if not isinstance(rule, (tuple, list)) or len(rule) != 2 or not isinstance(rule[0], str):
      raise ConfigError(f"config.sharding.rules must be {shape}; {rule!r} is not one")
    axes = rule[1] if isinstance(rule[1], (tuple, list)) else (rule[1],)
    for axis in axes:
      if axis is not None and axis not in MESH_AXES:
        raise ConfigError(f"config.sharding.rules: {rule[0]!r} -> {axis!r} is not a mesh axis "
                          f"(use {', '.join(MESH_AXES)} or None)")


def _check_no_nan(node, prefix: str) -> None:
  for key in node.keys():
    value = node[key]
    name = f"{prefix}.{key}"
    if hasattr(value, "keys") and callable(value.keys):
      _check_no_nan(value, name)
      continue
    items = value if isinstance(value, (tuple, list)) else (value,)
    if any(isinstance(v, float) and math.isnan(v) for v in items):
      raise ConfigError(f"{name} is NaN, which is never a meaningful setting")


def int_fields(node, prefix: str = "") -> dict[str, int]:
  """{dotted key: value} of every integer field (not booleans, not inside tuples)."""
  out = {}
  for key in node.keys():
    value = node[key]
    if hasattr(value, "keys") and callable(value.keys):
      out.update(int_fields(value, f"{prefix}{key}."))
    elif _is_int(value):
      out[f"{prefix}{key}"] = value
  return out


def _check_ints(config, defaults: dict[str, int] | None) -> None:
  """Rules for every integer field, a paper's model.* and data.* ones included: it fits an
  int32 (array sizes, step counts), and one whose default is >= 0 (a size, a count) is not
  set negative. Mesh axes, whose -1 means "the rest of the devices", have their own rule."""
  for key, value in int_fields(config).items():
    if key == "seed" or key.startswith("mesh."):
      continue
    if abs(value) > INT32_MAX:
      raise ConfigError(f"config.{key} must be <= {INT32_MAX} in size (an int32), got {value}")
    default = (defaults or {}).get(key)
    if default is not None and default >= 0 and value < 0:
      raise ConfigError(f"config.{key} must be >= 0 (a size or count: its default is {default}), "
                        f"got {value}")


def check_config(config, defaults: dict[str, int] | None = None) -> None:
  """Raises ConfigError (one line) for the first shared value no run can use.

  `defaults`: `int_fields` of the config before its overrides (load_config passes it), for
  the rule that a field whose default is a size or count is not set negative."""
  _check_no_nan(config, "config")
  task = _get(config, "task")
  if task is not _MISSING and (not isinstance(task, str) or ":" not in task):
    raise ConfigError(f"config.task must be 'module.path:ClassName', got {task!r}")
  dtype = _get(config, "dtype")
  if dtype is not _MISSING and not isinstance(dtype, str):
    raise ConfigError(f"config.dtype must be a name such as 'float32' or 'bfloat16', got {dtype!r}")
  check_int(config, "seed", 0, SEED_MAX)
  check_int(config, "total_steps", 1)
  check_int(config, "batch_size", 1)
  for key in ("log_every", "eval_every", "checkpoint_every", "keep_checkpoints"):
    check_int(config, key, 1)
  check_float(config, "peak_flops", 0.0)
  _check_mesh(config)
  _check_rules(config)

  check_choice(config, "optimizer.name", OPTIMIZERS)
  check_choice(config, "optimizer.schedule", SCHEDULES)
  lr = _get(config, "optimizer.learning_rate")
  if lr is None:
    raise ConfigError("config.optimizer.learning_rate must be > 0, got None (the config's derive "
                      "did not fill it in; set --config.optimizer.learning_rate)")
  check_float(config, "optimizer.learning_rate", 0.0, strict_low=True)
  check_int(config, "optimizer.warmup_steps", 0)
  check_int(config, "optimizer.decay_steps", 0)
  if _get(config, "optimizer.schedule") == "noam":
    check_int(config, "optimizer.warmup_steps", 1)
    check_int(config, "optimizer.noam_d_model", 1)
  for key in ("b1", "b2", "momentum", "rmsprop_decay", "rho"):
    check_float(config, f"optimizer.{key}", 0.0, 1.0)
  for key in ("eps", "weight_decay", "clip_norm", "clip_value"):
    check_float(config, f"optimizer.{key}", 0.0)
  check_int(config, "optimizer.grad_accum_steps", 1)
  accum, batch = _get(config, "optimizer.grad_accum_steps"), _get(config, "batch_size")
  if _is_int(accum) and _is_int(batch) and batch % accum:
    raise ConfigError(f"config.batch_size {batch} is not divisible by "
                      f"config.optimizer.grad_accum_steps {accum}")
  check_int(config, "pipeline.microbatches", 1)
  remat = _get(config, "pipeline.remat")
  if remat is not _MISSING and not isinstance(remat, bool):
    raise ConfigError(f"config.pipeline.remat must be true or false, got {remat!r}")
  _check_ints(config, defaults)
