"""Train a config: python -m launch.train --config configs/<name>.py[:variant] --workdir DIR [--config.key=value ...]

Re-running the same command on the same workdir resumes from its latest checkpoint.
`python -m launch.train --list` prints every config in configs/ with its variants.
Multi-process runs (pods, clusters, the local runner) pass --coordinator, --num_processes
and --process_id, or set them through the environment (see core/distributed.py).
Without JAX_PLATFORMS in the environment, the platform is chosen by core/platforms.py
(a TPU if there is one, else a GPU jax can drive, else the CPU), so that an installed
libtpu does not probe for a TPU on machines that have none.
"""
from __future__ import annotations

import argparse
import ast
import os
import sys
import tempfile
import textwrap

USAGE = ("python -m launch.train --config configs/<name>.py[:variant] --workdir DIR [--config.key=value ...]\n"
         "       python -m launch.train --list")
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG_DIR = os.path.join(ROOT, "configs")
NOT_CONFIGS = ("__init__.py", "common.py")


def parse_args(argv):
  parser = argparse.ArgumentParser(prog="python -m launch.train", usage=USAGE)
  parser.add_argument("--list", action="store_true",
                      help="list the configs in configs/, their variants and what each trains; then exit")
  parser.add_argument("--config", help="config file, optionally with :variant (required)")
  parser.add_argument("--workdir", help="output and checkpoint directory, resumed if it exists (required)")
  parser.add_argument("--coordinator", default=None, help="host:port of process 0 (multi-process)")
  parser.add_argument("--num_processes", type=int, default=None)
  parser.add_argument("--process_id", type=int, default=None)
  args, overrides = parser.parse_known_args(argv)
  if not args.list:
    missing = [flag for flag, value in (("--config", args.config), ("--workdir", args.workdir)) if not value]
    if missing:
      parser.error(f"the following arguments are required: {', '.join(missing)} "
                   "(or --list to see the configs)")
  return args, overrides


# ---- --list: read the config files without running them (no jax, no paper imports) ----

def describe_config(path: str) -> dict:
  """{"path", "summary" (first docstring line), "variants" (tuple, or None if not declared)}."""
  with open(path, encoding="utf-8") as f:
    tree = ast.parse(f.read(), filename=path)
  doc = ast.get_docstring(tree) or ""
  summary = doc.strip().splitlines()[0].strip() if doc.strip() else "(no docstring)"
  variants = None
  for node in tree.body:
    if (isinstance(node, ast.Assign) and len(node.targets) == 1
        and isinstance(node.targets[0], ast.Name) and node.targets[0].id == "VARIANTS"):
      try:
        variants = tuple(str(v) for v in ast.literal_eval(node.value))
      except (ValueError, TypeError, SyntaxError):
        variants = None
  return {"path": path, "summary": summary, "variants": variants}


def list_configs(directory: str = CONFIG_DIR) -> list[dict]:
  names = sorted(n for n in os.listdir(directory) if n.endswith(".py") and n not in NOT_CONFIGS)
  return [describe_config(os.path.join(directory, n)) for n in names]


def format_config_list(configs: list[dict]) -> str:
  lines = ["Configs: python -m launch.train --config FILE[:VARIANT] --workdir DIR (without :VARIANT, "
           "the default;", "each file's docstring has its command and expected result)"]
  for c in configs:
    lines.append("")
    shown = os.path.relpath(c["path"])
    if shown.startswith(".."):
      shown = c["path"]
    lines.append(f"{shown}  {c['summary']}")
    variants = ", ".join(c["variants"]) if c["variants"] is not None else "(not declared: see the file)"
    lines.extend(textwrap.wrap(variants or "(none)", width=100, initial_indent="    variants: ",
                               subsequent_indent="              ", break_on_hyphens=False))
  return "\n".join(lines)


# ---- workdir ---------------------------------------------------------------------------------

def _cannot_write(directory: str) -> str | None:
  """Why a new folder cannot be made in `directory` (tried, then removed), or None."""
  try:
    os.rmdir(tempfile.mkdtemp(prefix=".launch_train_probe_", dir=directory))
  except OSError as e:
    return e.strerror or str(e)
  return None


def check_workdir(workdir: str) -> str | None:
  """One line saying why a local workdir cannot be used (created and written), or None.

  Leaves nothing behind; object-store paths (gs://...) are left to their client."""
  if "://" in workdir:
    return None
  path = os.path.abspath(workdir)
  if os.path.lexists(path):
    if not os.path.exists(path):
      return f"--workdir {workdir} is a broken symbolic link; remove it or pick another path"
    if not os.path.isdir(path):
      return f"--workdir {workdir} is a file, not a directory; pick another path"
    reason = _cannot_write(path)
    if reason:
      return f"--workdir {workdir} is not writable ({reason}); pick another path or fix its permissions"
    return None
  parent = os.path.dirname(path)
  while not os.path.lexists(parent):
    parent = os.path.dirname(parent)
  if not os.path.isdir(parent):
    return f"--workdir {workdir} cannot be created: {parent} is a file, not a directory"
  reason = _cannot_write(parent)
  if reason:
    return (f"--workdir {workdir} cannot be created: no new folder can be made in {parent} ({reason}); "
            "pick another path or fix its permissions")
  return None


def main(argv=None) -> int:
  args, overrides = parse_args(sys.argv[1:] if argv is None else argv)
  if args.list:
    try:
      print(format_config_list(list_configs()), flush=True)
    except BrokenPipeError:  # `--list | head`: stop quietly
      os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
  # Before jax is imported: no libtpu probing on a machine without a TPU (core/platforms.py).
  from core import platforms  # pylint: disable=g-import-not-at-top
  _, note = platforms.set_default_platforms()
  if note:
    print(note, file=sys.stderr)
  if os.environ.get("JAX_PLATFORMS") == "cpu" and "GLIBC_TUNABLES" not in os.environ:
    platforms.keep_freed_memory()  # no page faults re-mapping each step's buffers
  # Imports after parsing so that `--help` and flag errors are instant.
  # pylint: disable=g-import-not-at-top
  from core.config import load_config
  from core.task import ConfigError, DataMissingError
  try:
    config = load_config(args.config, overrides)  # light imports only: config errors are instant
    problem = check_workdir(args.workdir)
    if problem:
      raise ConfigError(problem)
    from core import distributed
    from core.train import TrainingDiverged, train
    distributed.initialize(args.coordinator, args.num_processes, args.process_id)
    try:
      train(config, args.workdir)
    except TrainingDiverged as e:
      print(f"error: {e}", file=sys.stderr)
      return 3
  except (ConfigError, DataMissingError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
