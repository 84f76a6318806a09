"""Cloud TPU VM pods (one slice, or several with --multislice): create, copy code, run, logs, stop.

    python -m launch.tpu_pod --name my-pod --zone us-central2-b create --accelerator v4-32 --runtime tpu-ubuntu2204-base
    python -m launch.tpu_pod --name my-pod --zone us-central2-b setup
    python -m launch.tpu_pod --name my-pod --zone us-central2-b exec -- python3 -m core.datasets shakespeare
    python -m launch.tpu_pod --name my-pod --zone us-central2-b run --follow -- \
        --config configs/transformer_lm.py --workdir gs://BUCKET/runs/lm
    python -m launch.tpu_pod --name my-pod --zone us-central2-b logs --worker 3
    python -m launch.tpu_pod --name my-pod --zone us-central2-b stop

Add --dry-run to print the gcloud commands instead of running them. `setup` copies the
files git knows (tracked and untracked-not-ignored) to every worker and installs
requirements-tpu.txt. `run` starts launch.train detached on every worker (jax detects
the pod: process ids and coordinator come from the TPU metadata, so no flags are needed)
and writes ~/train.log and ~/train.pid there. With --multislice the same steps go through
a queued resource of --num_slices slices (`gcloud compute tpus queued-resources ... --node=all`).
"""
from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from typing import Sequence, Union

from core import distributed
from launch.local import split_args

Command = Union[list, str]  # argv, or one shell line (for pipes)
LOG, PID = "~/train.log", "~/train.pid"


class Pod:
  """Builds gcloud command lines for one TPU VM pod or one multislice queued resource."""

  def __init__(self, name: str, zone: str, project: str | None = None, multislice: bool = False,
               remote_dir: str = "~/reading_list", python: str = "python3"):
    self.name, self.zone, self.project, self.multislice = name, zone, project, multislice
    self.remote_dir, self.python = remote_dir, python

  def _gcloud(self, *verb: str) -> list[str]:
    group = ["queued-resources"] if self.multislice else ["tpu-vm"]
    argv = ["gcloud", "compute", "tpus", *group, *verb]
    return argv

  def _where(self, worker: str = "all") -> list[str]:
    flags = [f"--zone={self.zone}", f"--worker={worker}"]
    if self.multislice:
      flags.append("--node=all" if worker == "all" else "--node=0")
    if self.project:
      flags.append(f"--project={self.project}")
    return flags

  def ssh(self, command: str, worker: str = "all") -> list[str]:
    return [*self._gcloud("ssh", self.name), *self._where(worker), f"--command={command}"]

  def create(self, accelerator: str, runtime: str, num_slices: int = 1, spot: bool = False) -> list[Command]:
    project = [f"--project={self.project}"] if self.project else []
    extra = ["--spot"] if spot else []
    if self.multislice:
      return [[*self._gcloud("create", self.name), f"--zone={self.zone}", f"--accelerator-type={accelerator}",
               f"--runtime-version={runtime}", f"--node-count={num_slices}",
               f"--node-prefix={self.name}", *project, *extra]]
    return [[*self._gcloud("create", self.name), f"--zone={self.zone}", f"--accelerator-type={accelerator}",
             f"--version={runtime}", *project, *extra]]

  def setup(self, requirements: str = "requirements-tpu.txt") -> list[Command]:
    tarball = f"/tmp/{self.name}-code.tgz"
    pack = f"git ls-files -z --cached --others --exclude-standard | tar --null -czf {tarball} -T -"
    copy = [*self._gcloud("scp", tarball, f"{self.name}:~/code.tgz"), *self._where()]
    install = (f"mkdir -p {self.remote_dir} && tar -xzf ~/code.tgz -C {self.remote_dir} && "
               f"cd {self.remote_dir} && {self.python} -m pip install -q -r {shlex.quote(requirements)}")
    return [pack, copy, self.ssh(install)]

  def run(self, train_args: Sequence[str], env: dict[str, str] | None = None) -> list[Command]:
    exports = "".join(f"export {k}={shlex.quote(v)}; " for k, v in (env or {}).items())
    train = shlex.join([self.python, "-u", "-m", "launch.train", *train_args])
    # Detached, so that closing this ssh session does not stop training; stdin from /dev/null
    # and all output to the log file, or ssh waits for the background job.
    # `;` rather than `&&` before the `&`: only the python process goes to the background,
    # so $! is its pid.
    # A TPU admits one process: refuse while the previous run is alive.
    busy = (f"if [ -f {PID} ] && kill -0 $(cat {PID}) 2>/dev/null; then "
            f"echo \"$(hostname): a run is still going (pid $(cat {PID})); stop it first\" >&2; exit 1; fi; ")
    start = (f"{busy}cd {self.remote_dir} || exit 1; {exports}"
             f"setsid nohup {train} > {LOG} 2>&1 < /dev/null & echo $! > {PID}")
    return [self.ssh(start)]

  def exec(self, command: Sequence[str]) -> list[Command]:
    """Any command, in the code folder of every worker (e.g. fetching a data set)."""
    return [self.ssh(f"cd {self.remote_dir} && {shlex.join(command)}")]

  def logs(self, worker: str = "0", follow: bool = True) -> list[Command]:
    return [self.ssh(f"tail -n 200 {'-F ' if follow else ''}{LOG}", worker=worker)]

  def stop(self) -> list[Command]:
    return [self.ssh(f"if [ -f {PID} ]; then kill -TERM $(cat {PID}) 2>/dev/null; rm -f {PID}; fi; true")]

  def delete(self) -> list[Command]:
    project = [f"--project={self.project}"] if self.project else []
    force = ["--force"] if self.multislice else []
    return [[*self._gcloud("delete", self.name), f"--zone={self.zone}", *project, *force, "--quiet"]]


def render(command: Command) -> str:
  return command if isinstance(command, str) else shlex.join(command)


def execute(commands: Sequence[Command], dry_run: bool) -> int:
  for c in commands:
    print(("" if dry_run else "+ ") + render(c), flush=True)
    if dry_run:
      continue
    rc = subprocess.call(c, shell=isinstance(c, str))
    if rc != 0:
      return rc
  return 0


def main(argv: Sequence[str] | None = None) -> int:
  own, train_args = split_args(sys.argv[1:] if argv is None else argv)
  ap = argparse.ArgumentParser(prog="python -m launch.tpu_pod", description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--name", required=True, help="TPU VM name (queued resource name with --multislice)")
  ap.add_argument("--zone", required=True)
  ap.add_argument("--project", default=None)
  ap.add_argument("--multislice", action="store_true", help="several slices through a queued resource")
  ap.add_argument("--remote_dir", default="~/reading_list")
  ap.add_argument("--python", default="python3", help="python on the workers")
  ap.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true")
  sub = ap.add_subparsers(dest="action", required=True)
  c = sub.add_parser("create")
  c.add_argument("--accelerator", required=True, help="e.g. v4-32, v5litepod-64")
  c.add_argument("--runtime", required=True, help="TPU software version, e.g. tpu-ubuntu2204-base")
  c.add_argument("--num_slices", type=int, default=1)
  c.add_argument("--spot", action="store_true")
  s = sub.add_parser("setup")
  s.add_argument("--requirements", default="requirements-tpu.txt")
  r = sub.add_parser("run")
  r.add_argument("--env", action="append", default=[], help="KEY=VALUE for every worker (repeatable)")
  r.add_argument("--heartbeat_timeout_s", type=int, default=None)
  r.add_argument("--follow", action="store_true", help="then stream worker 0's log")
  sub.add_parser("exec", help="run the command after '--' in the code folder of every worker")
  lg = sub.add_parser("logs")
  lg.add_argument("--worker", default="0", help="a worker number, or 'all'")
  lg.add_argument("--no_follow", action="store_true")
  sub.add_parser("stop")
  sub.add_parser("delete")
  args = ap.parse_args(own)

  pod = Pod(args.name, args.zone, args.project, args.multislice, args.remote_dir, args.python)
  if args.action == "create":
    if args.num_slices > 1 and not args.multislice:
      ap.error("--num_slices > 1 needs --multislice")
    commands = pod.create(args.accelerator, args.runtime, args.num_slices, args.spot)
  elif args.action == "setup":
    commands = pod.setup(args.requirements)
  elif args.action == "run":
    if not train_args:
      ap.error("give the launch.train arguments after '--'")
    env = dict(kv.split("=", 1) for kv in args.env)
    if args.heartbeat_timeout_s:
      env[distributed.ENV_HEARTBEAT] = str(args.heartbeat_timeout_s)
    commands = pod.run(train_args, env)
    if args.follow:
      commands += pod.logs("0")
  elif args.action == "exec":
    if not train_args:
      ap.error("give the command after '--'")
    commands = pod.exec(train_args)
  elif args.action == "logs":
    commands = pod.logs(args.worker, follow=not args.no_follow)
  elif args.action == "stop":
    commands = pod.stop()
  else:
    commands = pod.delete()
  return execute(commands, args.dry_run)


if __name__ == "__main__":
  sys.exit(main())
