"""Plain multi-node start over ssh, driven by environment variables (no scheduler needed).

    python -m launch.multinode --hosts gpu-a,gpu-b --port 7077 --remote_dir ~/reading_list -- \
        --config configs/transformer_lm.py --workdir /shared/runs/lm

runs on host i (the first host is the coordinator, process 0):

    ssh gpu-b 'cd ~/reading_list && JAX_COORDINATOR_ADDRESS=gpu-a:7077 JAX_NUM_PROCESSES=2 \
        JAX_PROCESS_ID=1 python3 -m launch.train --config ... --workdir ...'

The same three variables work without this script: set them by hand (or from any
scheduler) on each host and start `python -m launch.train`. The workdir must be
visible to every host (NFS, or a bucket path orbax can write), since each process
writes its own shards of a checkpoint there.
"""
from __future__ import annotations

import argparse
import shlex
import sys
from typing import Sequence

from core import distributed
from launch.local import Worker, run_supervised, split_args


def host_env(hosts: Sequence[str], port: int, index: int,
             heartbeat_timeout_s: int | None = None) -> dict[str, str]:
  """The environment process `index` needs: the coordinator is the first host."""
  env = {
      distributed.ENV_COORDINATOR: f"{hosts[0]}:{port}",
      distributed.ENV_NUM_PROCESSES: str(len(hosts)),
      distributed.ENV_PROCESS_ID: str(index),
  }
  if heartbeat_timeout_s:
    env[distributed.ENV_HEARTBEAT] = str(heartbeat_timeout_s)
  return env


def remote_command(env: dict[str, str], remote_dir: str, python: str,
                   train_args: Sequence[str], module: str = "launch.train") -> str:
  """The shell line a host runs; `remote_dir` may start with ~ (left for the remote shell)."""
  cd = remote_dir if remote_dir.startswith("~") else shlex.quote(remote_dir)
  exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
  return f"cd {cd} && {exports} {shlex.join([python, '-u', '-m', module, *train_args])}"


def ssh_workers(hosts: Sequence[str], port: int, remote_dir: str, python: str,
                train_args: Sequence[str], heartbeat_timeout_s: int | None = None,
                ssh: str = "ssh") -> list[Worker]:
  workers = []
  for i, host in enumerate(hosts):
    env = host_env(hosts, port, i, heartbeat_timeout_s)
    # -tt: a remote process dies with its ssh session when the launcher is interrupted.
    argv = [*shlex.split(ssh), "-tt", host, remote_command(env, remote_dir, python, train_args)]
    workers.append(Worker(argv, {}))
  return workers


def main(argv: Sequence[str] | None = None) -> int:
  own, train_args = split_args(sys.argv[1:] if argv is None else argv)
  ap = argparse.ArgumentParser(prog="python -m launch.multinode", description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--hosts", required=True, help="comma-separated; the first is the coordinator")
  ap.add_argument("--port", type=int, default=7077)
  ap.add_argument("--remote_dir", default="~/reading_list", help="checkout of this repository on every host")
  ap.add_argument("--python", default="python3")
  ap.add_argument("--ssh", default="ssh", help="ssh command, e.g. 'ssh -i key -o BatchMode=yes'")
  ap.add_argument("--heartbeat_timeout_s", type=int, default=None)
  ap.add_argument("--grace_s", type=float, default=180.0)
  ap.add_argument("--log_dir", default=None)
  ap.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true")
  args = ap.parse_args(own)
  hosts = [h for h in args.hosts.split(",") if h]
  workers = ssh_workers(hosts, args.port, args.remote_dir, args.python, train_args,
                        args.heartbeat_timeout_s, args.ssh)
  if args.dry_run:
    for w in workers:
      print(shlex.join(w.argv))
    return 0
  return run_supervised(workers, args.grace_s, args.log_dir, tag="launch.multinode")


if __name__ == "__main__":
  sys.exit(main())
