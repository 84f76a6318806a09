"""Predicted vs true HOMO, LUMO, gap and U0 on the QM9 test split, from a run's newest checkpoint.

  python -m papers.mpnn.plot --workdir runs/mpnn/cpu --variant cpu --out papers/mpnn/predictions.png
"""
from __future__ import annotations

import argparse
import json
import os

import numpy as np

from configs.mpnn import get_config
from papers.mpnn import data as qm9


def load_run(workdir: str, variant: str):
  """The run's task and variables at its newest checkpoint (config: the variant + its config.json)."""
  from core.train import restore_latest  # pylint: disable=g-import-not-at-top
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    raise SystemExit(f"error: {path} not found; train the run first")
  with open(path, encoding="utf-8") as f:
    saved = json.load(f)
  config = get_config(variant)
  config.model.update(saved["model"])
  config.data.update({k: tuple(v) if isinstance(v, list) else v for k, v in saved["data"].items()})
  trainer, state, step = restore_latest(config, workdir)
  return trainer.task, state.variables(), step


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--workdir", default="runs/mpnn/cpu")
  parser.add_argument("--variant", default="cpu")
  parser.add_argument("--out", default="papers/mpnn/predictions.png")
  args = parser.parse_args(argv)
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  task, variables, step = load_run(args.workdir, args.variant)
  predicted, true = task.predictions(variables)
  fig, axes = plt.subplots(1, len(task.targets), figsize=(4 * len(task.targets), 4.2))
  for k, (name, ax) in enumerate(zip(task.targets, np.atleast_1d(axes))):
    mae = np.abs(predicted[:, k] - true[:, k]).mean()
    ratio = mae / qm9.CHEMICAL_ACCURACY[name]
    lo, hi = np.percentile(true[:, k], [0.1, 99.9])
    ax.scatter(true[:, k], predicted[:, k], s=1, alpha=0.3, rasterized=True)
    ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    unit = qm9.UNITS.get(name, "eV")
    label = "U0 (atomization)" if name == "u0" else name.upper()
    ax.set_xlabel(f"true {label} ({unit})")
    ax.set_ylabel(f"predicted ({unit})")
    ax.set_title(f"{label}: MAE {mae:.3f} {unit}, ratio {ratio:.1f}")
  fig.suptitle(f"QM9 test split ({len(true):,} molecules), {args.workdir} step {step}")
  fig.tight_layout()
  fig.savefig(args.out, dpi=110)
  print(f"wrote {args.out}")


if __name__ == "__main__":
  main()
