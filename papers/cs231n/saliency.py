"""Saliency maps of a trained convnet (Simonyan, Vedaldi & Zisserman 2014, section 3; CS231n
assignment 3, NetworkVisualization): the absolute gradient of the correct class's score (before
the softmax) with respect to the input pixels, maximised over the colour channels.

  python -m papers.cs231n.saliency --workdir runs/cs231n/convnet --out papers/cs231n/saliency.png

Reads the run's newest checkpoint and draws the first test image of each class (top row) above
its saliency map (bottom row), in evaluation mode (batch-norm running averages, no dropout).
"""
from __future__ import annotations

import argparse
import json
import os

import jax
import jax.numpy as jnp
import numpy as np

from configs.cs231n import get_config
from core import image_data
from core.train import restore_latest


def run_config(workdir: str):
  """The config a workdir was trained with: configs/cs231n.py's defaults, updated with the model,
  data and optimizer sections and the step counts of the run's config.json (its mesh and
  sharding rules are not needed to read a checkpoint on one device)."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise SystemExit(f"error: {path} not found; train the run first (python -m launch.train "
                     f"--config configs/cs231n.py:<variant> --workdir {workdir})")
  with open(path, encoding="utf-8") as f:
    saved = json.load(f)
  config = get_config()
  for section in ("model", "data", "optimizer"):
    config[section].update(saved[section])
  for key in ("seed", "batch_size", "total_steps"):
    config[key] = saved[key]
  return config


def restore(workdir: str):
  """(task, plain variables of the newest checkpoint, its step)."""
  trainer, state, step = restore_latest(run_config(workdir), workdir)
  return trainer.task, jax.device_get(state.variables()), step


def saliency(task, variables, images: np.ndarray, labels: np.ndarray) -> np.ndarray:
  """|d score_y / d pixel|, max over channels: (N, H, W), for uint8 images (N, H, W, C)."""
  def correct_scores(pixels):
    scores, _ = task._logits(variables, pixels, train=False)  # pylint: disable=protected-access
    return jnp.take_along_axis(scores, jnp.asarray(labels)[:, None], axis=1).sum()
  # Each score depends on its own image only (evaluation mode), so the gradient of the sum is
  # every image's own gradient.
  grads = jax.grad(correct_scores)(jnp.asarray(images, jnp.float32))
  return np.asarray(jnp.abs(grads).max(-1))


def first_of_each_class(data: dict, num_classes: int):
  rows = [int(np.argmax(data["labels"] == c)) for c in range(num_classes)]
  return data["images"][rows], data["labels"][rows]


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  parser.add_argument("--workdir", required=True, help="a convnet (or any configs/cs231n.py) run")
  parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "saliency.png"))
  args = parser.parse_args(argv)
  task, variables, step = restore(args.workdir)
  name = task.config.data.name
  images, labels = first_of_each_class(image_data.load_images(name, "test"),
                                       image_data.NUM_CLASSES[name])
  maps = saliency(task, variables, images, labels)
  scores, _ = task._logits(variables, images, train=False)  # pylint: disable=protected-access
  predicted = np.asarray(scores).argmax(-1)
  class_names = image_data.FASHION_MNIST_CLASSES if name == "fashion_mnist" else None

  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  n = len(labels)
  fig, axes = plt.subplots(2, n, figsize=(1.3 * n, 3.0))
  for i in range(n):
    image = images[i, ..., 0] if images.shape[-1] == 1 else images[i]
    axes[0, i].imshow(image, cmap="gray")
    title = class_names[labels[i]] if class_names else str(labels[i])
    axes[0, i].set_title(title + ("" if predicted[i] == labels[i] else " (wrong)"), fontsize=7)
    axes[1, i].imshow(maps[i], cmap="hot")
    for ax in axes[:, i]:
      ax.axis("off")
  fig.suptitle(f"Saliency |d score / d pixel| of the correct class ({task.config.model.kind}, "
               f"step {step})", fontsize=9)
  fig.tight_layout()
  fig.savefig(args.out, dpi=110)
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
