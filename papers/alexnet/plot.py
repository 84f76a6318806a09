"""The paper's Figure 1 (ReLU against tanh) and Figure 3 (first-layer filters) from our runs.

  python -m papers.alexnet.plot figure1 --runs runs/alexnet --out runs/alexnet/figure1
  python -m papers.alexnet.plot ablations --runs runs/alexnet --out runs/alexnet/ablations
  python -m papers.alexnet.plot filters --workdir runs/alexnet/fashion

`figure1` reads the eval rows of <runs>/fashion_relu_small and <runs>/fashion_tanh, draws their
training error (1,000 training images, every 10 steps) against the step into
papers/alexnet/figure1.png, and writes <out>/figure1.json with the step at which each curve first
reaches 25% training error (linear interpolation between evaluations) and their ratio
`tanh_over_relu` (the paper: about 6 on CIFAR-10). `ablations` writes <out>/ablations.json with
the final test errors of fashion, fashion_no_lrn and fashion_no_overlap and what LRN and
overlapping pooling gain: `lrn_gain` = error(no LRN) - error(with), `overlap_gain` likewise
(the paper: 1.4% and 0.4% top-1), with the binomial standard error of one such difference on
the 10,000 test images. `filters` draws the first convolution's
kernels of the newest checkpoint in the workdir into papers/alexnet/filters.png.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np

from core.metrics import eval_rows_or_exit

HERE = os.path.dirname(os.path.abspath(__file__))
THRESHOLD = 0.25  # Figure 1: "reaches a 25% training error rate"
RUNS = {"relu": "fashion_relu_small", "tanh": "fashion_tanh"}


def steps_to(rows: list[dict], threshold: float = THRESHOLD) -> float | None:
  """The first step at which train_error reaches `threshold`, interpolated linearly between the
  last evaluation above it and the first at or below it (from step 0 at error 0.9, chance)."""
  previous = (0, 0.9)
  for row in rows:
    step, error = row["step"], row["train_error"]
    if error <= threshold:
      (s0, e0) = previous
      return s0 + (step - s0) * (e0 - threshold) / (e0 - error) if e0 > error else float(step)
    previous = (step, error)
  return None


def _step(step: float | None) -> str:
  return "never" if step is None else f"{step:.0f}"


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def figure1(runs_dir: str, out: str, png: str) -> dict:
  curves = {}
  for unit, name in RUNS.items():
    path = os.path.join(runs_dir, name)
    rows = eval_rows_or_exit(path, f"python -m launch.train --config configs/alexnet.py:{name} --workdir {path}")
    curves[unit] = rows
  summary = {f"{unit}_steps_to_25": steps_to(rows) for unit, rows in curves.items()}
  relu, tanh = summary["relu_steps_to_25"], summary["tanh_steps_to_25"]
  # A tanh net that never got there within its steps: the ratio is at least (its steps / relu's).
  summary["tanh_reached_25"] = tanh is not None
  last_tanh = curves["tanh"][-1]["step"]
  summary["tanh_over_relu"] = (tanh if tanh is not None else last_tanh) / relu if relu else None
  summary["final_train_error"] = {unit: rows[-1]["train_error"] for unit, rows in curves.items()}
  # 25% is an easy point on Fashion-MNIST: the steps to lower errors too (None: never reached).
  summary["steps_to"] = {f"{t:.2f}": {unit: steps_to(rows, t) for unit, rows in curves.items()}
                         for t in (0.20, 0.15)}
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, "figure1.json"), "w", encoding="utf-8") as f:
    json.dump(summary, f, indent=1)
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6, 4))
  for unit, style in (("relu", "-"), ("tanh", "--")):
    rows = curves[unit]
    ax.plot([r["step"] for r in rows], [r["train_error"] for r in rows], style, color="k",
            label=f"{unit} (25% at step {_step(summary[f'{unit}_steps_to_25'])})")
  ax.axhline(THRESHOLD, color="gray", lw=0.5)
  ax.set_xlabel("training step (batch 64)")
  ax.set_ylabel("training error (1,000 Fashion-MNIST training images)")
  ax.set_ylim(0, 0.9)
  ax.set_title("small AlexNet on Fashion-MNIST: ReLU vs tanh (cf. Krizhevsky et al. Fig. 1)",
               fontsize=9)
  ax.legend()
  fig.tight_layout()
  fig.savefig(png, dpi=100)
  return summary


ABLATIONS = ("fashion", "fashion_no_lrn", "fashion_no_overlap")


def ablations(runs_dir: str, out: str) -> dict:
  final = {}
  for name in ABLATIONS:
    path = os.path.join(runs_dir, name)
    rows = eval_rows_or_exit(path, f"python -m launch.train --config configs/alexnet.py:{name} --workdir {path}")
    final[name] = {k: rows[-1][k] for k in ("step", "test_error", "train_error")}
  base = final["fashion"]["test_error"]
  # Two independent test errors near p on n images: the difference has sd sqrt(2 p (1 - p) / n).
  summary = {"final": final,
             "lrn_gain": final["fashion_no_lrn"]["test_error"] - base,
             "overlap_gain": final["fashion_no_overlap"]["test_error"] - base,
             "difference_sd_10k": float(np.sqrt(2 * base * (1 - base) / 10_000))}
  os.makedirs(out, exist_ok=True)
  with open(os.path.join(out, "ablations.json"), "w", encoding="utf-8") as f:
    json.dump(summary, f, indent=1)
  return summary


def filters(workdir: str, png: str) -> None:
  import jax  # pylint: disable=g-import-not-at-top
  from configs.alexnet import get_config  # pylint: disable=g-import-not-at-top
  from core.train import restore_latest  # pylint: disable=g-import-not-at-top
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise SystemExit(f"error: {path} not found; train the run first")
  with open(path, encoding="utf-8") as f:
    saved = json.load(f)
  config = get_config("fashion")
  config.model.update(saved["model"])
  config.data.update(saved["data"])
  _, state, step = restore_latest(config, workdir)
  kernel = np.asarray(jax.device_get(state.params["conv1"]["kernel"]))  # (k, k, channels, n)
  n = kernel.shape[-1]
  cols = 8
  rows = -(-n // cols)
  plt = _pyplot()
  fig, axes = plt.subplots(rows, cols, figsize=(cols, rows + 0.4))
  for i, ax in enumerate(np.ravel(axes)):
    ax.axis("off")
    if i < n:
      k = kernel[..., i]
      k = (k - k.min()) / (k.max() - k.min() + 1e-12)
      ax.imshow(k[..., 0] if k.shape[-1] == 1 else k, cmap="gray", interpolation="nearest")
  fig.suptitle(f"conv1 kernels ({kernel.shape[0]}x{kernel.shape[1]}), Fashion-MNIST, step {step} "
               f"(cf. Krizhevsky et al. Fig. 3)", fontsize=9)
  fig.savefig(png, dpi=100)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  sub = parser.add_subparsers(dest="command", required=True)
  f1 = sub.add_parser("figure1")
  f1.add_argument("--runs", default="runs/alexnet")
  f1.add_argument("--out", default="runs/alexnet/figure1")
  f1.add_argument("--png", default=os.path.join(HERE, "figure1.png"))
  ab = sub.add_parser("ablations")
  ab.add_argument("--runs", default="runs/alexnet")
  ab.add_argument("--out", default="runs/alexnet/ablations")
  f3 = sub.add_parser("filters")
  f3.add_argument("--workdir", default="runs/alexnet/fashion")
  f3.add_argument("--png", default=os.path.join(HERE, "filters.png"))
  args = parser.parse_args(argv)
  if args.command == "figure1":
    print(json.dumps(figure1(args.runs, args.out, args.png), indent=1))
  elif args.command == "ablations":
    print(json.dumps(ablations(args.runs, args.out), indent=1))
  else:
    filters(args.workdir, args.png)


if __name__ == "__main__":
  sys.exit(main())
