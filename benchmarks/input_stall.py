"""Input-pipeline stall of recorded training runs: the share of wall time the train loop waited
for its next batch, read from each run's metrics.jsonl (`input_wait_fraction`, logged by
core.train with every train row).

  python -m benchmarks.input_stall runs/            # every run directory below runs/
  python -m benchmarks.input_stall runs/lstm/adding_lstm_T50 runs/char_rnn/shakespeare

Per run: the config it trained (config.json), the train rows read, the mean stall over the
run (weighted by the rows' equal step windows) and the worst window; the first window, which
includes compilation and the pipeline's warm-up, is left out.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from benchmarks import harness


def run_dirs(paths):
  for path in paths:
    if os.path.isfile(os.path.join(path, "metrics.jsonl")):
      yield path
      continue
    for root, dirs, files in os.walk(path):
      dirs.sort()
      if "metrics.jsonl" in files:
        yield root


def stall(run_dir: str) -> dict | None:
  rows = []
  with open(os.path.join(run_dir, "metrics.jsonl")) as f:
    for line in f:
      try:
        row = json.loads(line)
      except json.JSONDecodeError:
        continue
      if row.get("split") == "train" and "input_wait_fraction" in row:
        rows.append(row["input_wait_fraction"])
  if len(rows) < 2:
    return None
  waits = np.asarray(rows[1:])
  task = ""
  config_path = os.path.join(run_dir, "config.json")
  if os.path.exists(config_path):
    with open(config_path) as f:
      task = json.load(f).get("task", "").rsplit(":", 1)[-1]
  return {"run": run_dir, "task": task, "windows": len(waits), "mean_stall": float(waits.mean()),
          "worst_window": float(waits.max())}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("paths", nargs="+", help="run directories, or folders searched for them")
  parser.add_argument("--out", default="")
  args = parser.parse_args(argv)
  missing = [p for p in args.paths if not os.path.exists(p)]
  if missing:
    parser.error(f"no such path: {', '.join(missing)}")
  rows = [r for r in map(stall, run_dirs(args.paths)) if r is not None]
  if not rows:
    print("error: no run with at least two train rows of input_wait_fraction found", file=sys.stderr)
    return 1
  harness.print_table(rows, [("run", "run", "`{}`"), ("task", "task", "{}"), ("windows", "windows", "{}"),
                             ("mean_stall", "mean stall", "{:.2%}"), ("worst_window", "worst window", "{:.2%}")])
  over = [r["run"] for r in rows if r["mean_stall"] >= 0.02]
  print(f"{len(rows)} runs; {len(over)} with a mean stall of 2% or more" + (f": {', '.join(over)}" if over else ""))
  harness.write_json(args.out, {"runs": rows})
  return 0


if __name__ == "__main__":
  sys.exit(main())
