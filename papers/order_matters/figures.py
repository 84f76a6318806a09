"""The README's figure from the cpu-tier runs of claims.py (their metrics.jsonl only).

  python -m papers.order_matters.figures --runs runs/order_matters --out papers/order_matters

expects runs/order_matters/<run> workdirs named as in papers/order_matters/claims.py and
writes accuracy.png: left, test accuracy against the process steps P at N = 10 beside the
paper's Table 1 (one glimpse) and the Ptr-Net baseline; right, the learning curves of every
run found. Prints the figures it plots.
"""
from __future__ import annotations

import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

from core.metrics import read_metrics

# Table 1 of Vinyals, Bengio, Kudlur (2016), N = 10, with one glimpse.
PAPER_N10 = {0: 0.30, 1: 0.44, 5: 0.57, 10: 0.50}
PAPER_PTRNET_N10 = 0.28
P_RUNS = {0: "sort10_p0", 1: "sort10_p1", 5: "sort10", 10: "sort10_p10"}
CURVES = {"sort5_smoke": "N=5, P=5", "sort10": "N=10, P=5", "sort15": "N=15, P=10",
          "sort10_p0": "N=10, P=0", "sort10_p1": "N=10, P=1", "sort10_p10": "N=10, P=10",
          "sort10_ptrnet": "N=10, Ptr-Net", "sort5_random": "N=5, random output order"}


def eval_rows(runs, name):
  return read_metrics(os.path.join(runs, name), "eval")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--runs", default="runs/order_matters")
  parser.add_argument("--out", default="papers/order_matters")
  args = parser.parse_args(argv)

  fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
  ours = {p: eval_rows(args.runs, name)[-1]["accuracy"] for p, name in P_RUNS.items()
          if eval_rows(args.runs, name)}
  for p, acc in sorted(ours.items()):
    print(f"N=10 P={p}: ours {acc:.1%} (step {eval_rows(args.runs, P_RUNS[p])[-1]['step']}), "
          f"paper {PAPER_N10[p]:.0%}")
  left.plot(list(PAPER_N10), list(PAPER_N10.values()), "o--", color="gray",
            label="paper, Table 1 (1 glimpse, 10,000 steps)")
  left.axhline(PAPER_PTRNET_N10, color="gray", linestyle=":", label="paper, Ptr-Net")
  if ours:
    left.plot(sorted(ours), [ours[p] for p in sorted(ours)], "o-", color="tab:blue", label="ours (2,000 steps)")
  ptrnet = eval_rows(args.runs, "sort10_ptrnet")
  if ptrnet:
    print(f"N=10 Ptr-Net: ours {ptrnet[-1]['accuracy']:.1%}, paper {PAPER_PTRNET_N10:.0%}")
    left.axhline(ptrnet[-1]["accuracy"], color="tab:red", linestyle=":", label="ours, Ptr-Net")
  left.set(xlabel="process steps P", ylabel="test sets sorted exactly", ylim=(0, 1),
           title="N = 10: accuracy against process steps", xticks=list(PAPER_N10))
  left.legend(fontsize=8)

  for name, label in CURVES.items():
    rows = eval_rows(args.runs, name)
    if rows:
      right.plot([r["step"] for r in rows], [r["accuracy"] for r in rows], "o-", label=label)
  right.set(xlabel="training step", ylabel="test sets sorted exactly", ylim=(0, 1),
            title="learning curves (4,096 held-out sets)")
  right.legend(fontsize=8)
  fig.tight_layout()
  path = os.path.join(args.out, "accuracy.png")
  fig.savefig(path, dpi=110)
  print(f"wrote {path}")


if __name__ == "__main__":
  main()
