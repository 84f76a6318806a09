"""Training and validation perplexity per epoch of word-LM runs, from their metrics.jsonl.

python -m papers.rnn_regularization.plot --out papers/rnn_regularization/perplexity.png \
    "small, no dropout=runs/rnn_regularization/small" \
    "medium, dropout 0.5=runs/rnn_regularization/medium_cpu"

Both curves come from the evaluation at the end of every epoch, in evaluation mode (no
dropout): `valid_perplexity` over the whole validation split and `train_perplexity` over a
training sample of the same size (papers/rnn_regularization/task.py).
"""
from __future__ import annotations

import argparse
import json
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top


def epochs(workdir: str) -> tuple[list[float], list[dict]]:
  """(epoch of each evaluation, its eval row); an epoch is config.eval_every steps."""
  with open(os.path.join(workdir, "config.json")) as f:
    steps = json.load(f)["eval_every"]
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  rows = [r for r in rows if r.get("split") == "eval" and "valid_perplexity" in r]
  return [r["step"] / steps for r in rows], rows


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", required=True)
  parser.add_argument("--title", default="Word-level LSTM LM on Shakespeare (offline corpus)")
  parser.add_argument("runs", nargs="+", help="LABEL=WORKDIR")
  args = parser.parse_args(argv)
  fig, ax = plt.subplots(figsize=(7, 4.2))
  for i, spec in enumerate(args.runs):
    label, workdir = spec.rsplit("=", 1)
    x, rows = epochs(workdir)
    color = f"C{i}"
    ax.plot(x, [r["valid_perplexity"] for r in rows], "-o", ms=3, color=color, label=f"{label}: valid")
    ax.plot(x, [r["train_perplexity"] for r in rows], "--", color=color, label=f"{label}: train")
  ax.set_yscale("log")
  ax.set_xlabel("epoch")
  ax.set_ylabel("perplexity (evaluation mode)")
  ax.set_title(args.title)
  ax.grid(alpha=0.3, which="both")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(args.out, dpi=90)


if __name__ == "__main__":
  main()
