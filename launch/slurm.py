"""GPU clusters under SLURM: write an sbatch script and submit it, or srun inside an allocation.

    python -m launch.slurm --nodes 2 --gpus_per_node 8 --time 04:00:00 --partition gpu -- \
        --config configs/transformer_lm.py --workdir /shared/runs/lm

One process per GPU (`--ntasks-per-node` = GPUs per node): inside each task jax's SLURM
detection reads SLURM_PROCID / SLURM_NTASKS / SLURM_STEP_NODELIST, takes the first node as
coordinator and uses GPU number SLURM_LOCALID, so launch.train needs no extra flag.
`srun --kill-on-bad-exit=1` ends the whole step when one task dies; resubmitting the same
script resumes from the last checkpoint in --workdir (which must be on a shared file system).
`--srun` runs the step directly (inside `salloc`); `--dry-run` prints the script and command.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from typing import Sequence

from core import distributed
from launch.local import split_args


def workdir_of(train_args: Sequence[str]) -> str | None:
  for k, a in enumerate(train_args):
    if a == "--workdir" and k + 1 < len(train_args):
      return train_args[k + 1]
    if a.startswith("--workdir="):
      return a.split("=", 1)[1]
  return None


def srun_argv(args, train_args: Sequence[str], inside_sbatch: bool) -> list[str]:
  argv = ["srun", "--kill-on-bad-exit=1"]
  if not inside_sbatch:  # sbatch already fixed the shape of the allocation
    argv += [f"--nodes={args.nodes}", f"--ntasks-per-node={args.gpus_per_node}",
             f"--gpus-per-node={args.gpus_per_node}", f"--cpus-per-task={args.cpus_per_task}"]
  return argv + [args.python, "-u", "-m", "launch.train", *train_args]


def sbatch_script(args, train_args: Sequence[str]) -> str:
  workdir = workdir_of(train_args)
  log = os.path.join(workdir, "slurm-%j.out") if workdir else "slurm-%j.out"
  lines = [
      "#!/bin/bash",
      f"#SBATCH --job-name={args.job_name}",
      f"#SBATCH --nodes={args.nodes}",
      f"#SBATCH --ntasks-per-node={args.gpus_per_node}",
      f"#SBATCH --gpus-per-node={args.gpus_per_node}",
      f"#SBATCH --cpus-per-task={args.cpus_per_task}",
      f"#SBATCH --time={args.time}",
      f"#SBATCH --output={log}",
  ]
  lines += [f"#SBATCH --partition={args.partition}"] if args.partition else []
  lines += [f"#SBATCH --account={args.account}"] if args.account else []
  lines += ["#SBATCH --requeue"] if args.requeue else []
  lines += ["", "set -euo pipefail"]
  if args.repo_dir:
    lines.append(f"cd {shlex.quote(args.repo_dir)}")
  if args.venv:
    lines.append(f"source {shlex.quote(os.path.join(args.venv, 'bin', 'activate'))}")
  if workdir:
    lines.append(f"mkdir -p {shlex.quote(workdir)}")
  if args.heartbeat_timeout_s:
    lines.append(f"export {distributed.ENV_HEARTBEAT}={args.heartbeat_timeout_s}")
  lines.append(shlex.join(srun_argv(args, train_args, inside_sbatch=True)))
  return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
  own, train_args = split_args(sys.argv[1:] if argv is None else argv)
  ap = argparse.ArgumentParser(prog="python -m launch.slurm", description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--nodes", type=int, default=1)
  ap.add_argument("--gpus_per_node", type=int, default=8)
  ap.add_argument("--cpus_per_task", type=int, default=8)
  ap.add_argument("--time", default="04:00:00")
  ap.add_argument("--partition", default=None)
  ap.add_argument("--account", default=None)
  ap.add_argument("--job_name", default="train")
  ap.add_argument("--requeue", action="store_true", help="let SLURM requeue on preemption (resumes)")
  ap.add_argument("--repo_dir", default=None, help="cd here first (default: the submit directory)")
  ap.add_argument("--venv", default=None, help="virtual environment to activate")
  ap.add_argument("--python", default="python3")
  ap.add_argument("--heartbeat_timeout_s", type=int, default=None)
  ap.add_argument("--script", default=None, help="where to write the sbatch file "
                  "(default: <workdir>/job.sbatch, else ./job.sbatch)")
  ap.add_argument("--srun", action="store_true", help="run srun now, inside an existing allocation")
  ap.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true")
  args = ap.parse_args(own)
  if not train_args:
    ap.error("give the launch.train arguments after '--'")

  if args.srun:
    argv_ = srun_argv(args, train_args, inside_sbatch=False)
    env = {distributed.ENV_HEARTBEAT: str(args.heartbeat_timeout_s)} if args.heartbeat_timeout_s else {}
    if args.dry_run:
      print(" ".join([*(f"{k}={v}" for k, v in env.items()), shlex.join(argv_)]))
      return 0
    return subprocess.call(argv_, env={**os.environ, **env})

  script = sbatch_script(args, train_args)
  workdir = workdir_of(train_args)
  path = args.script or os.path.join(workdir or ".", "job.sbatch")
  submit = ["sbatch", path]
  if args.dry_run:
    print(f"# {path}")
    print(script)
    print(shlex.join(submit))
    return 0
  os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
  with open(path, "w") as f:
    f.write(script)
  return subprocess.call(submit)


if __name__ == "__main__":
  sys.exit(main())
