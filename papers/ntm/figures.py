"""The README's figures from finished copy-task runs (metrics.jsonl and the last checkpoint).

  python -m papers.ntm.figures --runs runs/ntm --out papers/ntm

expects runs/ntm/copy-ntm_lstm, runs/ntm/copy-ntm_ff and runs/ntm/copy-lstm (launch.train
workdirs of configs/ntm.py) and writes learning_curves.png, generalisation.png,
copy_outputs.png, weightings_<net>.png, and prints the table rows the README quotes.
"""
from __future__ import annotations

import argparse
import os

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from core.checkpoint import Checkpointer
from core.config import load_config
from core.metrics import read_metrics
from core.train import Trainer
from papers.ntm.task import copy_batch, sequence_bits

NETS = {"copy-ntm_lstm": "NTM, LSTM controller", "copy-ntm_ff": "NTM, feed-forward controller",
        "copy-lstm": "LSTM (3 x 256)"}
COLOURS = {"copy-ntm_lstm": "tab:blue", "copy-ntm_ff": "tab:green", "copy-lstm": "tab:red"}


def restore(variant, workdir):
  config = load_config(f"configs/ntm.py:{variant}")
  trainer = Trainer(config, devices=jax.devices()[:1])
  checkpointer = Checkpointer(workdir)
  step = checkpointer.latest_step()
  state, _ = checkpointer.restore(step, trainer.abstract_state(), trainer.param_signature())
  checkpointer.close()
  return trainer.task, jax.device_get(state.params), step, config


def learning_curves(runs, out):
  fig, ax = plt.subplots(figsize=(6, 4))
  for variant, workdir in runs.items():
    batch = load_config(f"configs/ntm.py:{variant}").batch_size
    rows = read_metrics(workdir, "train")
    seqs = np.array([r["step"] * batch for r in rows]) / 1000
    ax.plot(seqs, [r["bits_per_sequence"] for r in rows], color=COLOURS[variant], lw=0.6, alpha=0.35)
    evals = [r for r in read_metrics(workdir, "eval") if "bits_per_sequence" in r]
    ax.plot(np.array([r["step"] * batch for r in evals]) / 1000, [r["bits_per_sequence"] for r in evals],
            "o-", color=COLOURS[variant], label=NETS[variant] + " (held out)")
  ax.set(xlabel="sequences seen (thousands)", ylabel="cost per sequence (bits)",
         title="Copy task, lengths 1-20", ylim=(0, None))
  ax.legend()
  fig.tight_layout()
  fig.savefig(os.path.join(out, "learning_curves.png"), dpi=110)


def generalisation(models, lengths, out):
  """Cost and wrong bits per sequence against length, on 64 held-out sequences per length."""
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
  table = {}
  for variant, (task, params, _, config) in models.items():
    costs, errors = [], []
    for length in lengths:
      batch = copy_batch(np.random.default_rng([config.seed, length]), 64, length, length)
      logits, _ = task._apply(params, batch["inputs"])  # pylint: disable=protected-access
      bits, wrong = sequence_bits(logits, batch["targets"], batch["mask"])
      costs.append(float(np.mean(bits)))
      errors.append(float(np.mean(wrong)))
    table[variant] = (costs, errors)
    for ax, values in zip(axes, (costs, errors)):
      ax.plot(lengths, values, "o-", color=COLOURS[variant], label=NETS[variant])
  axes[0].set(xlabel="sequence length", ylabel="cost per sequence (bits)", yscale="symlog")
  axes[1].set(xlabel="sequence length", ylabel="wrong bits per sequence (of 8 x length)",
              yscale="symlog")
  for ax in axes:
    ax.axvline(20, color="grey", ls=":", lw=1)
  axes[0].legend(fontsize=8)
  fig.suptitle("Trained on lengths 1-20 (dotted line); tested on longer")
  fig.tight_layout()
  fig.savefig(os.path.join(out, "generalisation.png"), dpi=110)
  return table


def copy_outputs(models, lengths, out):
  """Targets and outputs for one sequence of each length, as in the paper's Figures 4-5."""
  fig, axes = plt.subplots(len(models) + 1, len(lengths), figsize=(2.2 * len(lengths), 1.3 * (len(models) + 1)),
                           gridspec_kw=dict(width_ratios=lengths))
  for col, length in enumerate(lengths):
    batch = copy_batch(np.random.default_rng([99, length]), 1, length, length)
    scored = slice(length + 1, 2 * length + 1)
    axes[0, col].imshow(batch["targets"][0, scored].T, cmap="gray_r", aspect="auto", vmin=0, vmax=1)
    axes[0, col].set_title(f"length {length}", fontsize=9)
    for row, (variant, (task, params, _, _)) in enumerate(models.items(), start=1):
      logits, _ = task._apply(params, batch["inputs"])  # pylint: disable=protected-access
      axes[row, col].imshow(jax.nn.sigmoid(logits[0, scored]).T, cmap="gray_r", aspect="auto", vmin=0, vmax=1)
  for row, name in enumerate(["targets"] + [NETS[v] for v in models]):
    axes[row, 0].set_ylabel(name.replace(", ", ",\n").replace(" (", "\n("), fontsize=7)
  for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
  fig.tight_layout()
  fig.savefig(os.path.join(out, "copy_outputs.png"), dpi=100)


def weightings(variant, model, out, length=20):
  """Inputs, outputs, and the write/read weightings over time, as in the paper's Figure 6."""
  task, params, _, _ = model
  batch = copy_batch(np.random.default_rng([7, length]), 1, length, length)
  logits, trace = task._apply(params, batch["inputs"])  # pylint: disable=protected-access
  steps = 2 * length + 1
  shown = slice(0, max(32, length + 8))  # the locations in use; the rest stay unvisited
  panels = [("inputs", batch["inputs"][0].T), ("outputs", np.asarray(jax.nn.sigmoid(logits[0])).T),
            ("write weightings", np.asarray(trace["write_weights"][0, :steps, 0, shown]).T),
            ("read weightings", np.asarray(trace["read_weights"][0, :steps, 0, shown]).T)]
  fig, axes = plt.subplots(2, 2, figsize=(8, 5.5), gridspec_kw=dict(height_ratios=[1, 3]))
  for ax, (title, image) in zip(axes.T.flat, panels):
    ax.imshow(image, cmap="gray_r", aspect="auto", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("time")
  axes[1, 0].set_ylabel("memory location")
  fig.suptitle(f"{NETS[variant]}: copy of a length-{length} sequence")
  fig.tight_layout()
  fig.savefig(os.path.join(out, f"weightings_{variant.split('-')[1]}.png"), dpi=100)


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--runs", default="runs/ntm")
  parser.add_argument("--out", default="papers/ntm")
  args = parser.parse_args()
  runs = {v: os.path.join(args.runs, v) for v in NETS if os.path.isdir(os.path.join(args.runs, v))}
  learning_curves(runs, args.out)
  models = {v: restore(v, w) for v, w in runs.items()}
  lengths = [10, 20, 30, 50, 120]
  table = generalisation(models, lengths, args.out)
  copy_outputs(models, lengths, args.out)
  for variant in models:
    if "ntm" in variant:
      weightings(variant, models[variant], args.out)
  print("| network | steps | sequences | " + " | ".join(f"bits L={n}" for n in lengths) + " | "
        + " | ".join(f"wrong bits L={n}" for n in lengths) + " |")
  for variant, (costs, errors) in table.items():
    step, batch = models[variant][2], models[variant][3].batch_size
    print(f"| {NETS[variant]} | {step:,} | {step * batch:,} | " + " | ".join(f"{c:.2f}" for c in costs)
          + " | " + " | ".join(f"{e:.1f}" for e in errors) + " |")


if __name__ == "__main__":
  main()
