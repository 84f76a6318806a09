"""BLEU of one checkpoint of a translation run (the task's `evaluate`), e.g. to compare two runs
at the same step before they finish.

  python -m papers.bahdanau.evaluate --workdir runs/bahdanau/rnnsearch --step 1000

Prints the metrics as one JSON line and appends them, with the step, to
<workdir>/checkpoint_evals.jsonl.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m papers.bahdanau.evaluate",
                                   description=__doc__.split("\n", maxsplit=1)[0])
  parser.add_argument("--workdir", required=True, help="a training workdir of configs/bahdanau.py")
  parser.add_argument("--step", type=int, default=None, help="checkpoint step (default: newest)")
  args = parser.parse_args(argv)
  from core.task import ConfigError  # pylint: disable=g-import-not-at-top
  from papers.bahdanau.figures import load_run  # pylint: disable=g-import-not-at-top
  try:
    task, variables, step = load_run(args.workdir, args.step)
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  started = time.time()
  metrics = {"step": step, **task.evaluate(variables, step),
             "eval_seconds": round(time.time() - started, 1)}
  line = json.dumps(metrics)
  print(line)
  with open(os.path.join(args.workdir, "checkpoint_evals.jsonl"), "a", encoding="utf-8") as f:
    f.write(line + "\n")
  return 0


if __name__ == "__main__":
  sys.exit(main())
