"""Orbax checkpoints: async save, keep-N, resume, restore onto any mesh.

Each checkpoint holds the train state and a JSON record of the model's parameter
signature (paths, shapes, dtypes). Before restoring, the signature is compared
with the current model, so a workdir holding another model's checkpoint gives a
clear error instead of a shape traceback, and nothing is overwritten.
"""
from __future__ import annotations

import os

import jax
import orbax.checkpoint as ocp
from etils import epath

from core.task import ConfigError


def param_signature(params) -> dict[str, list]:
  flat = jax.tree_util.tree_flatten_with_path(params)[0]
  return {jax.tree_util.keystr(path): [list(x.shape), str(x.dtype)] for path, x in flat}


def describe_mismatch(saved: dict, current: dict) -> str:
  missing = sorted(set(saved) - set(current))
  extra = sorted(set(current) - set(saved))
  changed = sorted(k for k in set(saved) & set(current) if saved[k] != current[k])
  parts = []
  if changed:
    k = changed[0]
    parts.append(f"{len(changed)} parameters differ in shape, e.g. {k}: checkpoint {saved[k][0]} vs model {current[k][0]}")
  if missing:
    parts.append(f"{len(missing)} checkpoint parameters are not in the model, e.g. {missing[0]}")
  if extra:
    parts.append(f"{len(extra)} model parameters are not in the checkpoint, e.g. {extra[0]}")
  return "; ".join(parts)


class Checkpointer:

  def __init__(self, workdir, keep: int = 3, async_save: bool = True):
    workdir = os.fspath(workdir)
    if "://" not in workdir:
      workdir = os.path.abspath(workdir)
    self.directory = epath.Path(workdir) / "checkpoints"
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=True, enable_async_checkpointing=async_save)
    self.manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def save(self, step: int, state, metadata: dict, force: bool = False) -> None:
    self.manager.save(
        step,
        args=ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(metadata)),
        force=force)

  def read_metadata(self, step: int) -> dict:
    restored = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))
    return restored["meta"]

  def restore(self, step: int, abstract_state, signature: dict):
    """Restores onto the shardings carried by `abstract_state` (any mesh)."""
    meta = self.read_metadata(step)
    if meta.get("signature") != signature:
      raise ConfigError(
          f"the checkpoint at step {step} in {self.directory} is of a different model "
          f"({describe_mismatch(meta.get('signature', {}), signature)}); "
          f"use a new --workdir or the config that wrote it")
    restored = self.manager.restore(
        step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract_state)))
    return restored["state"], meta

  def wait(self):
    self.manager.wait_until_finished()

  def close(self):
    self.manager.wait_until_finished()
    self.manager.close()
