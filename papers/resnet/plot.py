"""Training-error curves of plain and residual nets (He 2015 Fig. 6, on Fashion-MNIST) and the gaps.

  python -m papers.resnet.plot --runs runs/resnet --out runs/resnet/degradation
  python -m papers.resnet.plot --runs runs/resnet --suffix _long --kinds resnet \
      --out runs/resnet/degradation_long       # the 3x longer runs <net>_long

Reads the eval rows of <runs>/{plain20,plain56,resnet20,resnet56}<suffix>/metrics.jsonl (the
pairs named by --kinds), draws train_error (thin) and test_error (bold, dashed) against the
step, one panel per pair (plain nets left, ResNets right), into
papers/resnet/degradation<suffix>.png, and writes <out>/degradation.json with the errors at the
last step all the runs have evaluated and, for the pairs drawn,
    plain_gap    = train_error(plain-56) - train_error(plain-20)   (> 0: the degradation problem)
    residual_gap = train_error(ResNet-20) - train_error(ResNet-56) (> 0: depth helps with shortcuts)
"""
from __future__ import annotations

import argparse
import json
import os
import sys

from core.metrics import eval_rows_or_exit

KINDS = ("plain", "resnet")
DEPTHS = (20, 56)
GAPS = {"plain": "plain_gap", "resnet": "residual_gap"}
HERE = os.path.dirname(os.path.abspath(__file__))


def curves(runs_dir: str, kinds=KINDS, suffix: str = "") -> dict[str, list[dict]]:
  """Eval rows by network name ("resnet56"), read from <runs_dir>/<name><suffix>."""
  out = {}
  for name in (f"{kind}{depth}" for kind in kinds for depth in DEPTHS):
    path = os.path.join(runs_dir, name + suffix)
    out[name] = eval_rows_or_exit(path, "python -m launch.reproduce --items resnet --tier cpu")
  return out


def summary(runs: dict[str, list[dict]]) -> dict:
  """Errors at the last step that every run has evaluated (the same budget for all), and the
  gap of each pair present: deeper minus shallower for plain nets, the reverse for ResNets."""
  step = min(rows[-1]["step"] for rows in runs.values())
  final = {name: {k: next(r for r in rows if r["step"] == step)[k]
                  for k in ("step", "train_error", "test_error")}
           for name, rows in runs.items()}
  result = {"step": step, "final": final}
  if "plain56" in final:
    result["plain_gap"] = final["plain56"]["train_error"] - final["plain20"]["train_error"]
  if "resnet56" in final:
    result["residual_gap"] = final["resnet20"]["train_error"] - final["resnet56"]["train_error"]
  return result


def plot(runs: dict[str, list[dict]], png: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  kinds = [kind for kind in KINDS if f"{kind}20" in runs]
  fig, axes = plt.subplots(1, len(kinds), figsize=(5 * len(kinds), 4), sharey=True, squeeze=False)
  titles = {"plain": "plain nets", "resnet": "ResNets"}
  for ax, kind in zip(axes[0], kinds):
    for name, color in ((f"{kind}20", "tab:orange"), (f"{kind}56", "tab:red")):
      steps = [r["step"] for r in runs[name]]
      ax.plot(steps, [100 * r["train_error"] for r in runs[name]], color=color, lw=1,
              label=f"{name[-2:]}-layer train")
      ax.plot(steps, [100 * r["test_error"] for r in runs[name]], color=color, lw=2.5, ls="--",
              label=f"{name[-2:]}-layer test")
    ax.set_title(f"{titles[kind]}, Fashion-MNIST")
    ax.set_xlabel("iteration (batch 32)")
    ax.grid(alpha=0.3)
    ax.legend()
  axes[0][0].set_ylabel("error (%)")
  fig.suptitle("cf. He et al. 2015, Fig. 6 (CIFAR-10)")
  fig.tight_layout()
  fig.savefig(png, dpi=110)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--runs", default="runs/resnet")
  parser.add_argument("--out", default="runs/resnet/degradation")
  parser.add_argument("--suffix", default="", help="read <net><suffix> runs, e.g. _long")
  parser.add_argument("--kinds", default=",".join(KINDS), help="pairs to read: plain,resnet")
  parser.add_argument("--png", default="", help="default: papers/resnet/degradation<suffix>.png")
  args = parser.parse_args(argv)
  kinds = [k for k in args.kinds.split(",") if k]
  if not kinds or set(kinds) - set(KINDS):
    parser.error(f"--kinds takes some of {','.join(KINDS)}, got {args.kinds!r}")
  png = args.png or os.path.join(HERE, f"degradation{args.suffix}.png")
  runs = curves(args.runs, kinds, args.suffix)
  result = summary(runs)
  plot(runs, png)
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "degradation.json"), "w") as f:
    json.dump(result, f, indent=1)
  print("| net | step | training error | test error |\n|---|---|---|---|")
  for name, r in result["final"].items():
    print(f"| {name} | {r['step']} | {r['train_error']:.2%} | {r['test_error']:.2%} |")
  gaps = ", ".join(f"{g} {result[g]:+.2%}" for g in GAPS.values() if g in result)
  print(f"{gaps}; wrote {png}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
