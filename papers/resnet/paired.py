"""Two trained nets scored on the same images: errors on every training and test image, and
the paired comparison of the two (McNemar's exact test on the images one gets right and the
other wrong).

  python -m papers.resnet.paired --runs runs/resnet/resnet20_long runs/resnet/resnet56_long \\
      [--out runs/resnet/paired_long]

The runs' own `train_error` scores the first `data.eval_train_examples` training images (1,000),
whose binomial standard error (~1 point at 10%) hides a gap of a few tenths. Here each run's
newest checkpoint (batch-norm running averages, no augmentation) scores all of its training
images and the whole test split, and since both nets see the same images, the test is paired:
under "equally good", an image one net gets wrong and the other right is as likely to fall
either way, so the count of such images each way is Binomial(n_discordant, 1/2).
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import numpy as np


def load(workdir: str):
  """(trainer, state, step) of a run's newest checkpoint, on one device."""
  # pylint: disable=g-import-not-at-top
  from core.config import run_config
  from core.train import restore_latest
  return restore_latest(run_config(workdir, "python -m launch.train --config configs/resnet.py:<variant> "
                                            f"--workdir {workdir}"), workdir)


def wrong_answers(trainer, state, images, labels, batch: int = 500) -> np.ndarray:
  """A boolean per image: the net's class is not the label (inference mode)."""
  import jax  # pylint: disable=g-import-not-at-top
  variables = {"params": state.params, **state.model_state}
  logits = jax.jit(lambda v, x: trainer.task._logits(v, x, train=False)[0])  # pylint: disable=protected-access
  predictions = [np.asarray(logits(variables, images[i:i + batch]).argmax(-1))
                 for i in range(0, len(labels), batch)]
  return np.concatenate(predictions) != labels


def mcnemar_p(only_first_wrong: int, only_second_wrong: int) -> float:
  """Two-sided exact McNemar p-value: the discordant images under Binomial(n, 1/2)."""
  from scipy import stats  # pylint: disable=g-import-not-at-top
  n = only_first_wrong + only_second_wrong
  return 1.0 if n == 0 else float(stats.binomtest(only_first_wrong, n, 0.5).pvalue)


def compare(first: np.ndarray, second: np.ndarray) -> dict:
  only_first, only_second = int((first & ~second).sum()), int((~first & second).sum())
  return {"images": len(first), "error_first": float(first.mean()), "error_second": float(second.mean()),
          "only_first_wrong": only_first, "only_second_wrong": only_second,
          "gap_first_minus_second": float(first.mean() - second.mean()),
          "mcnemar_p": mcnemar_p(only_first, only_second)}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m papers.resnet.paired")
  parser.add_argument("--runs", required=True, nargs=2, metavar="WORKDIR", help="the two runs' workdirs")
  parser.add_argument("--out", default="", help="a folder to write paired.json to")
  args = parser.parse_args(argv)
  from core.task import ConfigError  # pylint: disable=g-import-not-at-top
  runs = args.runs
  try:
    scored = []
    for workdir in runs:
      trainer, state, step = load(workdir)
      train, test = trainer.task._splits  # pylint: disable=protected-access
      scored.append({"workdir": workdir, "step": step,
                     "train": wrong_answers(trainer, state, train["images"], train["labels"]),
                     "test": wrong_answers(trainer, state, test["images"], test["labels"])})
  except ConfigError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  first, second = scored
  if len(first["train"]) != len(second["train"]) or len(first["test"]) != len(second["test"]):
    print("error: the two runs were trained or tested on different images; pair runs of the same data",
          file=sys.stderr)
    return 2
  result = {"first": {"workdir": first["workdir"], "step": first["step"]},
            "second": {"workdir": second["workdir"], "step": second["step"]},
            "train": compare(first["train"], second["train"]),
            "test": compare(first["test"], second["test"])}
  for split in ("train", "test"):
    r = result[split]
    print(f"{split}: {r['images']} images, error {r['error_first']:.2%} ({first['workdir']}) vs "
          f"{r['error_second']:.2%} ({second['workdir']}), gap {100 * r['gap_first_minus_second']:+.2f} points; "
          f"wrong only by the first {r['only_first_wrong']}, only by the second {r['only_second_wrong']}, "
          f"McNemar p = {r['mcnemar_p']:.3g}")
  if args.out:
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "paired.json"), "w", encoding="utf-8") as f:
      json.dump(result, f, indent=1)
  return 0


if __name__ == "__main__":
  sys.exit(main())
