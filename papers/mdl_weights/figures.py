"""Learning curves of the runs: python -m papers.mdl_weights.figures [--runs runs/mdl_weights]

Reads each run's metrics.jsonl (eval rows) and draws description length and relative test
error against the step into papers/mdl_weights/curves.png.
"""
from __future__ import annotations

import argparse
import os
import sys

from core.metrics import read_metrics

HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = {"mdl": "noisy, mixture prior", "mdl_gauss": "noisy, one Gaussian prior",
        "plain": "plain (ML)", "decay": "weight decay"}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m papers.mdl_weights.figures")
  parser.add_argument("--runs", default="runs/mdl_weights")
  parser.add_argument("--out", default=os.path.join(HERE, "curves.png"))
  args = parser.parse_args(argv)
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.6))
  baseline = None
  for name, label in RUNS.items():
    path = os.path.join(args.runs, name)
    if not os.path.exists(os.path.join(path, "metrics.jsonl")):
      continue
    rows = read_metrics(path, "eval")
    steps = [r["step"] for r in rows]
    left.plot(steps, [r["description_length_bits"] for r in rows], marker=".", label=label)
    right.plot(steps, [r["test_relative_error"] for r in rows], marker=".", label=label)
    baseline = rows[-1].get("baseline_bits", baseline)
  if baseline is not None:
    left.axhline(baseline, color="gray", lw=0.8, ls="--", label="no network")
  left.set(xlabel="step", ylabel="bits", title="description length of the 105 training targets",
           yscale="log")
  right.axhline(1.0, color="gray", lw=0.8, ls="--", label="predict the mean")
  right.set(xlabel="step", ylabel="test MSE / target variance", title="test error", yscale="log")
  left.legend(fontsize=8)
  right.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(args.out, dpi=120)
  print(f"wrote {args.out}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
