"""Test-accuracy curves of Sort-of-CLEVR runs from their metrics.jsonl.

python -m papers.relation_networks.plot --out papers/relation_networks/sort_of_clevr_paper_size.png \
    CNN+RN=runs/relation_networks/rn_paper CNN+MLP=runs/relation_networks/mlp_paper

LABEL=PATH: PATH is a run directory or a metrics.jsonl file.
"""
from __future__ import annotations

import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top


def main(argv=None):
  parser = argparse.ArgumentParser()
  parser.add_argument("--out", required=True)
  parser.add_argument("--title", default="Sort-of-CLEVR, 75 x 75")
  parser.add_argument("runs", nargs="+", help="LABEL=RUN_DIRECTORY or LABEL=metrics.jsonl")
  args = parser.parse_args(argv)
  fig, axes = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
  for spec in args.runs:
    label, path = spec.split("=", 1)
    if os.path.isdir(path):
      path = os.path.join(path, "metrics.jsonl")
    if not os.path.exists(path):
      raise SystemExit(f"error: {path} does not exist: train the run first (see the config's docstring)")
    rows = _eval_rows(path)
    for ax, metric in zip(axes, ("relational_accuracy", "non_relational_accuracy")):
      ax.plot([r["step"] for r in rows], [r[metric] for r in rows], marker="o", ms=3, label=label)
  for ax, name, prior in zip(axes, ("relational", "non-relational"), (0.4375, 0.5)):
    ax.axhline(0.94, color="k", ls="-.", label="paper CNN+RN (94%)")
    if name == "relational":
      ax.axhline(0.63, color="gray", ls="-.", label="paper CNN+MLP (63%)")
    ax.axhline(prior, color="gray", ls=":", label=f"answer from the question alone ({prior:.1%})")
    ax.set_title(f"{args.title}: {name} questions")
    ax.set_xlabel("training step (batch 64)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  axes[0].set_ylabel("test accuracy")
  axes[0].set_ylim(0.3, 1.0)
  fig.tight_layout()
  fig.savefig(args.out, dpi=120)
  print(f"wrote {args.out}")


def _eval_rows(path):
  with open(path, encoding="utf-8") as f:
    return [r for r in (json.loads(line) for line in f if line.strip()) if r.get("split") == "eval"]


if __name__ == "__main__":
  main()
