"""Accuracy at each output position of trained sorting runs: which step of the answer fails.

  python -m papers.order_matters.positions --runs runs/order_matters sort10_p0 sort10_p1 sort10

For each run (a workdir under --runs written by launch.reproduce, whose config.json gives the
variant and P), restores the last checkpoint and scores 512 held-out sets: the share of sets
whose t-th pointer is right under teacher forcing (the true previous elements fed in) and
under greedy decoding (the model's own previous choices fed in), and how often a teacher-forced
pointer repeats the element emitted just before it.
"""
from __future__ import annotations

import argparse
import json
import os
import sys

import jax
import jax.numpy as jnp
import numpy as np

from core.config import load_config
from core.task import heldout_rng
from core.train import restore_latest
from papers.order_matters.task import sorting_examples


def position_accuracy(workdir: str, sets: int = 512):
  """(step, teacher-forced accuracy [N], greedy accuracy [N], repeats [N]) of the run's last
  checkpoint; repeats[t]: the share of sets whose teacher-forced pointer t is pointer t-1's
  target again (the element just emitted)."""
  with open(os.path.join(workdir, "config.json"), encoding="utf-8") as f:
    recorded = json.load(f)
  n, p = recorded["data"]["num_elements"], recorded["model"]["process_steps"]
  config = load_config(f"configs/order_matters.py:sort{n}", [f"--config.model.process_steps={p}",
                                                            f"--config.model.encoder={recorded['model']['encoder']}"])
  trainer, state, step = restore_latest(config, workdir)
  variables = {"params": jax.device_get(state.params)}
  examples = sorting_examples(heldout_rng(config.seed), sets, n, "sorted")
  inputs, pointers = jnp.asarray(examples["inputs"]), examples["pointers"]
  logits, _ = trainer.task.model.apply(variables, inputs, jnp.asarray(pointers))
  greedy, _ = trainer.task.decode(variables, inputs)
  forced = np.asarray(logits).argmax(-1)
  repeats = np.concatenate([[0.0], (forced[:, 1:] == pointers[:, :-1]).mean(0)])
  return step, (forced == pointers).mean(0), (np.asarray(greedy) == pointers).mean(0), repeats


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--runs", default="runs/order_matters")
  parser.add_argument("names", nargs="+", help="run directories under --runs (sorted output order)")
  args = parser.parse_args(argv)
  for name in args.names:
    workdir = os.path.join(args.runs, name)
    if not os.path.exists(os.path.join(workdir, "config.json")):
      print(f"error: {workdir} is not a finished run (no config.json)", file=sys.stderr)
      return 2
  for name in args.names:
    step, forced, greedy, repeats = position_accuracy(os.path.join(args.runs, name))
    print(f"{name} (step {step})")
    print("  position        " + " ".join(f"{t + 1:5d}" for t in range(len(forced))))
    print("  teacher-forced  " + " ".join(f"{x:5.2f}" for x in forced))
    print("  greedy          " + " ".join(f"{x:5.2f}" for x in greedy))
    print("  repeats last    " + " ".join(f"{x:5.2f}" for x in repeats))
  return 0


if __name__ == "__main__":
  sys.exit(main())
