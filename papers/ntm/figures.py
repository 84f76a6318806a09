"""The README's figures from finished runs (metrics.jsonl and, for copy, the last checkpoint).

  python -m papers.ntm.figures --runs runs/ntm --out papers/ntm [--tasks copy,others]

copy: from runs/ntm/copy-ntm_lstm, copy-ntm_ff and copy-lstm (launch.train workdirs of
configs/ntm.py), writes learning_curves.png, generalisation.png, copy_outputs.png,
weightings_<net>.png. others: from the repeat copy, associative recall and priority sort runs
present, writes learning_curves_tasks.png and generalisation_tasks.png. Both print the table
rows the README quotes.
"""
from __future__ import annotations

import argparse
import os

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np

from core.config import load_config
from core.metrics import read_metrics
from core.train import restore_latest
from papers.ntm.task import copy_batch

NETS = {"copy-ntm_lstm": "NTM, LSTM controller", "copy-ntm_ff": "NTM, feed-forward controller",
        "copy-lstm": "LSTM (3 x 256)"}
COLOURS = {"copy-ntm_lstm": "tab:blue", "copy-ntm_ff": "tab:green", "copy-lstm": "tab:red"}


def restore(variant, workdir):
  config = load_config(f"configs/ntm.py:{variant}")
  trainer, state, step = restore_latest(config, workdir)
  return trainer.task, jax.device_get(state.variables()), step, config


def smooth(values, width=10):
  kernel = np.ones(width) / width
  return np.convolve(np.pad(values, (width - 1, 0), mode="edge"), kernel, mode="valid")


def learning_curves(runs, last_steps, out):
  """Train cost (moving average of the logged batches) and held-out cost against sequences seen;
  rows past the checkpoint the figures use (a run stopped between checkpoints) are left out."""
  fig, ax = plt.subplots(figsize=(6.5, 4))
  for variant, workdir in runs.items():
    batch = load_config(f"configs/ntm.py:{variant}").batch_size
    rows = [r for r in read_metrics(workdir, "train") if r["step"] <= last_steps[variant]]
    seqs = np.array([r["step"] * batch for r in rows]) / 1000
    ax.plot(seqs, smooth(np.array([r["bits_per_sequence"] for r in rows])), color=COLOURS[variant],
            lw=0.8, alpha=0.5)
    evals = [r for r in read_metrics(workdir, "eval")
             if "bits_per_sequence" in r and r["step"] <= last_steps[variant]]
    ax.plot(np.array([r["step"] * batch for r in evals]) / 1000, [r["bits_per_sequence"] for r in evals],
            "o-", color=COLOURS[variant], label=NETS[variant] + " (held out)")
  ax.set(xlabel="sequences seen (thousands)", ylabel="cost per sequence (bits)",
         title="Copy task, lengths 1-20", ylim=(0, None))
  ax.legend()
  fig.tight_layout()
  fig.savefig(os.path.join(out, "learning_curves.png"), dpi=110)


def last_eval(workdir, step):
  return [r for r in read_metrics(workdir, "eval") if r["step"] <= step][-1]


def generalisation(runs, models, lengths, out):
  """Cost and wrong bits per sequence against length: the task's own evaluation (64 held-out
  sequences per length, NTMTask.evaluate) at the checkpoint the figures use."""
  fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
  table = {}
  for variant, workdir in runs.items():
    row = last_eval(workdir, models[variant][2])
    costs = [row[f"bits_per_sequence_len{n}"] for n in lengths]
    errors = [row[f"bit_errors_per_sequence_len{n}"] for n in lengths]
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


def run_examples(models, lengths):
  """One sequence per length through every model, in one batch padded to the longest (the
  networks are causal, so padding after a sequence does not change its outputs)."""
  steps = 2 * max(lengths) + 1
  rows = [copy_batch(np.random.default_rng([99, n]), 1, n, n, num_steps=steps) for n in lengths]
  batch = {k: np.concatenate([r[k] for r in rows]) for k in rows[0]}
  outputs = {}
  for variant, (task, variables, _, _) in models.items():
    logits, trace = task.forward(variables, batch["inputs"])
    outputs[variant] = (np.asarray(jax.nn.sigmoid(logits)), jax.device_get(trace))
  return batch, outputs


def copy_outputs(batch, outputs, lengths, out):
  """Targets and outputs for one sequence of each length, as in the paper's Figures 4-5."""
  fig, axes = plt.subplots(len(outputs) + 1, len(lengths),
                           figsize=(2.2 * len(lengths), 1.3 * (len(outputs) + 1)),
                           gridspec_kw=dict(width_ratios=lengths))
  for col, length in enumerate(lengths):
    scored = slice(length + 1, 2 * length + 1)
    axes[0, col].imshow(batch["targets"][col, scored].T, cmap="gray_r", aspect="auto", vmin=0, vmax=1)
    axes[0, col].set_title(f"length {length}", fontsize=9)
    for row, (probs, _) in enumerate(outputs.values(), start=1):
      axes[row, col].imshow(probs[col, scored].T, cmap="gray_r", aspect="auto", vmin=0, vmax=1)
  for row, name in enumerate(["targets"] + [NETS[v] for v in outputs]):
    axes[row, 0].set_ylabel(name.replace(", ", ",\n").replace(" (", "\n("), fontsize=7)
  for ax in axes.flat:
    ax.set_xticks([])
    ax.set_yticks([])
  fig.tight_layout()
  fig.savefig(os.path.join(out, "copy_outputs.png"), dpi=100)


def weightings(variant, batch, outputs, lengths, out, length=20):
  """Inputs, outputs, and the write/read weightings over time, as in the paper's Figure 6."""
  probs, trace = outputs[variant]
  row, steps = lengths.index(length), 2 * length + 1
  shown = slice(0, length + 12)  # the locations in use; the rest stay unvisited
  scored = batch["mask"][row, :steps, None]
  panels = [("inputs", batch["inputs"][row, :steps].T), ("outputs", (probs[row, :steps] * scored).T),
            ("write weightings", trace["write_weights"][row, :steps, 0, shown].T),
            ("read weightings", trace["read_weights"][row, :steps, 0, shown].T)]
  fig, axes = plt.subplots(2, 2, figsize=(8, 5.5), gridspec_kw=dict(height_ratios=[1, 3]))
  for ax, (title, image) in zip(axes.flat, panels):
    ax.imshow(image, cmap="gray_r", aspect="auto", vmin=0, vmax=1, interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("time")
  axes[1, 0].set_ylabel("memory location")
  fig.suptitle(f"{NETS[variant]}: copy of a length-{length} sequence")
  fig.tight_layout()
  fig.savefig(os.path.join(out, f"weightings_{variant.split('-')[1]}.png"), dpi=100)


TASKS = {"repeat_copy": "Repeat copy (lengths 1-10, 1-10 repeats)",
         "associative_recall": "Associative recall (2-6 items)",
         "priority_sort": "Priority sort (20 inputs, 16 outputs)"}
NET_NAMES = {"ntm_lstm": "NTM, LSTM controller", "ntm_ff": "NTM, feed-forward controller",
             "lstm": "LSTM (3 layers)"}
NET_COLOURS = {"ntm_lstm": "tab:blue", "ntm_ff": "tab:green", "lstm": "tab:red"}


def task_runs(runs_dir):
  """{task: {net: workdir}} for every non-copy run with an evaluation."""
  found = {}
  for task in TASKS:
    for net in NET_NAMES:
      workdir = os.path.join(runs_dir, f"{task}-{net}")
      if os.path.isdir(workdir) and read_metrics(workdir, "eval"):
        found.setdefault(task, {})[net] = workdir
  return found


def task_learning_curves(found, out):
  """One panel per task: train cost (moving average) and held-out cost against sequences seen."""
  fig, axes = plt.subplots(1, len(found), figsize=(4.6 * len(found), 3.8), squeeze=False)
  for ax, (task, nets) in zip(axes[0], found.items()):
    for net, workdir in nets.items():
      batch = load_config(f"configs/ntm.py:{task}-{net}").batch_size
      rows = read_metrics(workdir, "train")
      ax.plot(np.array([r["step"] * batch for r in rows]) / 1000,
              smooth(np.array([r["bits_per_sequence"] for r in rows])), color=NET_COLOURS[net],
              lw=0.8, alpha=0.5)
      evals = [r for r in read_metrics(workdir, "eval") if "bits_per_sequence" in r]
      ax.plot(np.array([r["step"] * batch for r in evals]) / 1000,
              [r["bits_per_sequence"] for r in evals], "o-", color=NET_COLOURS[net],
              label=NET_NAMES[net] + " (held out)")
    ax.set(xlabel="sequences seen (thousands)", ylabel="cost per sequence (bits)", title=TASKS[task])
    ax.set_ylim(0, 1.08 * ax.get_ylim()[1])
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(os.path.join(out, "learning_curves_tasks.png"), dpi=110)


def task_generalisation(found, out):
  """Repeat copy at (length, repeats) settings (Figure 8) and associative recall against the
  number of items (Figure 11), from each run's last evaluation; returns the table rows."""
  panels = [t for t in ("repeat_copy", "associative_recall") if t in found]
  if not panels:
    return []
  fig, axes = plt.subplots(1, len(panels), figsize=(5 * len(panels), 3.6), squeeze=False)
  lines = []
  for ax, task in zip(axes[0], panels):
    for net, workdir in found[task].items():
      config = load_config(f"configs/ntm.py:{task}-{net}")
      row = read_metrics(workdir, "eval")[-1]
      if task == "repeat_copy":
        keys = [f"len{n}_rep{r}" for n, r in config.data.generalisation_repeats]
        xs, labels = np.arange(len(keys)), [f"length {n}\n{r} repeats" for n, r in config.data.generalisation_repeats]
      else:
        keys = [f"items{n}" for n in config.data.generalisation_items]
        xs = labels = list(config.data.generalisation_items)
      costs = [row[f"bits_per_sequence_{k}"] for k in keys]
      errors = [row[f"bit_errors_per_sequence_{k}"] for k in keys]
      ax.plot(xs, costs, "o-", color=NET_COLOURS[net], label=f"{NET_NAMES[net]}, {row['step']:,} updates")
      lines.append(f"| {TASKS[task]} | {NET_NAMES[net]} | {row['step']:,} | "
                   + " | ".join(f"{k}: {c:.2f} / {e:.2f}" for k, c, e in zip(keys, costs, errors)) + " |")
    if task == "repeat_copy":
      ax.set_xticks(xs, labels, fontsize=8)
      ax.set(title="Repeat copy: trained on length 1-10, 1-10 repeats", yscale="symlog")
      ax.set_ylim(bottom=0)
    else:
      ax.axvline(6, color="grey", ls=":", lw=1)
      ax.set(xlabel="number of items", title="Associative recall: trained on 2-6 items", ylim=(0, None))
    ax.set(ylabel="cost per sequence (bits)")
    ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(os.path.join(out, "generalisation_tasks.png"), dpi=110)
  return lines


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--runs", default="runs/ntm")
  parser.add_argument("--out", default="papers/ntm")
  parser.add_argument("--tasks", default="copy,others", help="copy, others, or both")
  args = parser.parse_args()
  if "others" in args.tasks.split(","):
    found = task_runs(args.runs)
    if found:
      task_learning_curves(found, args.out)
      print("| task | network | updates | (bits / wrong bits) per sequence |")
      print("\n".join(task_generalisation(found, args.out)))
  if "copy" not in args.tasks.split(","):
    return
  runs = {v: os.path.join(args.runs, v) for v in NETS if os.path.isdir(os.path.join(args.runs, v))}
  models = {v: restore(v, w) for v, w in runs.items()}
  learning_curves(runs, {v: m[2] for v, m in models.items()}, args.out)
  lengths = [10, 20, 30, 50, 120]
  table = generalisation(runs, models, lengths, args.out)
  batch, outputs = run_examples(models, lengths)
  copy_outputs(batch, outputs, lengths, args.out)
  for variant in models:
    if "ntm" in variant:
      weightings(variant, batch, outputs, lengths, args.out)
  print("| network | steps | sequences | " + " | ".join(f"bits L={n}" for n in lengths) + " | "
        + " | ".join(f"wrong bits L={n}" for n in lengths) + " |")
  for variant, (costs, errors) in table.items():
    step, batch = models[variant][2], models[variant][3].batch_size
    print(f"| {NETS[variant]} | {step:,} | {step * batch:,} | " + " | ".join(f"{c:.2f}" for c in costs)
          + " | " + " | ".join(f"{e:.1f}" for e in errors) + " |")


if __name__ == "__main__":
  main()
