"""Config files and command-line overrides.

`load_config("configs/x.py:variant", ["--config.a.b=3"])` imports the file,
calls `get_config("variant")`, applies the overrides with the type of the
existing field, and refuses unknown keys with a one-line error. The result (after the
overrides and `derive`) is checked by core/validate.py before it is returned, so every entry
point that loads a config (launch.train, launch.compile, launch.sweep) refuses a bad value,
say `--config.total_steps=0`, with one line before anything is built.

Derived values are derived, not copied, so they follow the overrides: a field that is a
plain function of others is an ml_collections reference
(`c.optimizer.noam_d_model = c.model.get_ref("d_model")`); anything else (say, a
learning rate from a model-size formula) is computed by an optional `derive(config)` in
the config file, called after the overrides, which fills fields left at None so that an
explicit override still wins.
"""
from __future__ import annotations

import ast
import importlib.util
import json
import os
from typing import Any, Sequence

import ml_collections

from core.task import ConfigError, one_line
from core.validate import check_config, int_fields


def load_module(path: str):
  if not os.path.isfile(path):
    raise ConfigError(f"config file {path!r} does not exist")
  name = "config_" + os.path.splitext(os.path.basename(path))[0]
  spec = importlib.util.spec_from_file_location(name, path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  if not hasattr(module, "get_config"):
    raise ConfigError(f"config file {path!r} has no get_config(arg) function")
  return module


def split_spec(spec: str) -> tuple[str, str | None]:
  path, _, variant = spec.partition(":")
  return path, (variant or None)


def load_config(spec: str, overrides: Sequence[str] = ()) -> ml_collections.ConfigDict:
  path, variant = split_spec(spec)
  module = load_module(path)
  try:
    config = module.get_config(variant) if variant is not None else module.get_config()
  except (KeyError, ValueError) as e:
    raise ConfigError(f"config {spec!r}: {one_line(e)}") from None
  config = ml_collections.ConfigDict(config)
  defaults = int_fields(config)
  apply_overrides(config, overrides)
  if hasattr(module, "derive"):
    try:
      module.derive(config)
    except (TypeError, ValueError, ArithmeticError) as e:
      raise ConfigError(f"config {spec!r}: its derive() cannot use these values: {one_line(e)}") from None
  check_config(config, defaults)  # shared keys and generic rules, before anything is built
  config.lock()
  return config


def _parse_value(text: str, current: Any) -> Any:
  """Parses `text` into the type of the current value (bool/int/float/str/tuple)."""
  if isinstance(current, bool):
    if text.lower() in ("1", "true", "yes"):
      return True
    if text.lower() in ("0", "false", "no"):
      return False
    raise ValueError(f"expected a boolean, got {text!r}")
  if isinstance(current, int):
    return int(text)
  if isinstance(current, float):
    return float(text)
  if isinstance(current, str):
    return text
  if current is None:
    try:
      return ast.literal_eval(text)
    except (ValueError, SyntaxError):
      return text
  if isinstance(current, (tuple, list)):
    value = ast.literal_eval(text)
    if not isinstance(value, (tuple, list)):
      value = (value,)
    return type(current)(value)
  return ast.literal_eval(text)


def set_key(config: ml_collections.ConfigDict, dotted: str, text: str) -> None:
  node = config
  parts = dotted.split(".")
  for i, part in enumerate(parts):
    known = sorted(node.keys())
    if part not in node:
      where = ".".join(parts[:i]) or "config"
      raise ConfigError(
          f"unknown config key {dotted!r}: {where} has no field {part!r} (known: {', '.join(known)})")
    if i < len(parts) - 1:
      node = node[part]
      if not isinstance(node, ml_collections.ConfigDict):
        raise ConfigError(f"config key {'.'.join(parts[:i + 1])!r} is a value, not a group")
  current = node[parts[-1]]
  if isinstance(current, ml_collections.ConfigDict):
    raise ConfigError(f"config key {dotted!r} is a group; set one of its fields")
  try:
    value = _parse_value(text, current)
  except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError) as e:
    raise ConfigError(f"bad value for --config.{dotted}: {one_line(e)}") from None
  try:
    with node.unlocked():
      node[parts[-1]] = value
  except (TypeError, ValueError) as e:
    raise ConfigError(f"bad value for --config.{dotted}: {one_line(e)}") from None


def apply_overrides(config, overrides: Sequence[str]) -> None:
  for item in overrides:
    if not item.startswith("--config."):
      raise ConfigError(f"unknown flag {item!r}: overrides look like --config.key=value")
    key, sep, text = item[len("--config."):].partition("=")
    if not sep:
      raise ConfigError(f"override {item!r} has no '=': use --config.{key}=VALUE")
    set_key(config, key, text)


def to_json(config) -> str:
  return json.dumps(config.to_dict(), indent=2, sort_keys=True, default=str)


ONE_DEVICE_MESH = dict(data=1, fsdp=1, tensor=1, stage=1)


def run_config(workdir: str, train_command: str = "") -> ml_collections.ConfigDict:
  """The config a training workdir ran with (its config.json), set to one device: how the
  scripts that read a run (sampling, scoring, plots) rebuild its Trainer with
  `core.train.restore_latest`. `train_command` goes into the error when there is no run."""
  hint = f"; train one with `{train_command}`" if train_command else ""
  if not os.path.isdir(workdir):
    raise ConfigError(f"--workdir {workdir} does not exist{hint}")
  path = os.path.join(workdir, "config.json")
  if not os.path.isfile(path):
    raise ConfigError(f"{path} is missing: {workdir} is not a training workdir (or its run has "
                      f"not started yet){hint}")
  with open(path, encoding="utf-8") as f:
    config = ml_collections.ConfigDict(json.load(f))
  config.mesh = ml_collections.ConfigDict(ONE_DEVICE_MESH)
  config.sharding.rules = tuple(tuple(rule) for rule in config.sharding.rules)
  return config
