"""Predicted convex hulls and TSP tours beside the true ones, from trained runs.

  python -m papers.pointer_networks.figures --runs runs/pointer_networks

reads the newest checkpoints of the runs `hull50` and `tsp10` (launch.reproduce's names;
any run that is missing is left out), decodes the first held-out examples greedily (the
TSP also with the beam restricted to valid tours) and writes predictions.png here.
"""
from __future__ import annotations

import argparse
import os

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

from core.checkpoint import Checkpointer  # pylint: disable=g-import-not-at-top
from core.config import load_config  # pylint: disable=g-import-not-at-top
from core.train import restore_latest  # pylint: disable=g-import-not-at-top
from papers.pointer_networks import geometry  # pylint: disable=g-import-not-at-top
from papers.pointer_networks.task import sequence_of  # pylint: disable=g-import-not-at-top

RUNS = (("hull50", "convex hull, n=50"), ("tsp10", "TSP, n=10"), ("hull5", "convex hull, n=5"), ("tsp5", "TSP, n=5"))
EXAMPLES = 4


def restore(variant, workdir):
  config = load_config(f"configs/pointer_networks.py:{variant}")
  trainer, state, step = restore_latest(config, workdir)
  return trainer.task, {"params": jax.device_get(state.params)}, step


def has_checkpoint(workdir):
  if not os.path.isdir(os.path.join(workdir, "checkpoints")):
    return False
  checkpointer = Checkpointer(workdir)
  step = checkpointer.latest_step()
  checkpointer.close()
  return step is not None


def closed(points, order):
  corners = points[list(order) + list(order[:1])]
  return corners[:, 0], corners[:, 1]


def draw(ax, points, truth, prediction, title):
  ax.scatter(points[:, 0], points[:, 1], s=8, c="k", zorder=3)
  ax.plot(*closed(points, truth), c="tab:green", lw=4, alpha=0.4, label="truth")
  if len(prediction) >= 2:
    ax.plot(*closed(points, prediction), c="tab:red", lw=1.2, label="Ptr-Net")
  ax.set_title(title, fontsize=8)
  ax.set_xticks([])
  ax.set_yticks([])
  ax.set_aspect("equal")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--runs", default="runs/pointer_networks")
  parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "predictions.png"))
  args = parser.parse_args(argv)
  found = [(v, t) for v, t in RUNS if has_checkpoint(os.path.join(args.runs, v))]
  if not found:
    raise SystemExit(f"no run with checkpoints under {args.runs}: train {[v for v, _ in RUNS]} first")
  fig, axes = plt.subplots(len(found), EXAMPLES, figsize=(2.2 * EXAMPLES, 2.4 * len(found)), squeeze=False)
  for row, (variant, title) in enumerate(found):
    task, variables, step = restore(variant, os.path.join(args.runs, variant))
    batch = next(iter(task.eval_batches()))
    greedy = task.decode(variables, batch)
    beam = task.decode(variables, batch, task.config.data.beam_size, tour=True) if variant.startswith("tsp") else None
    for col in range(EXAMPLES):
      points = batch["points"][col][batch["point_mask"][col]]
      truth = sequence_of(batch["targets"][col])
      prediction = sequence_of((beam if beam is not None else greedy)[col])
      if variant.startswith("tsp"):
        outcome = (f"beam {geometry.tour_length(points, prediction):.3f}, "
                   f"optimal {geometry.tour_length(points, truth):.3f}")
      else:
        outcome = "exact" if prediction == truth else "not exact"
      draw(axes[row, col], points, truth, prediction, f"{title}, step {step}\n{outcome}")
  axes[0, 0].legend(fontsize=7, loc="lower left")
  fig.tight_layout()
  fig.savefig(args.out, dpi=110)
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
