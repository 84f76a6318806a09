"""Reproduce the papers' claims: train what is missing, then write every results table from the runs.

  python -m launch.reproduce [--items ntm,transformer] [--tier smoke|cpu|pod] [--runs runs] [--jobs 2]
  python -m launch.reproduce --collect   # record what finished runs say, rewrite the tables; train nothing
  python -m launch.reproduce --check     # exit 1 if a README table or RESULTS.md differs from the record
  python -m launch.reproduce --dry_run   # print the commands that would run

Each paper declares its runs and claims in papers/<item>/claims.py (see core/claims.py).
A run trains into <runs>/<item>/<run> (a partial one resumes from its checkpoints), and
each of its sessions appends the command, exit status, wall and CPU time and machine to
<runs>/<item>/<run>/reproduce.jsonl. The figures the claims read are then recorded in
papers/<item>/results.json (committed: the record every table is generated from), and the
paper README's table (between the markers of core/claims.py) and RESULTS.md are rewritten
from that record. `--tier cpu` runs the smoke and cpu runs; `--tier pod` also the
paper-scale ones, best sent to a cluster with `--launcher "python -m launch.slurm ... --"`
(any command that takes launch.train's flags), then recorded by `--collect` when finished.
"""
from __future__ import annotations

import argparse
import concurrent.futures
import datetime
import difflib
import glob
import importlib
import importlib.util
import json
import os
import re
import shlex
import signal
import subprocess
import sys
import threading
import time
from typing import Any, Sequence

from core.claims import TABLE_BEGIN, TABLE_END, TIERS, Claim, Run

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RESULTS_MD = "RESULTS.md"
RECORD = "results.json"
SESSIONS = "reproduce.jsonl"


class ReproduceError(Exception):
  """Bad claims, items or flags; the message says what to do."""


# ---- the claims ----------------------------------------------------------------------------

def all_items() -> list[str]:
  return sorted(os.path.basename(os.path.dirname(p))
                for p in glob.glob(os.path.join(ROOT, "papers", "*", "claims.py")))


def load_claims(item: str) -> tuple[dict[str, Run], tuple[Claim, ...]]:
  path = os.path.join(ROOT, "papers", item, "claims.py")
  spec = importlib.util.spec_from_file_location(f"_claims_of_{item}", path)
  module = importlib.util.module_from_spec(spec)
  try:
    spec.loader.exec_module(module)
  except (ValueError, TypeError) as e:  # a Claim or Run that refuses its fields
    raise ReproduceError(f"papers/{item}/claims.py: {e}") from None
  runs, claims = dict(getattr(module, "RUNS", {})), tuple(getattr(module, "CLAIMS", ()))
  for claim in claims:
    if claim.run not in runs:
      raise ReproduceError(f"papers/{item}/claims.py: a claim reads run {claim.run!r}, which RUNS "
                           f"does not define (it has {sorted(runs)})")
  return runs, claims


def command_lines(item: str, name: str, run: Run, runs_dir: str, launcher: str = "") -> list[list[str]]:
  """The argv of each command of a run (one `launch.train` for a training run)."""
  workdir = os.path.join(runs_dir, item, name)
  if run.commands:
    return [[sys.executable, "-m", *[a.replace("{workdir}", workdir) for a in argv]]
            for argv in run.commands]
  train = ["--config", run.config, "--workdir", workdir, *run.overrides]
  prefix = shlex.split(launcher) if launcher else [sys.executable, "-m", "launch.train"]
  return [prefix + train]


def shown_command(item: str, name: str, run: Run, runs_dir: str = "runs") -> str:
  lines = command_lines(item, name, run, runs_dir)
  return " && ".join(shlex.join(["python", *argv[1:]]) for argv in lines)


# ---- the state of a run --------------------------------------------------------------------

def _checkpoint_step(workdir: str) -> int | None:
  steps = [int(d) for d in os.listdir(os.path.join(workdir, "checkpoints")) if d.isdigit()] \
      if os.path.isdir(os.path.join(workdir, "checkpoints")) else []
  return max(steps) if steps else None


def _sessions(workdir: str) -> list[dict]:
  path = os.path.join(workdir, SESSIONS)
  if not os.path.exists(path):
    return []
  with open(path, encoding="utf-8") as f:
    return [json.loads(line) for line in f if line.strip()]


def _as_defined(command: str, workdir: str) -> str:
  """A session's command line written as its Run defines it: no `python -m`, "{workdir}" for the
  run directory (whatever runs folder it was in)."""
  item_and_name = "/".join(os.path.normpath(workdir).split(os.sep)[-2:])
  command = re.sub(r"\S*/" + re.escape(item_and_name) + r"(?=/|\s|$)", "{workdir}", command)
  return command.removeprefix("python -m ")


def progress(run: Run, workdir: str) -> tuple[int, int, bool]:
  """(steps done, steps in all, finished) of a run's workdir."""
  if run.commands:
    # Finished: the last session was the run's last command, as the run defines it now, and
    # it succeeded (commands run in order and stop at a failure). A changed definition reruns.
    sessions = _sessions(workdir)
    done = (bool(sessions) and sessions[-1].get("exit") == 0
            and _as_defined(sessions[-1].get("command", ""), workdir) == " ".join(run.commands[-1]))
    return int(done), 1, done
  from core.config import load_config  # pylint: disable=g-import-not-at-top
  from core.task import ConfigError  # pylint: disable=g-import-not-at-top
  try:
    total = int(load_config(os.path.join(ROOT, run.config), run.overrides).total_steps)
  except ConfigError as e:
    raise ReproduceError(f"{workdir}: its run's config does not load: {e}") from None
  step = _checkpoint_step(workdir) or 0
  return step, total, step >= total


def _last_logged_step(workdir: str) -> int:
  """The last step in a run's metrics.jsonl (0 if none)."""
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return 0
  with open(path, encoding="utf-8") as f:
    return max((int(json.loads(line).get("step", 0)) for line in f if line.strip()), default=0)


def _json_path(data: Any, dotted: str) -> Any:
  for part in dotted.split("."):
    data = data[int(part)] if isinstance(data, list) else data[part]
  return data


def read_value(claim: Claim, workdir: str) -> float | None:
  """The figure a claim reads from a run's workdir, or None if it is not there."""
  path = os.path.join(workdir, claim.file)
  if not os.path.exists(path):
    return None
  if claim.file.endswith(".jsonl"):
    with open(path, encoding="utf-8") as f:
      rows = [json.loads(line) for line in f if line.strip()]
    values = [float(r[claim.metric]) for r in rows
              if r.get("split") == claim.split and isinstance(r.get(claim.metric), (int, float))]
    if not values:
      return None
    if claim.reduce == "last":
      return values[-1]
    return max(values) if claim.better == "higher" else min(values)
  with open(path, encoding="utf-8") as f:
    try:
      return float(_json_path(json.load(f), claim.metric))
    except (KeyError, IndexError, ValueError, TypeError):
      return None


def record_of(item: str, name: str, run: Run, claims: Sequence[Claim], runs_dir: str) -> dict | None:
  """What a run's workdir says, as kept in papers/<item>/results.json (None: never started)."""
  workdir = os.path.join(runs_dir, item, name)
  if not os.path.isdir(workdir):
    return None
  step, total, finished = progress(run, workdir)
  if not step and not run.commands:  # trained elsewhere, its checkpoints left there
    step = _last_logged_step(workdir)
  values = {c.key(): read_value(c, workdir) for c in claims if c.run == name}
  if not any(v is not None for v in values.values()):
    return None
  sessions = _sessions(workdir)
  newest = max((os.path.getmtime(os.path.join(workdir, c.file)) for c in claims
                if c.run == name and os.path.exists(os.path.join(workdir, c.file))), default=None)
  machines = sorted({s["machine"] for s in sessions if s.get("machine")})
  timed = all(s.get("wall_s") is not None for s in sessions) and sessions
  return {
      "run": run.describe(),
      "workdir": os.path.relpath(workdir, ROOT) if os.path.isabs(workdir) else workdir,
      "step": step, "total_steps": total, "finished": finished,
      "date": datetime.datetime.fromtimestamp(newest, datetime.timezone.utc).strftime("%Y-%m-%d")
              if newest else None,
      "machine": ", ".join(machines) if machines else None,
      "wall_s": sum(s["wall_s"] for s in sessions) if timed else None,
      "cpu_s": sum(s["cpu_s"] for s in sessions)
               if timed and all(s.get("cpu_s") is not None for s in sessions) else None,
      "values": values,
  }


# ---- training ------------------------------------------------------------------------------

_print_lock = threading.Lock()
_live: set = set()           # the training processes running now
_stopping = threading.Event()  # set by SIGTERM/SIGINT: start nothing new


def _stop(signum, frame):  # pylint: disable=unused-argument
  """Passes SIGTERM on to the runs (they checkpoint and exit 76) and starts no new ones."""
  _stopping.set()
  for proc in list(_live):
    proc.send_signal(signal.SIGTERM)


def _say(message: str):
  with _print_lock:
    print(message, flush=True)


def train_run(item: str, name: str, run: Run, runs_dir: str, launcher: str = "") -> int:
  """Runs (or resumes) one run's commands; appends each session to its reproduce.jsonl."""
  from core.platforms import describe_machine  # pylint: disable=g-import-not-at-top
  workdir = os.path.join(runs_dir, item, name)
  os.makedirs(workdir, exist_ok=True)
  machine = describe_machine()
  for argv in command_lines(item, name, run, runs_dir, launcher):
    if _stopping.is_set():
      return 76
    started = time.time()
    _say(f"[{item}/{name}] {shlex.join(argv[2:] if argv[0] == sys.executable else argv)}")
    with open(os.path.join(workdir, "reproduce.log"), "ab") as log:
      proc = subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
      _live.add(proc)
      _, status, usage = os.wait4(proc.pid, 0)
      _live.discard(proc)
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    wall = time.time() - started
    session = {"command": shlex.join(["python", *argv[1:]]), "exit": code, "machine": machine,
               "started": datetime.datetime.fromtimestamp(started, datetime.timezone.utc).isoformat(
                   timespec="seconds"),
               "wall_s": round(wall, 1), "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
               "load_average": round(os.getloadavg()[0], 1)}  # wall time means little without it
    with open(os.path.join(workdir, SESSIONS), "a", encoding="utf-8") as f:
      f.write(json.dumps(session) + "\n")
    _say(f"[{item}/{name}] exit {code} after {wall / 60:.1f} min wall, "
         f"{session['cpu_s'] / 60:.1f} min CPU (log: {os.path.join(workdir, 'reproduce.log')})")
    if code != 0:
      return code
  return 0


# ---- the tables ----------------------------------------------------------------------------

def _duration(seconds: float | None) -> str:
  if seconds is None:
    return "unrecorded"
  minutes = seconds / 60
  if minutes < 10:
    return f"{minutes:.1f} min"
  return f"{minutes:.0f} min" if minutes < 90 else f"{minutes / 60:.1f} h"


def _ours(claim: Claim, rec: dict | None) -> tuple[str, str]:
  value = None if rec is None else rec["values"].get(claim.key())
  if value is None:
    return "", "not run"
  ours, verdict = claim.fmt.format(value), claim.verdict(value)
  if not rec["finished"]:
    ours += f" (step {rec['step']:,} of {rec['total_steps']:,})"
    verdict = f"unfinished; {verdict}"
  return ours, verdict


def _where(rec: dict | None) -> str:
  if rec is None:
    return ""
  return (f"{rec['date']}, {rec['machine'] or 'machine unrecorded'}: "
          f"{_duration(rec['wall_s'])} wall, {_duration(rec['cpu_s'])} CPU")


def readme_table(item: str, runs: dict[str, Run], claims: Sequence[Claim], record: dict) -> str:
  lines = ["| claim | paper | ours | verdict | command | date, machine: time |", "|---|---|---|---|---|---|"]
  for claim in claims:
    rec = record.get(claim.run)
    ours, verdict = _ours(claim, rec)
    lines.append(f"| {claim.what} | {claim.paper} ({claim.source}) | {ours} | {verdict} | "
                 f"`{shown_command(item, claim.run, runs[claim.run])}` | {_where(rec)} |")
  return "\n".join(lines)


def results_md(tables: dict[str, tuple[dict, tuple, dict]]) -> str:
  counts = {"held": 0, "short": 0, "not run": 0}
  rows = []
  for item, (runs, claims, record) in tables.items():
    for claim in claims:
      rec = record.get(claim.run)
      ours, verdict = _ours(claim, rec)
      counts["held" if verdict == "held" else "not run" if verdict == "not run" else "short"] += 1
      run_dir = rec["workdir"] if rec else f"runs/{item}/{claim.run}"
      rows.append(f"| {item} | {claim.what} | {claim.paper} ({claim.source}) | {ours} | {verdict} | "
                  f"{runs[claim.run].tier} | `{run_dir}` | {_where(rec)} |")
  head = [
      "# Results",
      "",
      "Every claim of every paper, as its latest recorded run says. Generated by",
      "`python -m launch.reproduce` from `papers/<item>/results.json`; do not edit by hand",
      "(`python -m launch.reproduce --check` fails if this file or a README table differs).",
      "The commands are in each paper's README; `tier` is the budget (smoke: minutes, cpu: hours",
      "on 2 cores, pod: paper scale).",
      "",
      f"{counts['held']} held, {counts['short']} short of the paper, {counts['not run']} not run.",
      "",
      "| paper | claim | paper's figure | ours | verdict | tier | run directory | date, machine: time |",
      "|---|---|---|---|---|---|---|---|",
  ]
  return "\n".join(head + rows) + "\n"


def _readme_path(item: str) -> str:
  return os.path.join(ROOT, "papers", item, "README.md")


def with_table(readme: str, table: str, item: str) -> str:
  begin, end = readme.find(TABLE_BEGIN), readme.find(TABLE_END)
  if begin < 0 or end < begin:
    raise ReproduceError(f"papers/{item}/README.md has no results table markers: add the lines "
                         f"{TABLE_BEGIN!r} and {TABLE_END!r} where the table goes")
  return readme[:begin] + TABLE_BEGIN + "\n" + table + "\n" + readme[end:]


def load_record(item: str) -> dict:
  path = os.path.join(ROOT, "papers", item, RECORD)
  if not os.path.exists(path):
    return {}
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def save_record(item: str, record: dict):
  with open(os.path.join(ROOT, "papers", item, RECORD), "w", encoding="utf-8") as f:
    json.dump(record, f, indent=1, sort_keys=True)
    f.write("\n")


def expected_files(items: Sequence[str]) -> dict[str, str]:
  """{path: the text it should have} for the READMEs of `items` and RESULTS.md (all items)."""
  out, tables = {}, {}
  for item in all_items():
    runs, claims = load_claims(item)
    record = load_record(item)
    tables[item] = (runs, claims, record)
    if item in items:
      if not os.path.exists(_readme_path(item)):
        raise ReproduceError(f"papers/{item}/README.md is missing: a paper with claims needs a README "
                             f"with the results table markers")
      with open(_readme_path(item), encoding="utf-8") as f:
        out[_readme_path(item)] = with_table(f.read(), readme_table(item, runs, claims, record), item)
  out[os.path.join(ROOT, RESULTS_MD)] = results_md(tables)
  return out


def stale_records(item: str) -> list[str]:
  """Recorded runs whose definition in claims.py has changed since (their figures are void)."""
  runs, _ = load_claims(item)
  return [f"papers/{item}/{RECORD}: run {name!r} was recorded as {rec['run']} but claims.py now "
          f"says {runs[name].describe() if name in runs else 'nothing'}; re-run it (python -m "
          f"launch.reproduce --items {item}) or delete its entry"
          for name, rec in load_record(item).items()
          if name not in runs or rec["run"] != runs[name].describe()]


def check(items: Sequence[str]) -> list[str]:
  problems = [p for item in items for p in stale_records(item)]
  for path, text in expected_files(items).items():
    current = open(path, encoding="utf-8").read() if os.path.exists(path) else ""
    if current != text:
      diff = difflib.unified_diff(current.splitlines(), text.splitlines(), lineterm="", n=0)
      shown = [line for line in diff if line[:1] in "+-" and line[:3] not in ("+++", "---")][:6]
      problems.append(f"{os.path.relpath(path, ROOT)} differs from what the recorded runs say "
                      f"(run python -m launch.reproduce --collect):\n    " + "\n    ".join(shown))
  return problems


def collect(items: Sequence[str], runs_dir: str) -> None:
  for item in items:
    runs, claims = load_claims(item)
    record = load_record(item)
    for name, run in runs.items():
      rec = record_of(item, name, run, claims, runs_dir)
      if rec is not None:  # a run not on this machine keeps its earlier record
        record[name] = rec
    record = {name: rec for name, rec in record.items() if name in runs}
    save_record(item, record)
  for path, text in expected_files(items).items():
    with open(path, "w", encoding="utf-8") as f:
      f.write(text)


# ---- the command ---------------------------------------------------------------------------

def parse_args(argv):
  parser = argparse.ArgumentParser(prog="python -m launch.reproduce", description=__doc__.split("\n")[0])
  parser.add_argument("--items", default="", help="comma-separated papers/<item> names (default: all)")
  parser.add_argument("--tier", default="smoke", choices=TIERS, help="run the runs of this tier and below")
  parser.add_argument("--only", default="", help="comma-separated run names of those items (default: "
                      "every run of the tier and below)")
  parser.add_argument("--runs", default="runs", help="where run directories go: <runs>/<item>/<run>")
  parser.add_argument("--jobs", type=int, default=1, help="runs trained at once")
  parser.add_argument("--launcher", default="", help="command that takes launch.train's flags "
                      "(default: python -m launch.train), e.g. 'python -m launch.slurm --nodes 2 --'")
  parser.add_argument("--root", default=ROOT, help="the repository whose papers/ and configs/ are used")
  parser.add_argument("--collect", action="store_true", help="train nothing: record and rewrite tables")
  parser.add_argument("--check", action="store_true", help="fail if a table differs from the record")
  parser.add_argument("--dry_run", action="store_true", help="print what would run, run nothing")
  return parser.parse_args(argv)


def main(argv=None) -> int:
  global ROOT
  args = parse_args(sys.argv[1:] if argv is None else argv)
  ROOT = os.path.abspath(args.root)
  known = all_items()
  items = [i.strip() for i in args.items.split(",") if i.strip()] or known
  try:
    unknown = sorted(set(items) - set(known))
    if unknown:
      raise ReproduceError(f"--items {','.join(unknown)}: no papers/<item>/claims.py; items with "
                           f"claims: {','.join(known)}")
    if args.jobs < 1:
      raise ReproduceError(f"--jobs must be at least 1, got {args.jobs}")
    if args.check:
      problems = check(items)
      for p in problems:
        print(f"error: {p}", file=sys.stderr)
      if not problems:
        print(f"results tables of {len(items)} papers and {RESULTS_MD} agree with the recorded runs")
      return 1 if problems else 0
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    named = {n for item in items for n in load_claims(item)[0]} if only else set()
    if only - named:
      raise ReproduceError(f"--only {','.join(sorted(only - named))}: no such run in "
                           f"{','.join(items)}; their runs: {','.join(sorted(named))}")
    runs_dir = os.path.abspath(args.runs)
    todo = []
    if not args.collect:
      limit = TIERS.index(args.tier)
      for item in items:
        runs, _ = load_claims(item)
        for name, run in runs.items():
          if TIERS.index(run.tier) > limit or (only and name not in only):
            continue
          step, total, finished = progress(run, os.path.join(runs_dir, item, name))
          state = "finished" if finished else f"step {step:,} of {total:,}" if step else "not started"
          if args.dry_run or finished:
            print(f"[{item}/{name}] {run.tier}: {state}"
                  + ("" if finished else ": " + shown_command(item, name, run, args.runs)))
          if not finished:
            todo.append((item, name, run))
    if args.dry_run:
      return 0
    failed = []
    if todo:
      print(f"training {len(todo)} runs, {args.jobs} at a time", flush=True)
      signal.signal(signal.SIGTERM, _stop)
      signal.signal(signal.SIGINT, _stop)
      with concurrent.futures.ThreadPoolExecutor(args.jobs) as pool:
        codes = pool.map(lambda t: train_run(*t, runs_dir, args.launcher), todo)
        failed = [f"{item}/{name}" for (item, name, _), code in zip(todo, codes) if code != 0]
    collect(items, runs_dir)
    print(f"wrote the results tables of {', '.join(items)} and {RESULTS_MD}")
    if _stopping.is_set():
      print("stopped by a signal: the runs saved checkpoints; run the same command to resume",
            file=sys.stderr)
      return 76
    if failed:
      print(f"error: {len(failed)} runs failed: {', '.join(failed)} (their logs: "
            f"<runs>/<item>/<run>/reproduce.log)", file=sys.stderr)
      return 1
    return 0
  except ReproduceError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2


if __name__ == "__main__":
  sys.exit(main())
