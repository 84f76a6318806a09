"""Orbax checkpoints: async save, keep-N, resume, restore onto any mesh.

Each checkpoint holds the train state and a JSON record of the model's parameter
signature (paths, shapes, dtypes). Before restoring, the signature is compared
with the current model, so a workdir holding another model's checkpoint gives a
clear error instead of a shape traceback, and nothing is overwritten.

A checkpoint that cannot be read back (files overwritten or truncated, say by a full
disk or a bad copy) is not fatal: `restore_newest_intact` tries the checkpoints newest
first, moves each unreadable one aside to `checkpoints/corrupt-<step>` (its files are left
as they were, for inspection; orbax ignores the folder, so the step can be saved again),
says so in one warning line, and restores the newest intact one. If none is intact, it
raises ConfigError and moves nothing. A save cut short (SIGKILL while writing) never looks
finished: orbax writes into `<step>.orbax-checkpoint-tmp...` and renames it only at the end
(on object stores: a commit_success.txt file), ignores unfinished folders, and replaces one
when it saves that step again.
"""
from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import sys
from typing import Any, Callable

import jax
import orbax.checkpoint as ocp
from etils import epath

from core import distributed
from core.task import ConfigError, one_line

CORRUPT_PREFIX = "corrupt-"


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


class _DropOrbaxWarnings(logging.Filter):
  def filter(self, record):
    return not (record.levelno >= logging.WARNING and f"{os.sep}orbax{os.sep}" in record.pathname)


@contextlib.contextmanager
def _quiet_orbax():
  """Drops orbax's own warnings and errors (absl logging) while checkpoints are listed and tried:
  an unreadable one is reported once, by `restore_newest_intact`, not also as orbax's log lines
  (which may quote a whole damaged file)."""
  quiet = _DropOrbaxWarnings()
  logger = logging.getLogger("absl")
  logger.addFilter(quiet)
  try:
    yield
  finally:
    logger.removeFilter(quiet)


def _drop_closed_loop_callbacks():
  """After a failed restore, reads of the same checkpoint still in flight in tensorstore finish
  on an asyncio loop that orbax has closed, and each prints `RuntimeError: Event loop is closed`
  through sys.unraisablehook, for nothing. Drops exactly those (for the rest of the process)."""
  previous = sys.unraisablehook
  if getattr(previous, "_drops_closed_loop_callbacks", False):
    return

  def hook(unraisable):
    error = unraisable.exc_value
    if isinstance(error, RuntimeError) and str(error) == "Event loop is closed":
      return
    previous(unraisable)

  hook._drops_closed_loop_callbacks = True  # pylint: disable=protected-access
  sys.unraisablehook = hook


@dataclasses.dataclass
class Restored:
  step: int
  state: Any
  metadata: dict
  corrupt: list  # [(step, "Type: message", moved-to path)] of newer checkpoints that failed


class Checkpointer:

  def __init__(self, workdir, keep: int = 3, async_save: bool = True):
    workdir = os.fspath(workdir)
    if "://" not in workdir:
      workdir = os.path.abspath(workdir)
    self.directory = epath.Path(workdir) / "checkpoints"
    options = ocp.CheckpointManagerOptions(
        max_to_keep=keep, create=True, enable_async_checkpointing=async_save)
    with _quiet_orbax():  # it reads every step's metadata file
      self.manager = ocp.CheckpointManager(self.directory, options=options)

  def latest_step(self) -> int | None:
    return self.manager.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(self.manager.all_steps())

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

  def restore_newest_intact(self, abstract_state, signature: dict,
                            warn: Callable[[str], None] = print) -> Restored | None:
    """Restores the newest checkpoint that reads back; None if there is none.

    A checkpoint of another model raises ConfigError (see `restore`). Newer checkpoints that
    fail to read (on any process: the processes agree) are moved aside to `corrupt-<step>`
    after an intact one is found, with one `warn` line; if none is intact, ConfigError.
    """
    steps = sorted(self.all_steps(), reverse=True)
    if not steps:
      return None
    failed = []
    for step in steps:
      error = None
      try:
        with _quiet_orbax():
          state, meta = self.restore(step, abstract_state, signature)
      except ConfigError:
        raise
      except Exception as e:  # pylint: disable=broad-except  # unreadable: try the next one
        error = one_line(e, limit=200, with_type=True)
        _drop_closed_loop_callbacks()
      if distributed.all_agree(error is None, f"checkpoint_{step}"):
        break
      failed.append((step, error or "unreadable on another process"))
    else:
      listed = "; ".join(f"step {s}: {e}" for s, e in failed)
      raise ConfigError(
          f"no checkpoint in {self.directory} can be read back ({listed}); nothing was changed. "
          f"Move the folders away (e.g. rename {self.directory} to checkpoints.corrupt) to train "
          f"from scratch in this workdir, or use a new --workdir")
    corrupt = []
    if failed:
      moved = self._move_aside([s for s, _ in failed])
      corrupt = [(s, e, moved[s]) for s, e in failed]
      if len(failed) == 1:
        (bad, error), = failed
        what = f"checkpoint step {bad} in {self.directory} cannot be read back ({error}); moved it"
      else:
        errors = "; ".join(f"step {s}: {e}" for s, e in failed)
        what = (f"checkpoint steps {', '.join(str(s) for s, _ in failed)} in {self.directory} cannot "
                f"be read back ({errors}); moved them")
      warn(f"warning: {what} to {', '.join(str(moved[s]) for s, _ in failed)} (files left as they "
           f"were, for inspection) and resuming from step {step}, the newest intact checkpoint")
    return Restored(step, state, meta, corrupt)

  def _move_aside(self, steps) -> dict[int, epath.Path]:
    """Renames step folders to corrupt-<step> (corrupt-<step>.1, ... if taken); returns the paths."""
    moved = {step: self.directory / f"{CORRUPT_PREFIX}{step}" for step in steps}
    if jax.process_index() == 0:  # the one process that renames (the others only wait for it)
      for step in steps:
        n = 0
        while moved[step].exists():
          n += 1
          moved[step] = self.directory / f"{CORRUPT_PREFIX}{step}.{n}"
        (self.directory / str(step)).rename(moved[step])
    distributed.barrier("checkpoints_moved_aside")
    with _quiet_orbax():
      self.manager.reload()
    return moved

  def wait(self):
    self.manager.wait_until_finished()

  def close(self):
    self.manager.wait_until_finished()
    self.manager.close()
