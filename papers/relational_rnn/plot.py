"""Learning curves of Nth-farthest and Learning to Execute runs from their metrics.jsonl.

python -m papers.relational_rnn.plot --out papers/relational_rnn/nth_farthest.png \
    RMC=runs/rrnn_rmc LSTM=runs/rrnn_lstm
python -m papers.relational_rnn.plot --task lte --out papers/relational_rnn/lte_addition.png \
    LSTM=runs/relational_rnn/lte_lstm_addition_long RMC=runs/relational_rnn/lte_rmc_addition_long

LABEL=WORKDIR@BATCH puts every run on an x axis of training sequences (step x BATCH, log
scale), to compare runs of different batch sizes.
"""
from __future__ import annotations

import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top


def eval_rows(workdir: str) -> list[dict]:
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  return [r for r in rows if r.get("split") == "eval"]


def plot_runs(specs, metric_of_axis) -> bool:
  """Draws each run's eval `metric_of_axis[ax]` on every ax against its step, or against its
  training sequences when every spec is LABEL=WORKDIR@BATCH (then returns True)."""
  by_sequences = all("@" in spec for spec in specs)
  for spec in specs:
    label, workdir = spec.split("=", 1)
    workdir, _, batch = workdir.partition("@")
    rows = eval_rows(workdir)
    steps = [r["step"] * (int(batch) if by_sequences else 1) for r in rows]
    for ax, metric in metric_of_axis.items():
      ax.plot(steps, [r[metric] for r in rows], marker="o", ms=3, label=label)
  return by_sequences


def main(argv=None):
  parser = argparse.ArgumentParser()
  parser.add_argument("--out", required=True)
  parser.add_argument("--task", default="nth_farthest", choices=("nth_farthest", "lte"))
  parser.add_argument("--num_objects", type=int, default=8)
  parser.add_argument("--title", default="Nth farthest (8 vectors x 16 dims)")
  parser.add_argument("runs", nargs="+", help="LABEL=WORKDIR or LABEL=WORKDIR@BATCH")
  args = parser.parse_args(argv)
  if args.task == "lte":
    return plot_lte(args)
  k = args.num_objects
  fig, (ax_all, ax_hard) = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
  by_sequences = plot_runs(args.runs, {ax_all: "accuracy", ax_hard: "accuracy_nontrivial"})
  # Answering n=K (the reference itself) perfectly and guessing the rest among K-1.
  trivial = 1 / k + (k - 1) / k * 1 / (k - 1)
  ax_all.axhline(trivial, color="gray", ls=":", label=f"n={k} solved, rest guessed ({trivial:.0%})")
  ax_all.axhline(1 / k, color="gray", ls="--", label=f"chance ({1 / k:.1%})")
  if k == 8:
    ax_all.axhline(0.91, color="k", ls="-.", label="paper RMC (91%)")
  ax_hard.axhline(1 / (k - 1), color="gray", ls="--", label=f"chance ({1 / (k - 1):.1%})")
  ax_all.set_title(f"{args.title}: test accuracy")
  ax_hard.set_title(f"questions with n < {k} only")
  for ax in (ax_all, ax_hard):
    ax.set_xlabel("training sequences" if by_sequences else "training step")
    if by_sequences:
      ax.set_xscale("log")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  ax_all.set_ylabel("accuracy")
  ax_all.set_ylim(0, 1)
  fig.tight_layout()
  fig.savefig(args.out, dpi=90)


def plot_lte(args):
  """Per-character and whole-answer test accuracy of Learning to Execute runs against steps."""
  fig, (ax_char, ax_answer) = plt.subplots(1, 2, figsize=(10, 3.8), sharey=True)
  by_sequences = plot_runs(args.runs, {ax_char: "char_accuracy", ax_answer: "answer_accuracy"})
  ax_char.axhline(0.999, color="k", ls="-.", label="paper RMC, addition (99.9%)")
  ax_char.set_title("Learning to Execute: per-character test accuracy")
  ax_answer.set_title("whole answers right")
  for ax in (ax_char, ax_answer):
    ax.set_xlabel("training programs" if by_sequences else "training step")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  ax_char.set_ylabel("accuracy")
  ax_char.set_ylim(0, 1)
  fig.tight_layout()
  fig.savefig(args.out, dpi=90)


if __name__ == "__main__":
  main()
