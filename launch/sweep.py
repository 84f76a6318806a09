"""Runs a config's sweep, one `launch.train` per point, and collects the results.

  python -m launch.sweep --config configs/scaling_laws.py[:variant] --sweep_dir DIR
      [--parallel K] [--dry_run] [--collect_only] [--only NAME,...]
      [--dispatch tpu_pod|slurm|... --launcher_args "..."] [--config.key=value ...]

The config file's `sweep(arg)` returns a list of override dicts such as
{"name": "d64_l4", "model.d_model": 64, "model.num_layers": 4}; each point trains in
DIR/<name> with `python -m launch.train`, with the command line's --config.* flags
applied after the point's own (so `--config.total_steps=50` shortens every run).
A point is finished when its final checkpoint exists, so re-running the same command
skips finished points and resumes killed ones from their last checkpoint. A running
point holds a lock on DIR/<name>/.sweep.lock (inherited by its trainer), so two
sweeps never train the same point at once; the trainers of a killed sweep die with it.

With --dispatch, each point is handed to a pod launcher instead:
`python -m launch.<dispatch> <launcher_args> -- --config ... --workdir REMOTE/<name> ...`,
where `{slot}` in launcher_args becomes the slot (0..K-1) the point runs in (e.g. one TPU
slice per slot: `--name sweep-{slot} --zone Z run`), and REMOTE is --remote_sweep_dir
(default DIR). Launchers return once the job is started or queued, so a slot stays busy
until DIR/<name> (the same storage as REMOTE/<name>, e.g. a gcsfuse mount of the bucket)
holds the point's final checkpoint.

Results: DIR/results.jsonl (one object a point: overrides, N = non-embedding
parameters, final metrics, learning curve) and DIR/results.csv (one row a logged
point: step, tokens D, compute C = 6 N D, split, metrics); DIR/events.jsonl logs
every start, finish and skip.
"""
from __future__ import annotations

import argparse
import csv
import ctypes
import fcntl
import json
import math
import os
import re
import shlex
import signal
import subprocess
import sys
import time

# Parameters with one of these logical axes are embeddings (Kaplan's N leaves them out).
EMBEDDING_AXES = ("vocab", "length")
LOCK_NAME = ".sweep.lock"


def parse_args(argv):
  parser = argparse.ArgumentParser(prog="python -m launch.sweep")
  parser.add_argument("--config", required=True, help="config file[:arg]; its sweep(arg) lists the points")
  parser.add_argument("--sweep_dir", required=True, help="one workdir per point is made under it")
  parser.add_argument("--parallel", type=int, default=1, help="points trained at once")
  parser.add_argument("--only", default="", help="comma-separated point names to run")
  parser.add_argument("--dry_run", action="store_true", help="print the commands, run nothing")
  parser.add_argument("--collect_only", action="store_true", help="only (re)write the results")
  parser.add_argument("--dispatch", default="", help="launcher module under launch/, e.g. tpu_pod")
  parser.add_argument("--launcher_args", default="", help="flags for the launcher; {slot} is replaced")
  parser.add_argument("--remote_sweep_dir", default="", help="DIR as the pod workers see it")
  parser.add_argument("--poll_s", type=float, default=30.0, help="how often to check dispatched points")
  args, overrides = parser.parse_known_args(argv)
  bad = [o for o in overrides if not o.startswith("--config.")]
  if bad:
    parser.error(f"unknown flags {bad}: overrides look like --config.key=value")
  return args, overrides


def _format(value) -> str:
  return repr(value) if isinstance(value, (tuple, list)) else str(value)


def _point_name(point: dict) -> str:
  text = ",".join(f"{k.split('.')[-1]}={_format(v)}" for k, v in sorted(point.items()))
  return re.sub(r"[^A-Za-z0-9_.,=-]", "_", text) or "default"


def load_points(spec: str, overrides) -> list[dict]:
  """The sweep's points: [{name, overrides, config}] with each config resolved and checked."""
  from core.config import load_config, load_module, split_spec
  from core.task import ConfigError
  path, arg = split_spec(spec)
  module = load_module(path)
  if not hasattr(module, "sweep"):
    raise ConfigError(f"config file {path!r} has no sweep(arg) function")
  points = []
  for point in module.sweep(arg):
    point = dict(point)
    name = str(point.pop("name", None) or _point_name(point))
    flags = [f"--config.{k}={_format(v)}" for k, v in point.items()] + list(overrides)
    points.append({"name": name, "point": point, "overrides": flags,
                   "config": load_config(spec, flags)})  # bad keys fail here, before any run
  names = [p["name"] for p in points]
  if len(set(names)) != len(names):
    raise ConfigError(f"sweep {spec!r} repeats point names: {sorted(names)}")
  return points


def _flatten(tree, prefix=""):
  if not isinstance(tree, dict):
    return {prefix: tree}
  out = {}
  for k, v in tree.items():
    out.update(_flatten(v, f"{prefix}.{k}" if prefix else k))
  return out


def is_finished(workdir: str, total_steps: int) -> bool:
  """Orbax renames a checkpoint to its step number only once it is complete."""
  return os.path.isdir(os.path.join(workdir, "checkpoints", str(total_steps)))


def train_command(spec: str, workdir: str, overrides, dispatch: str = "",
                  launcher_args: str = "", slot: int = 0) -> list[str]:
  train_args = ["--config", spec, "--workdir", workdir, *overrides]
  if not dispatch:
    return [sys.executable, "-m", "launch.train", *train_args]
  launcher = shlex.split(launcher_args.replace("{slot}", str(slot)))
  return [sys.executable, "-m", f"launch.{dispatch}", *launcher, "--", *train_args]


def _die_with_parent(parent_pid: int):
  """Runs in the child before exec: it gets SIGTERM when the sweep dies, even by SIGKILL."""
  def hook():
    try:
      ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
      return  # not Linux: the per-point lock still prevents a second trainer
    if os.getppid() != parent_pid:  # the sweep died before prctl took effect
      os._exit(1)
  return hook


class Sweep:

  def __init__(self, args, points):
    self.args = args
    self.points = points
    self.dir = args.sweep_dir
    os.makedirs(self.dir, exist_ok=True)

  def workdir(self, point) -> str:
    return os.path.join(self.dir, point["name"])

  def log(self, event: str, point=None, **extra):
    row = {"time": round(time.time(), 3), "event": event, **extra}
    if point is not None:
      row["run"] = point["name"]
    if not self.args.dry_run:
      with open(os.path.join(self.dir, "events.jsonl"), "a") as f:
        f.write(json.dumps(row) + "\n")
    text = " ".join(f"{k}={v}" for k, v in extra.items())
    print(f"[sweep] {event} {point['name'] if point else ''} {text}".rstrip(), flush=True)

  def finished(self, point) -> bool:
    return is_finished(self.workdir(point), point["config"].total_steps)

  def check_unchanged(self, point) -> None:
    """A point's workdir must hold the same resolved config, or results would mix."""
    from core.config import to_json
    from core.task import ConfigError
    path = os.path.join(self.workdir(point), "config.json")
    if not os.path.exists(path):
      return
    with open(path) as f:
      saved = _flatten(json.load(f))
    current = _flatten(json.loads(to_json(point["config"])))
    changed = sorted(k for k in set(saved) | set(current) if saved.get(k) != current.get(k))
    if changed:
      k = changed[0]
      raise ConfigError(
          f"point {point['name']!r} in {self.dir} was trained with another config ({len(changed)} "
          f"keys differ, e.g. {k}: {saved.get(k)!r} there vs {current.get(k)!r} now); use a new "
          f"--sweep_dir, or delete {self.workdir(point)} to retrain it")

  def pending(self) -> list[dict]:
    out = []
    for point in self.points:
      self.check_unchanged(point)
      if self.finished(point):
        self.log("skip_finished", point)
      else:
        out.append(point)
    return out

  def command(self, point, slot: int) -> list[str]:
    remote = self.args.remote_sweep_dir or self.dir
    return train_command(self.args.config, os.path.join(remote, point["name"]), point["overrides"],
                         self.args.dispatch, self.args.launcher_args, slot)

  def _start(self, point, slot: int) -> dict | None:
    workdir = self.workdir(point)
    os.makedirs(workdir, exist_ok=True)
    lock = os.open(os.path.join(workdir, LOCK_NAME), os.O_CREAT | os.O_RDWR, 0o644)
    try:
      fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      os.close(lock)
      self.log("skip_locked", point)  # another sweep is training it right now
      return None
    with open(os.path.join(workdir, "train.log"), "ab") as out:
      # The trainer inherits the locked descriptor: the lock lasts as long as either lives.
      proc = subprocess.Popen(self.command(point, slot), stdout=out, stderr=subprocess.STDOUT,
                              pass_fds=(lock,), preexec_fn=_die_with_parent(os.getpid()))
    self.log("start", point, pid=proc.pid, slot=slot)
    return {"point": point, "proc": proc, "lock": lock, "start": time.time(), "checked": 0.0}

  def _poll(self, job) -> str | None:
    """None while the point runs; else 'finished' or 'failed'."""
    code = job["proc"].poll()
    if code is None:
      return None
    if code == 0 and self.args.dispatch and not self.finished(job["point"]):
      # The launcher has started or queued the job; wait for its final checkpoint.
      if not job["checked"]:
        self.log("dispatched", job["point"])
      if time.time() - job["checked"] < self.args.poll_s:
        return None
      job["checked"] = time.time()
      return None if not self.finished(job["point"]) else "finished"
    return "finished" if code == 0 and self.finished(job["point"]) else "failed"

  def run(self) -> int:
    queue = self.pending()
    running: dict[int, dict] = {}  # slot -> job
    failed = []

    def stop(signum, frame):
      raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)
    try:
      while queue or running:
        free = [s for s in range(self.args.parallel) if s not in running]
        while queue and free:
          job = self._start(queue.pop(0), free[0])
          if job is not None:
            running[free.pop(0)] = job
        for slot, job in list(running.items()):
          outcome = self._poll(job)
          if outcome is None:
            continue
          del running[slot]
          os.close(job["lock"])
          seconds = round(time.time() - job["start"], 1)
          if outcome == "finished":
            self.log("finished", job["point"], seconds=seconds)
          else:
            failed.append(job["point"]["name"])
            self.log("failed", job["point"], returncode=job["proc"].returncode, seconds=seconds,
                     log=os.path.join(self.workdir(job["point"]), "train.log"))
        time.sleep(0.2)
    except KeyboardInterrupt:
      for job in running.values():
        job["proc"].terminate()
      for job in running.values():
        job["proc"].wait()
        self.log("stopped", job["point"])
      raise
    if failed:
      print(f"[sweep] {len(failed)} point(s) failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


def count_params(config) -> tuple[int, int]:
  """(non-embedding, total) parameter counts, from the model's abstract init."""
  import flax.linen as nn
  import jax
  from core.task import load_task
  # Shapes only: keep the sweep process off the accelerators its trainers use.
  jax.config.update("jax_platforms", "cpu")
  boxed = jax.eval_shape(load_task(config).init, jax.random.key(0))["params"]
  leaves = jax.tree.leaves(boxed, is_leaf=lambda x: isinstance(x, nn.Partitioned))
  total = non_embedding = 0
  for leaf in leaves:
    names = tuple(getattr(leaf, "names", ()) or ())
    size = math.prod(nn.unbox(leaf).shape)
    total += size
    if not any(axis in names for axis in EMBEDDING_AXES):
      non_embedding += size
  return non_embedding, total


def tokens_per_step(config) -> int | None:
  """Global batch x sequence length, for configs that have data.seq_len."""
  seq_len = config.data.get("seq_len") if "data" in config else None
  return int(config.batch_size) * int(seq_len) if seq_len else None


def collect(sweep_dir: str, points) -> list[dict]:
  """Writes results.jsonl and results.csv from every point's metrics.jsonl."""
  from core.metrics import read_metrics
  results, rows = [], []
  for point in points:
    config = point["config"]
    workdir = os.path.join(sweep_dir, point["name"])
    n, n_total = count_params(config)
    per_step = tokens_per_step(config)
    metrics = read_metrics(workdir)
    curve = []
    for row in metrics:
      d = row["step"] * per_step if per_step else None
      extra = {"N": n, "D": d, "C": 6 * n * d if d is not None else None}
      curve.append({**row, **extra})
      rows.append({"run": point["name"], "N_total": n_total, **extra, **row})
    finals = {s: max((r for r in metrics if r["split"] == s), key=lambda r: r["step"], default=None)
              for s in ("train", "eval")}
    finished = is_finished(workdir, config.total_steps)
    results.append({"run": point["name"], "status": "finished" if finished else
                    ("partial" if metrics else "pending"), "overrides": point["point"],
                    "N": n, "N_total": n_total, "total_steps": config.total_steps,
                    "tokens_per_step": per_step,
                    "D": config.total_steps * per_step if per_step else None,
                    "C": 6 * n * config.total_steps * per_step if per_step else None,
                    "final_train": finals["train"], "final_eval": finals["eval"],
                    "curve": curve})
  with open(os.path.join(sweep_dir, "results.jsonl"), "w") as f:
    for r in results:
      f.write(json.dumps(r) + "\n")
  keys = ["run", "N", "N_total", "step", "D", "C", "split"]
  keys += sorted({k for r in rows for k, v in r.items()
                  if k not in keys and isinstance(v, (int, float))})
  with open(os.path.join(sweep_dir, "results.csv"), "w", newline="") as f:
    writer = csv.DictWriter(f, keys, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
  return results


def main(argv=None) -> int:
  args, overrides = parse_args(sys.argv[1:] if argv is None else argv)
  from core.task import ConfigError
  try:
    points = load_points(args.config, overrides)
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  if args.only:
    wanted = set(args.only.split(","))
    unknown = wanted - {p["name"] for p in points}
    if unknown:
      print(f"error: --only names unknown points {sorted(unknown)}", file=sys.stderr)
      return 2
    points = [p for p in points if p["name"] in wanted]
  sweep = Sweep(args, points)
  try:
    for point in points:
      sweep.check_unchanged(point)
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  if args.dry_run:
    for i, point in enumerate(sweep.pending()):
      print(shlex.join(sweep.command(point, i % args.parallel)))
    return 0
  code = 0 if args.collect_only else sweep.run()
  results = collect(args.sweep_dir, points)
  done = sum(r["status"] == "finished" for r in results)
  print(f"[sweep] {done}/{len(results)} points finished; results in "
        f"{os.path.join(args.sweep_dir, 'results.csv')}", flush=True)
  return code


if __name__ == "__main__":
  sys.exit(main())
