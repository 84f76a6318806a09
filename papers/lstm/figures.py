"""Learning curves of the runs declared in papers/lstm/claims.py, from their metrics.jsonl.

    python -m papers.lstm.figures [--runs runs/lstm] [--out papers/lstm]

adding.png: held-out MSE against training step, one panel per lag T, one line per cell, with
the 0.167 baseline of always answering 1. copy.png: held-out cross entropy per step of copy
memory, with the memoryless baseline 10 ln 8 / (T + 20).
"""
from __future__ import annotations

import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

from core.metrics import read_metrics  # pylint: disable=g-import-not-at-top
from papers.lstm import claims  # pylint: disable=g-import-not-at-top

COLORS = {"lstm": "C0", "peephole": "C1", "cifg": "C2", "gru": "C3", "rnn": "C7"}
NAMES = {"lstm": "LSTM", "peephole": "peephole", "cifg": "CIFG", "gru": "GRU", "rnn": "tanh RNN"}


def _curve(workdir: str, metric: str):
  rows = [r for r in read_metrics(workdir, "eval") if metric in r]
  return [r["step"] for r in rows], [r[metric] for r in rows]


def adding_figure(runs_dir: str, path: str):
  fig, axes = plt.subplots(1, len(claims.LAGS), figsize=(4.2 * len(claims.LAGS), 3.6), sharey=True)
  for ax, lag in zip(axes, claims.LAGS):
    for cell in claims.CELLS:
      steps, mse = _curve(os.path.join(runs_dir, f"adding_{cell}_T{lag}"), "mse")
      if steps:
        ax.plot(steps, mse, marker="o", ms=3, color=COLORS[cell], label=NAMES[cell])
    ax.axhline(1 / 6, color="k", ls="--", lw=1, label="answer 1 (0.167)")
    ax.axhline(0.01, color="gray", ls=":", lw=1, label="'solved' (0.01)")
    ax.set_yscale("log")
    ax.set_title(f"adding problem, T = {lag}")
    ax.set_xlabel("training step (batch 64)")
    ax.grid(alpha=0.3, which="both")
  axes[0].set_ylabel("held-out MSE")
  handles = {}
  for ax in axes:  # every cell once, even if some run is missing from a panel
    handles.update(zip(*reversed(ax.get_legend_handles_labels())))
  order = [NAMES[c] for c in claims.CELLS if NAMES[c] in handles] + [
      k for k in handles if k not in NAMES.values()]
  fig.legend([handles[k] for k in order], order, fontsize=8, loc="center right")
  fig.tight_layout(rect=(0, 0, 0.88, 1))
  fig.savefig(path, dpi=90)


def copy_figure(runs_dir: str, path: str):
  fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(9, 3.6))
  lag = claims.COPY_LAG
  for cell in ("lstm", "gru"):
    workdir = os.path.join(runs_dir, f"copy_{cell}_T{lag}")
    steps, loss = _curve(workdir, "loss")
    if steps:
      ax_loss.plot(steps, loss, marker="o", ms=3, color=COLORS[cell], label=NAMES[cell])
      ax_acc.plot(*_curve(workdir, "accuracy"), marker="o", ms=3, color=COLORS[cell], label=NAMES[cell])
  ax_loss.axhline(claims.COPY_BASELINE, color="k", ls="--", lw=1,
                  label=f"memoryless ({claims.COPY_BASELINE:.3f})")
  ax_acc.axhline(1 / 8, color="k", ls="--", lw=1, label="chance (1/8)")
  ax_loss.set_title(f"copy memory, T = {lag}: cross entropy per step")
  ax_acc.set_title("accuracy on the 10 recalled symbols")
  for ax in (ax_loss, ax_acc):
    ax.set_xlabel("training step (batch 64)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
  ax_acc.set_ylim(0, 1.02)
  fig.tight_layout()
  fig.savefig(path, dpi=90)


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m papers.lstm.figures")
  parser.add_argument("--runs", default=os.path.join("runs", "lstm"))
  parser.add_argument("--out", default=os.path.join("papers", "lstm"))
  args = parser.parse_args(argv)
  adding_figure(args.runs, os.path.join(args.out, "adding.png"))
  copy_figure(args.runs, os.path.join(args.out, "copy.png"))


if __name__ == "__main__":
  main()
