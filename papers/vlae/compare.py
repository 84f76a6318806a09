"""The AF prior against the Gaussian prior, from two finished runs' last eval rows.

  python -m papers.vlae.compare --runs runs/vlae --out runs/vlae/compare

Writes <out>/compare.json: each run's test nll / neg_elbo / kl (nats per image) and
    nll_gap = nll(fashion_gaussian) - nll(fashion_af)   (> 0: the AF prior gives the better model)
"""
from __future__ import annotations

import argparse
import json
import os

from core.metrics import eval_rows_or_exit

RUNS = ("fashion_af", "fashion_gaussian")


def main(argv=None):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--runs", required=True, help="the folder holding the two runs")
  parser.add_argument("--out", required=True)
  args = parser.parse_args(argv)
  last = {}
  for name in RUNS:
    path = os.path.join(args.runs, name)
    rows = eval_rows_or_exit(path, "python -m launch.reproduce --items vlae --tier cpu")
    last[name] = {k: rows[-1][k] for k in ("step", "nll", "neg_elbo", "kl", "recon")}
  summary = {**last, "nll_gap": last["fashion_gaussian"]["nll"] - last["fashion_af"]["nll"]}
  os.makedirs(args.out, exist_ok=True)
  with open(os.path.join(args.out, "compare.json"), "w", encoding="utf-8") as f:
    json.dump(summary, f, indent=1)
  print(json.dumps(summary))


if __name__ == "__main__":
  main()
