"""Training-error curves of plain and residual nets (He 2015 Fig. 6, on Fashion-MNIST) and the gaps.

  python -m papers.resnet.plot --runs runs/resnet --out runs/resnet/degradation

Reads the eval rows of <runs>/{plain20,plain56,resnet20,resnet56}/metrics.jsonl, draws
train_error (thin) and test_error (bold, dashed) against the step, plain nets left and ResNets
right, into papers/resnet/degradation.png, and writes <out>/degradation.json with the errors at
the last step all four runs have evaluated and
    plain_gap    = train_error(plain-56) - train_error(plain-20)   (> 0: the degradation problem)
    residual_gap = train_error(ResNet-20) - train_error(ResNet-56) (> 0: depth helps with shortcuts)
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from core.metrics import eval_rows_or_exit

RUNS = ("plain20", "plain56", "resnet20", "resnet56")
DEFAULT_PNG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "degradation.png")


def curves(runs_dir: str) -> dict[str, list[dict]]:
  out = {}
  for name in RUNS:
    path = os.path.join(runs_dir, name)
    out[name] = eval_rows_or_exit(path, "python -m launch.reproduce --items resnet --tier cpu")
  return out


def summary(runs: dict[str, list[dict]]) -> dict:
  """Errors at the last step that every run has evaluated (the same budget for all four)."""
  step = min(rows[-1]["step"] for rows in runs.values())
  final = {name: {k: next(r for r in rows if r["step"] == step)[k]
                  for k in ("step", "train_error", "test_error")}
           for name, rows in runs.items()}
  return {
      "step": step,
      "final": final,
      "plain_gap": final["plain56"]["train_error"] - final["plain20"]["train_error"],
      "residual_gap": final["resnet20"]["train_error"] - final["resnet56"]["train_error"],
  }


def plot(runs: dict[str, list[dict]], png: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
  for ax, kind, title in zip(axes, ("plain", "resnet"), ("plain nets", "ResNets")):
    for name, color in ((f"{kind}20", "tab:orange"), (f"{kind}56", "tab:red")):
      steps = [r["step"] for r in runs[name]]
      ax.plot(steps, [100 * r["train_error"] for r in runs[name]], color=color, lw=1,
              label=f"{name[-2:]}-layer train")
      ax.plot(steps, [100 * r["test_error"] for r in runs[name]], color=color, lw=2.5, ls="--",
              label=f"{name[-2:]}-layer test")
    ax.set_title(f"{title}, Fashion-MNIST")
    ax.set_xlabel("iteration (batch 32)")
    ax.grid(alpha=0.3)
    ax.legend()
  axes[0].set_ylabel("error (%)")
  fig.suptitle("cf. He et al. 2015, Fig. 6 (CIFAR-10)")
  fig.tight_layout()
  fig.savefig(png, dpi=110)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--runs", default="runs/resnet")
  parser.add_argument("--out", default="runs/resnet/degradation")
  parser.add_argument("--png", default=DEFAULT_PNG)
  args = parser.parse_args(argv)
  runs = curves(args.runs)
  result = summary(runs)
  plot(runs, args.png)
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "degradation.json"), "w") as f:
    json.dump(result, f, indent=1)
  print("| net | step | training error | test error |\n|---|---|---|---|")
  for name, r in result["final"].items():
    print(f"| {name} | {r['step']} | {r['train_error']:.2%} | {r['test_error']:.2%} |")
  print(f"plain_gap {result['plain_gap']:+.2%}, residual_gap {result['residual_gap']:+.2%}; wrote {args.png}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
