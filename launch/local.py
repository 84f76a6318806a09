"""N processes on this machine, each with its own fake CPU devices: the test double for a pod.

    python -m launch.local --num_processes 2 --devices_per_process 4 -- \
        --config configs/transformer_lm.py:tiny --workdir runs/lm_2x4

Everything after `--` goes to `python -m launch.train`. Each process gets the same
JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES / JAX_PROCESS_ID environment that
launch.multinode gives a real host, so it runs the jax.distributed path of a pod
(with gloo collectives between the CPU devices). Output is streamed with a
"[p<i>]" prefix. When one process fails, the others are given `--grace_s` to stop on
their own (the heartbeat timeout) and are then killed; the exit status is the first failure's.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import shlex
import signal
import socket
import subprocess
import sys
import threading
import time
from typing import Mapping, Sequence

from core import distributed

_DEVICE_FLAG = "--xla_force_host_platform_device_count"


@dataclasses.dataclass
class Worker:
  """One process of the job: its argv and the environment variables it adds."""
  argv: list[str]
  env: dict[str, str]

  def shell(self) -> str:
    return " ".join([*(f"{k}={shlex.quote(v)}" for k, v in self.env.items()), shlex.join(self.argv)])


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("localhost", 0))
    return s.getsockname()[1]


def with_device_count(xla_flags: str, count: int) -> str:
  """XLA_FLAGS with the fake host device count set to `count` (replacing any earlier value)."""
  kept = [f for f in xla_flags.split() if not f.startswith(_DEVICE_FLAG)]
  return " ".join([*kept, f"{_DEVICE_FLAG}={count}"])


def local_workers(num_processes: int, devices_per_process: int, train_args: Sequence[str], port: int,
                  module: str = "launch.train", heartbeat_timeout_s: int | None = None,
                  base_xla_flags: str = "") -> list[Worker]:
  workers = []
  for i in range(num_processes):
    env = {
        distributed.ENV_COORDINATOR: f"localhost:{port}",
        distributed.ENV_NUM_PROCESSES: str(num_processes),
        distributed.ENV_PROCESS_ID: str(i),
        "JAX_PLATFORMS": "cpu",
        "XLA_FLAGS": with_device_count(base_xla_flags, devices_per_process),
    }
    if heartbeat_timeout_s:
      env[distributed.ENV_HEARTBEAT] = str(heartbeat_timeout_s)
    workers.append(Worker([sys.executable, "-u", "-m", module, *train_args], env))
  return workers


def _pump(stream, prefix: str, sinks) -> None:
  for line in iter(stream.readline, ""):
    for sink in sinks:
      sink.write(prefix + line)
      sink.flush()
  stream.close()
  for sink in sinks:
    if sink is not sys.stdout:
      sink.close()


def start(workers: Sequence[Worker], log_dir: str | None = None, echo: bool = True,
          cwd: str | None = None) -> list[subprocess.Popen]:
  """Starts every worker; a thread per worker copies its output (prefixed) to stdout and/or a log file."""
  procs = []
  if log_dir:
    os.makedirs(log_dir, exist_ok=True)
  for i, w in enumerate(workers):
    p = subprocess.Popen(w.argv, env={**os.environ, **w.env}, cwd=cwd, text=True, bufsize=1,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    sinks = [sys.stdout] if echo else []
    if log_dir:
      sinks.append(open(os.path.join(log_dir, f"process_{i}.log"), "a"))
    p.pump = threading.Thread(target=_pump, args=(p.stdout, f"[p{i}] ", sinks), daemon=True)
    p.pump.start()
    procs.append(p)
  return procs


@dataclasses.dataclass
class Outcome:
  returncodes: list[int]
  first_failure: int | None        # index of the process that failed first
  seconds_after_failure: list[float | None]  # when each other process ended, after the first failure
  killed: list[int]                # processes still alive after the grace period

  @property
  def exit_code(self) -> int:
    if self.first_failure is None:
      return 0
    rc = self.returncodes[self.first_failure]
    return 128 - rc if rc < 0 else rc


def supervise(procs: Sequence[subprocess.Popen], grace_s: float = 90.0, poll_s: float = 0.1,
              failed_at: Mapping[int, float] | None = None, timeout_s: float | None = None) -> Outcome:
  """Waits for all processes; after the first failure, kills whatever is alive `grace_s` later.

  `failed_at` lets a caller that killed a process itself say when (time.monotonic()).
  `timeout_s` bounds the whole run: then every live process is killed (a failure).
  """
  n = len(procs)
  ended = [None] * n
  first, t_fail = None, None
  if failed_at:
    first, t_fail = min(failed_at.items(), key=lambda kv: kv[1])
  t_start = time.monotonic()
  while any(e is None for e in ended):
    now = time.monotonic()
    for i, p in enumerate(procs):
      if ended[i] is None and p.poll() is not None:
        ended[i] = now
        if p.returncode != 0 and first is None:
          first, t_fail = i, now
    if t_fail is not None and now - t_fail > grace_s:
      break
    if timeout_s is not None and now - t_start > timeout_s:
      break
    time.sleep(poll_s)
  killed = []
  for i, p in enumerate(procs):
    if p.poll() is None:
      p.kill()
      p.wait()
      killed.append(i)
  if first is None and killed:  # timed out
    first = killed[0]
  for p in procs:
    p.pump.join(timeout=5)
  after = [None if (e is None or t_fail is None or i == first) else e - t_fail
           for i, e in enumerate(ended)]
  return Outcome([p.returncode for p in procs], first, after, killed)


def describe(outcome: Outcome) -> str:
  def status(rc):
    return f"killed by {signal.Signals(-rc).name}" if rc < 0 else f"exit {rc}"
  if outcome.first_failure is None:
    return f"all {len(outcome.returncodes)} processes finished"
  lines = [f"process {outcome.first_failure} failed first ({status(outcome.returncodes[outcome.first_failure])})"]
  for i, rc in enumerate(outcome.returncodes):
    if i == outcome.first_failure:
      continue
    if i in outcome.killed:
      lines.append(f"process {i} was still running after the grace period and was killed")
    else:
      lines.append(f"process {i}: {status(rc)}, {outcome.seconds_after_failure[i]:.1f} s after that")
  return "; ".join(lines)


def run_supervised(workers: Sequence[Worker], grace_s: float, log_dir: str | None = None,
                   tag: str = "launch") -> int:
  procs = start(workers, log_dir)
  print(f"[{tag}] " + ", ".join(f"process {i}: pid {p.pid}" for i, p in enumerate(procs)), flush=True)
  try:
    outcome = supervise(procs, grace_s)
  except KeyboardInterrupt:
    for p in procs:
      if p.poll() is None:
        p.send_signal(signal.SIGINT)
    outcome = supervise(procs, grace_s=10)
  print(f"[{tag}] {describe(outcome)}", flush=True)
  return outcome.exit_code


def split_args(argv: Sequence[str]) -> tuple[list[str], list[str]]:
  """(launcher args, args after '--')."""
  argv = list(argv)
  if "--" in argv:
    k = argv.index("--")
    return argv[:k], argv[k + 1:]
  return argv, []


def main(argv: Sequence[str] | None = None) -> int:
  own, train_args = split_args(sys.argv[1:] if argv is None else argv)
  ap = argparse.ArgumentParser(prog="python -m launch.local", description=__doc__,
                               formatter_class=argparse.RawDescriptionHelpFormatter)
  ap.add_argument("--num_processes", "-n", type=int, default=2)
  ap.add_argument("--devices_per_process", type=int, default=4)
  ap.add_argument("--port", type=int, default=0, help="coordinator port; 0 = pick a free one")
  ap.add_argument("--module", default="launch.train", help="python module every process runs")
  ap.add_argument("--heartbeat_timeout_s", type=int, default=10,
                  help="a process that loses a peer stops after about this long")
  ap.add_argument("--grace_s", type=float, default=None,
                  help="after a failure, kill the others after this long (default 3 x heartbeat)")
  ap.add_argument("--log_dir", default=None, help="also write process_<i>.log files here")
  ap.add_argument("--dry-run", "--dry_run", dest="dry_run", action="store_true",
                  help="print the commands and exit")
  args = ap.parse_args(own)
  workers = local_workers(args.num_processes, args.devices_per_process, train_args,
                          args.port or free_port(), args.module, args.heartbeat_timeout_s,
                          os.environ.get("XLA_FLAGS", ""))
  if args.dry_run:
    for w in workers:
      print(w.shell())
    return 0
  grace = args.grace_s if args.grace_s is not None else 3 * args.heartbeat_timeout_s
  return run_supervised(workers, grace, args.log_dir, tag="launch.local")


if __name__ == "__main__":
  sys.exit(main())
