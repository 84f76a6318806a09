"""Alignment matrices of a trained RNNsearch on held-out verses (the paper's figure 3).

  python -m papers.bahdanau.figures --workdir runs/bahdanau/rnnsearch --out papers/bahdanau

Restores the newest checkpoint of the run, translates a few test verses of 8-25 words with
beam search, and plots alpha_ij (target piece i, source piece j) of the model reading its own
translation: `alignment.png` (white = weight 1, as the paper's figure).
"""
from __future__ import annotations

import argparse
import os
import sys

import jax
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
import numpy as np


def load_run(workdir: str, step: int | None = None):
  """(task, variables, step) of a checkpoint (default: the newest) of a configs/bahdanau.py run,
  on one device."""
  from core.config import run_config  # pylint: disable=g-import-not-at-top
  from core.task import ConfigError  # pylint: disable=g-import-not-at-top
  from core.train import restore_latest  # pylint: disable=g-import-not-at-top
  config = run_config(workdir, f"python -m launch.train --config configs/bahdanau.py --workdir {workdir}")
  if not config.task.startswith("papers.bahdanau."):
    raise ConfigError(f"{workdir} holds a run of {config.task!r}, not of papers.bahdanau")
  trainer, state, step = restore_latest(config, workdir, step)
  return trainer.task, jax.device_get(state.variables()), step


def alignments(task, variables, count: int = 4):
  """[(source pieces, output pieces, alpha (Ty, Tx))] for `count` test verses of 8-25 words."""
  from papers.bahdanau import model as model_lib  # pylint: disable=g-import-not-at-top
  pairs, src = task.test_examples()
  rows = [i for i, (s, _) in enumerate(pairs) if 8 <= len(s.split()) <= 25]
  rows = [rows[k] for k in np.linspace(0, len(rows) - 1, count).round().astype(int)]
  size = int(task.config.data.eval_batch_size)
  batch = np.pad(src[rows], ((0, size - len(rows)), (0, 0)))
  tokens = np.asarray(task._beam(variables, batch))[:len(rows)]  # pylint: disable=protected-access
  tgt_in = np.concatenate([np.full((len(rows), 1), model_lib.BOS, np.int32), tokens[:, :-1]], axis=1)
  tgt_in = np.pad(tgt_in, ((0, size - len(rows)), (0, 0)))
  read = jax.jit(lambda v, s, t: task.model.apply(
      v, task.model.apply(v, s, method=model_lib.RNNSearch.encode), t,
      method=model_lib.RNNSearch.decode)[1])
  alphas = np.asarray(read(variables, batch, tgt_in))
  src_vocab, tgt_vocab = task.vocabs
  out = []
  for k, row in enumerate(rows):
    n_src = int((src[row] != model_lib.PAD).sum())
    out_ids = tokens[k].tolist()
    n_out = out_ids.index(model_lib.EOS) + 1 if model_lib.EOS in out_ids else len(out_ids)
    out.append((src_vocab.pieces(src[row][:n_src]),
                tgt_vocab.pieces(out_ids[:n_out - 1]) + ["</s>"],
                alphas[k, :n_out, :n_src]))
  return out


def plot(examples, path: str, step: int):
  fig, axes = plt.subplots(1, len(examples), figsize=(5.2 * len(examples), 5.2))
  for ax, (source, output, alpha) in zip(np.atleast_1d(axes), examples):
    ax.imshow(alpha, cmap="gray", vmin=0, vmax=1, aspect="auto")
    ax.set_xticks(range(len(source)), [p.replace("\u2581", "") for p in source], rotation=90,
                  fontsize=7)
    ax.set_yticks(range(len(output)), [p.replace("\u2581", "") for p in output], fontsize=7)
    ax.xaxis.tick_top()
  fig.suptitle(f"RNNsearch alignments on held-out verses (step {step}); "
               "cf. Bahdanau et al. 2015, figure 3", fontsize=9)
  fig.tight_layout()
  fig.savefig(path, dpi=110)
  plt.close(fig)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m papers.bahdanau.figures",
                                   description=__doc__.split("\n", maxsplit=1)[0])
  parser.add_argument("--workdir", required=True, help="a training workdir of an RNNsearch variant")
  parser.add_argument("--out", default=".", help="folder for alignment.png")
  parser.add_argument("--examples", type=int, default=4)
  args = parser.parse_args(argv)
  from core.task import ConfigError  # pylint: disable=g-import-not-at-top
  try:
    task, variables, step = load_run(args.workdir)
    if not task.config.model.attention:
      raise ConfigError(f"{args.workdir} is an RNNencdec run: it has no alignments")
    examples = alignments(task, variables, args.examples)
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  os.makedirs(args.out, exist_ok=True)
  path = os.path.join(args.out, "alignment.png")
  plot(examples, path, step)
  for source, output, _ in examples:
    print("".join(source).replace("\u2581", " ").strip(), "->",
          "".join(output[:-1]).replace("\u2581", " ").strip())
  print(f"wrote {path}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
