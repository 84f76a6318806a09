"""Figures of char-rnn runs: learning curves, and single cells' activations over text.

  python -m papers.char_rnn.plot curves --out papers/char_rnn/learning_curves.png \\
      Shakespeare=runs/char_rnn/shakespeare Linux=runs/char_rnn/linux
  python -m papers.char_rnn.plot cells --workdir runs/char_rnn/shakespeare \\
      --out papers/char_rnn/cells_shakespeare.png

`cells` (the blog post's "visualizing the predictions and the neuron firings"): the network
reads `--context` bytes of validation text from a zero state; over them, each cell's tanh(c)
(LSTM; h for the other cells) is correlated with simple properties of the text (position in
the line, inside quotes, inside brackets, ...), and for each property the cell with the largest
|correlation| colours the background of every character (blue -1 ... red +1) of a passage of
`--show` bytes: the one, after the first 500, where those properties vary most.
"""
from __future__ import annotations

import argparse
import sys

import matplotlib
import numpy as np

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

from core.metrics import read_metrics  # pylint: disable=g-import-not-at-top

BITS_PER_NAT = 1 / np.log(2)
NANOGPT_BITS = 1.47 * BITS_PER_NAT  # nanoGPT's char-level val loss on tiny-shakespeare (nats)


# ---- properties of the text that a cell may track ---------------------------------------------

def _inside(text: str, open_char: str, close_char: str) -> np.ndarray:
  """1 between an opening and its closing character (excluded / included), else 0."""
  out, depth = np.zeros(len(text)), 0
  for i, ch in enumerate(text):
    if ch == close_char and depth:
      depth -= 1
    out[i] = depth > 0
    if ch == open_char:
      depth += 1
  return out


def _inside_quotes(text: str) -> np.ndarray:
  out, inside = np.zeros(len(text)), False
  for i, ch in enumerate(text):
    if ch == '"':
      inside = not inside
    out[i] = inside
  return out


def _line_position(text: str) -> np.ndarray:
  out, col = np.zeros(len(text)), 0
  for i, ch in enumerate(text):
    out[i] = col
    col = 0 if ch == "\n" else col + 1
  return out


def _speaker_line(text: str) -> np.ndarray:
  """1 on lines that name a speaker: upper-case words ending in a full stop ("KING HENRY.")."""
  out, start = np.zeros(len(text)), 0
  for line in text.split("\n"):
    words = line.strip().rstrip(".")
    if line.strip().endswith(".") and words and words.replace(" ", "").isalpha() and words.isupper():
      out[start:start + len(line)] = 1
    start += len(line) + 1
  return out


def _inside_comment(text: str) -> np.ndarray:
  out, inside = np.zeros(len(text)), False
  for i in range(len(text)):
    if text.startswith("/*", i):
      inside = True
    out[i] = inside
    if inside and text.startswith("*/", i - 1) and i > 0:
      inside = False
  return out


def _brace_depth(text: str) -> np.ndarray:
  out, depth = np.zeros(len(text)), 0
  for i, ch in enumerate(text):
    depth = max(depth - (ch == "}"), 0)
    out[i] = depth
    depth += ch == "{"
  return out


FEATURES = {
    "shakespeare": {
        "position in the line": _line_position,
        "inside [stage directions]": lambda t: _inside(t, "[", "]"),
        "a speaker's name (\"MARCUS.\")": _speaker_line,
    },
    "linux": {
        "position in the line": _line_position,
        "inside a /* comment */": _inside_comment,
        "inside \"quotes\"": _inside_quotes,
        "depth of { braces }": _brace_depth,
    },
}


def best_cells(states: np.ndarray, features: dict[str, np.ndarray]) -> list[tuple[str, int, float]]:
  """For each feature, (name, the cell most correlated with it, that correlation)."""
  out = []
  z = (states - states.mean(0)) / (states.std(0) + 1e-8)
  for name, f in features.items():
    if f.std() == 0:
      continue
    corr = z.T @ ((f - f.mean()) / f.std()) / len(f)
    cell = int(np.argmax(np.abs(corr)))
    out.append((name, cell, float(corr[cell])))
  return out


# ---- figures -----------------------------------------------------------------------------------

def _rows(text: str, width: int) -> list[tuple[int, int]]:
  """(start, stop) of each displayed row: lines of `text` cut at `width` characters."""
  rows, start = [], 0
  for i, ch in enumerate(text):
    if ch == "\n" or i + 1 - start == width:
      rows.append((start, i + 1))
      start = i + 1
  if start < len(text):
    rows.append((start, len(text)))
  return rows


def _cell_grid(ax, text: str, values: np.ndarray, width: int):
  """The characters of `text` in rows, each on a background coloured by its value."""
  rows = _rows(text, width)
  grid = np.full((len(rows), width), np.nan)
  for r, (a, b) in enumerate(rows):
    grid[r, :b - a] = values[a:b]
    for c, ch in enumerate(text[a:b]):
      shown = {"\n": "\u21b5", "\t": " "}.get(ch, ch)  # a visible newline; a tab as one blank
      ax.text(c, r, shown, ha="center", va="center", fontsize=7, family="monospace")
  ax.imshow(grid, cmap="coolwarm", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
  ax.set_xticks([])
  ax.set_yticks([])


def _window(features: dict[str, np.ndarray], start: int, show: int) -> int:
  """The start of the `show` bytes (after `start`) where the features vary most."""
  def score(a):
    return sum(f[a:a + show].std() / (f.std() + 1e-8) for f in features.values())
  return max(range(start, len(next(iter(features.values()))) - show + 1, 50), key=score)


def cells_figure(workdir: str, out: str, context: int = 5000, show: int = 700, width: int = 80,
                 offset: int = 0, warmup: int = 500):
  from papers.char_rnn import data  # pylint: disable=g-import-not-at-top
  from papers.char_rnn.sample import load_run  # pylint: disable=g-import-not-at-top
  task, params, step = load_run(workdir)
  val = task.splits[1][offset:offset + context]
  text = data.decode(val)
  if len(text) != len(val):  # keep one character per byte for the colouring
    text = bytes(val.tolist()).decode("latin-1")
  _, carries = task.sampler.states(params, np.asarray(val, np.int32))
  # LSTMs carry (c, h) per layer: show tanh(c), the "cell"; the other cells carry h alone.
  states = np.concatenate([np.tanh(np.asarray(layer[0])) if isinstance(layer, tuple)
                           else np.asarray(layer) for layer in carries], axis=-1)[:, 0, :]
  hidden = task.config.model.hidden_size
  corpus = task.config.data.corpus
  features = {name: fn(text) for name, fn in FEATURES[corpus].items()}
  chosen = best_cells(states, features)
  # Shown: a passage after a warm-up from the zero state, where the chosen features vary most.
  a = _window({name: features[name] for name, _, _ in chosen}, min(warmup, len(text) - show), show)
  height = 0.17 * len(_rows(text[a:a + show], width)) + 0.5
  fig, axes = plt.subplots(len(chosen), 1, figsize=(12, height * len(chosen) + 0.4))
  for ax, (name, cell, corr) in zip(np.atleast_1d(axes), chosen):
    _cell_grid(ax, text[a:a + show], states[a:a + show, cell], width)
    ax.set_title(f"layer {cell // hidden + 1}, cell {cell % hidden}: correlation {corr:+.2f} with "
                 f"{name} (over {len(text)} validation bytes)", fontsize=9)
  fig.suptitle(f"{corpus}, step {step}: tanh(c) of single LSTM cells (blue -1, red +1)", fontsize=10)
  fig.tight_layout()
  fig.savefig(out, dpi=110)
  return chosen


def curves_figure(runs: list[str], out: str):
  fig, ax = plt.subplots(figsize=(7, 4))
  for spec in runs:
    label, workdir = spec.split("=", 1)
    train = read_metrics(workdir, "train")
    evals = read_metrics(workdir, "eval")
    line, = ax.plot([r["step"] for r in train], [r["bits_per_char"] for r in train], alpha=0.5,
                    label=f"{label}: train (one batch)")
    ax.plot([r["step"] for r in evals], [r["bits_per_char"] for r in evals], marker="o", ms=3,
            color=line.get_color(), label=f"{label}: validation")
  ax.axhline(NANOGPT_BITS, color="gray", ls="--",
             label=f"nanoGPT char-level, tiny-shakespeare val ({NANOGPT_BITS:.2f})")
  ax.set_xlabel("training step")
  ax.set_ylabel("bits per character")
  ax.set_ylim(top=4)
  ax.grid(alpha=0.3)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(out, dpi=100)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m papers.char_rnn.plot")
  sub = parser.add_subparsers(dest="figure", required=True)
  curves = sub.add_parser("curves", help="learning curves of runs")
  curves.add_argument("--out", required=True)
  curves.add_argument("runs", nargs="+", help="LABEL=WORKDIR")
  cells = sub.add_parser("cells", help="single cells' activations over validation text")
  cells.add_argument("--workdir", required=True)
  cells.add_argument("--out", required=True)
  cells.add_argument("--context", type=int, default=5000, help="validation bytes read")
  cells.add_argument("--show", type=int, default=700, help="bytes shown")
  cells.add_argument("--offset", type=int, default=0, help="where in the validation text to start")
  args = parser.parse_args(argv)
  if args.figure == "curves":
    curves_figure(args.runs, args.out)
  else:
    from core.task import ConfigError  # pylint: disable=g-import-not-at-top
    try:
      for name, cell, corr in cells_figure(args.workdir, args.out, args.context, args.show,
                                           offset=args.offset):
        print(f"{name}: cell {cell}, correlation {corr:+.3f}")
    except ConfigError as e:
      print(f"error: {e}", file=sys.stderr)
      return 2
  return 0


if __name__ == "__main__":
  sys.exit(main())
