"""The learned weights of linear classifiers drawn as images, one per class (CS231n assignment 1,
svm.ipynb / softmax.ipynb: "visualize the learned weights for each class").

  python -m papers.cs231n.templates --workdirs runs/cs231n/softmax runs/cs231n/svm \
      --out papers/cs231n/templates.png

Each row is one run (a linear variant of configs/cs231n.py); each column the column of W for one
class, reshaped to the image and rescaled to the run's own range of weights: bright pixels raise
that class's score, dark ones lower it.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from core import image_data
from papers.cs231n.saliency import restore


def templates(variables, shape) -> np.ndarray:
  """(num_classes, H, W, C) weights of the linear classifier's score layer."""
  kernel = np.asarray(variables["params"]["scores"]["kernel"])  # (H * W * C, num_classes)
  return kernel.T.reshape(-1, *shape)


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdirs", nargs="+", required=True, help="linear-classifier runs")
  parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "templates.png"))
  args = parser.parse_args(argv)

  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  rows = []
  for workdir in args.workdirs:
    task, variables, step = restore(workdir)
    if task.config.model.kind != "linear":
      raise SystemExit(f"error: {workdir} trained a {task.config.model.kind}, not a linear classifier")
    rows.append((f"{task.config.model.loss}, step {step}", task.config.data.name,
                 templates(variables, task.shape)))
  n = rows[0][2].shape[0]
  fig, axes = plt.subplots(len(rows), n, figsize=(1.2 * n, 1.45 * len(rows)), squeeze=False)
  for r, (label, name, weights) in enumerate(rows):
    scaled = (weights - weights.min()) / (weights.max() - weights.min())
    names = image_data.FASHION_MNIST_CLASSES if name == "fashion_mnist" else range(n)
    for c in range(n):
      ax = axes[r, c]
      ax.imshow(scaled[c, ..., 0] if scaled.shape[-1] == 1 else scaled[c], cmap="gray",
                vmin=0, vmax=1)
      ax.set_xticks([])
      ax.set_yticks([])
      if r == 0:
        ax.set_title(str(names[c]), fontsize=7)
    axes[r, 0].set_ylabel(label, fontsize=7)
  fig.tight_layout()
  fig.savefig(args.out, dpi=110)
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
