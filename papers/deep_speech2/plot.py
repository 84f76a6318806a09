"""Spectrogram and CTC output probabilities over time for one held-out utterance (PNG).

    python -m papers.deep_speech2.plot --config configs/deep_speech2.py:cpu \
        --workdir runs/deep_speech2/cpu --out papers/deep_speech2/ctc_outputs.png
"""
from __future__ import annotations

import argparse
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top,wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position

from core.train import restore_latest  # pylint: disable=wrong-import-position
from core.config import load_config  # pylint: disable=wrong-import-position
from papers.deep_speech2 import data as speech  # pylint: disable=wrong-import-position
from papers.deep_speech2.decode import greedy  # pylint: disable=wrong-import-position


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--config", default="configs/deep_speech2.py:cpu", help="the run's config")
  parser.add_argument("--workdir", required=True)
  parser.add_argument("--out", required=True)
  parser.add_argument("--index", type=int, default=0, help="held-out utterance")
  parser.add_argument("--eval", type=int, default=0,
                      help="also print greedy CER/WER on this many held-out utterances and the real clips")
  args = parser.parse_args(argv)
  config = load_config(args.config)
  trainer, state, step = restore_latest(config, args.workdir)
  task = trainer.task
  import jax  # pylint: disable=g-import-not-at-top
  with trainer.context():
    variables = jax.device_get(state.variables())
    feats, text = task.test_data["features"][args.index], task.test_data["texts"][args.index]
    (log_probs,) = task.log_probs(variables, [feats])
    if args.eval:
      test = task.test_data
      scores = task.error_rates(task.log_probs(variables, test["features"][:args.eval]),
                                test["texts"][:args.eval], 0, "greedy_")[0]
      real = task.real_data
      scores.update(task.error_rates(task.log_probs(variables, real["features"]), real["texts"], 0,
                                     "real_greedy_")[0])
      print(f"step {step}: " + ", ".join(f"{k} {v:.3f}" for k, v in scores.items()))
  hyp = speech.decode_labels(greedy(log_probs))
  fig, (top, bottom) = plt.subplots(2, 1, figsize=(11, 6), sharex=False)
  top.imshow(np.asarray(feats, np.float32).T, origin="lower", aspect="auto", cmap="magma")
  top.set(title=f"log power spectrogram (held-out voice): {text!r}", ylabel="frequency bin",
          xlabel="frame (10 ms)")
  probs = np.exp(log_probs)
  steps = np.arange(len(probs)) * task.time_stride
  bottom.plot(steps, probs[:, speech.BLANK], color="0.7", lw=1, label="blank")
  for k in range(1, speech.VOCAB):
    if probs[:, k].max() > 0.3:
      peak = probs[:, k].argmax()
      bottom.plot(steps, probs[:, k], lw=1)
      bottom.annotate(repr(speech.ALPHABET[k - 1])[1:-1] or "_", (steps[peak], probs[peak, k]),
                      fontsize=7)
  bottom.set(xlim=(0, len(feats)), ylim=(0, 1.05), xlabel="frame (10 ms)", ylabel="p(character)",
             title=f"CTC outputs after {step} steps; greedy: {hyp!r}")
  bottom.legend(loc="upper right", fontsize=7)
  fig.tight_layout()
  fig.savefig(args.out, dpi=110)
  print(f"wrote {args.out}: {text!r} -> {hyp!r}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
