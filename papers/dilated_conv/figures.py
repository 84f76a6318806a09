"""The context modules' mIoU gains and a figure of test canvases with their predictions.

  python -m papers.dilated_conv.figures --runs runs/dilated_conv --out runs/dilated_conv/context_gain

Reads <runs>/{front_end,front_end_basic,front_end_large,front_end_continued}: each run's last
test mIoU, written to <out>/context_gain.json with
    gain_basic = mIoU(front end + basic) - mIoU(front end)
    gain_large = mIoU(front end + large) - mIoU(front end)
    gain_*_vs_continued: the same against the front end trained as many extra steps as the modules
and, from each run's newest checkpoint, the predictions on the first test canvases, drawn
beside the ground truth into papers/dilated_conv/predictions.png.
"""
from __future__ import annotations

import argparse
import json
import os

import jax
import numpy as np

from core.config import load_config
from core.metrics import read_metrics
from core.train import restore_latest

RUNS = ("front_end", "front_end_basic", "front_end_large")
CONTROL = "front_end_continued"  # the front end trained as many extra steps as the modules
TITLES = {"front_end": "front end", "front_end_basic": "+ basic context",
          "front_end_large": "+ large context"}
DEFAULT_PNG = os.path.join(os.path.dirname(os.path.abspath(__file__)), "predictions.png")


def summary(runs_dir: str) -> dict:
  rows = {}
  for name in (*RUNS, CONTROL):
    path = os.path.join(runs_dir, name)
    evals = [r for r in read_metrics(path, "eval") if "miou" in r] if os.path.isdir(path) else []
    if not evals:
      raise SystemExit(f"error: no eval rows with miou in {path}/metrics.jsonl; train it first "
                       f"(python -m launch.reproduce --items dilated_conv --tier cpu)")
    rows[name] = evals
  # Each run's last evaluation: front_end after its 800 steps, the others after their 400 more.
  miou = {name: evals[-1]["miou"] for name, evals in rows.items()}
  steps = {name: evals[-1]["step"] for name, evals in rows.items()}
  return {"steps": steps, "miou": miou,
          "gain_basic": miou["front_end_basic"] - miou["front_end"],
          "gain_large": miou["front_end_large"] - miou["front_end"],
          "gain_basic_vs_continued": miou["front_end_basic"] - miou[CONTROL],
          "gain_large_vs_continued": miou["front_end_large"] - miou[CONTROL]}


def predictions(runs_dir: str, count: int):
  """(test canvases, truth, {run: predicted labels}) for the first `count` test canvases."""
  out = {}
  for name in RUNS:
    trainer, state, _ = restore_latest(load_config(f"configs/dilated_conv.py:{name}"),
                                       os.path.join(runs_dir, name))
    task = trainer.task
    source = task.source("test")
    examples = [source[i] for i in range(count)]
    images = np.stack([e["images"] for e in examples])
    scores, _ = jax.jit(task.scores)(jax.device_get(state.variables()), images)
    out[name] = np.asarray(scores).argmax(-1)
  return images, np.stack([e["labels"] for e in examples]), out


def plot(images, truth, predicted, png: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  columns = ["canvas", "ground truth", *(TITLES[n] for n in RUNS)]
  fig, axes = plt.subplots(len(images), len(columns), figsize=(2 * len(columns), 2 * len(images)))
  for row in range(len(images)):
    panels = [images[row, :, :, 0], truth[row], *(predicted[n][row] for n in RUNS)]
    for col, panel in enumerate(panels):
      ax = axes[row, col]
      if col == 0:
        ax.imshow(panel, cmap="gray")
      else:
        ax.imshow(panel, cmap="tab20", vmin=0, vmax=19, interpolation="nearest")
      ax.set_xticks([])
      ax.set_yticks([])
      if row == 0:
        ax.set_title(columns[col], fontsize=9)
  fig.suptitle("Fashion-MNIST canvases: background 0, class k+1 (colours) per pixel", fontsize=9)
  fig.tight_layout()
  fig.savefig(png, dpi=80)
  plt.close(fig)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--runs", default="runs/dilated_conv")
  parser.add_argument("--out", default="runs/dilated_conv/context_gain")
  parser.add_argument("--png", default=DEFAULT_PNG)
  parser.add_argument("--examples", type=int, default=4)
  args = parser.parse_args(argv)
  result = summary(args.runs)
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "context_gain.json"), "w", encoding="utf-8") as f:
    json.dump(result, f, indent=1)
  print(json.dumps(result, indent=1))
  plot(*predictions(args.runs, args.examples), args.png)
  print(f"wrote {args.png}")


if __name__ == "__main__":
  main()
