"""Pre-activation against original ResNet at one depth (He 2016 Table 3), from two finished runs.

  python -m papers.resnet.compare --runs runs/resnet --original resnet56 --preact preact_resnet56 \
      --out runs/resnet/preact_vs_original

Reads the eval rows of <runs>/<original>/metrics.jsonl and <runs>/<preact>/metrics.jsonl and
writes <out>/preact_vs_original.json with the errors at the last step both have evaluated and
    test_gap  = test_error(pre-act) - test_error(original)    (< 0: the paper's direction)
    train_gap = train_error(pre-act) - train_error(original)
    test_gap_se: the standard error of test_gap from the binomial noise of the scored images
      alone, sqrt(p1 (1 - p1) / n + p2 (1 - p2) / n); seed-to-seed variation adds to it.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys

from core.metrics import eval_rows_or_exit


def last_common_eval(runs_dir: str, names: tuple[str, str]) -> dict[str, dict]:
  rows = {}
  for name in names:
    path = os.path.join(runs_dir, name)
    rows[name] = eval_rows_or_exit(path, f"python -m launch.reproduce --items resnet --tier cpu --only {name}")
  step = min(r[-1]["step"] for r in rows.values())
  return {name: next(r for r in found if r["step"] == step) for name, found in rows.items()}


def summary(original: dict, preact: dict, test_examples: int) -> dict:
  p1, p2 = original["test_error"], preact["test_error"]
  return {
      "step": original["step"],
      "original": {k: original[k] for k in ("train_error", "test_error")},
      "preact": {k: preact[k] for k in ("train_error", "test_error")},
      "test_gap": p2 - p1,
      "train_gap": preact["train_error"] - original["train_error"],
      "test_gap_se": math.sqrt((p1 * (1 - p1) + p2 * (1 - p2)) / test_examples),
      "test_examples": test_examples,
  }


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--runs", default="runs/resnet")
  parser.add_argument("--original", default="resnet56")
  parser.add_argument("--preact", default="preact_resnet56")
  parser.add_argument("--test_examples", type=int, default=2_000,
                      help="test images each error was scored on (configs/resnet.py: 2,000)")
  parser.add_argument("--out", default="runs/resnet/preact_vs_original")
  args = parser.parse_args(argv)
  rows = last_common_eval(args.runs, (args.original, args.preact))
  result = summary(rows[args.original], rows[args.preact], args.test_examples)
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "preact_vs_original.json"), "w") as f:
    json.dump(result, f, indent=1)
  print(f"step {result['step']}: test error {args.original} {result['original']['test_error']:.2%}, "
        f"{args.preact} {result['preact']['test_error']:.2%}; pre-act minus original "
        f"{result['test_gap']:+.2%} (binomial s.e. {result['test_gap_se']:.2%}), training error "
        f"{result['train_gap']:+.2%}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
