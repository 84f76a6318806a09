"""The tutorial's examples, run: python -m papers.mdl.experiment --out DIR [--quick]

Writes DIR/results.json and four figures:
  regret.png      Bernoulli codes' worst-case regret over ML against n (NML's is log2 C(2, n))
  markov.png      code length per character against Markov order, Shakespeare prefixes
  polynomial.png  code lengths against polynomial degree, one synthetic sample
  prequential.png the prequential code per block of two char LSTMs and of KT Markov codes
--quick is the smoke size (smaller texts and samples, fewer training steps).
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np

from papers.mdl import codes, markov, neural, regression

TRUE_ORDER, CHAIN_VALUES = 2, 3
COEFFICIENTS, NOISE = (0.2, -1.0, 0.0, 2.0), 0.3   # degree 3 (the x^2 term is 0 on purpose)


def nml_check() -> dict:
  """The recurrence against the Shtarkov sum over all K^n sequences, K <= 5, n <= 6."""
  errors = []
  for k in range(1, 6):
    for n in range(1, 7):
      if k ** n <= 20_000:
        brute = codes.brute_force_complexity(k, n)
        errors.append(abs(math.exp(codes.log_complexity(k, n)) - brute) / brute)
  rng = np.random.default_rng(0)
  seq = rng.integers(0, 2, 200)
  pre, bayes = codes.prequential_bits(seq, 2), codes.bayes_bits(np.bincount(seq, minlength=2))
  return {"max_relative_error": max(errors), "cases": len(errors),
          "kt_prequential_minus_bayes_bits": abs(pre - bayes)}


def bernoulli_regret(sizes) -> dict:
  """Worst case over k of (code - ML) bits for each code, and NML's constant regret."""
  out = {"n": list(sizes), "nml": [], "bayes_kt": [], "two_part": [], "asymptotic": []}
  for n in sizes:
    ml = [codes.ml_bits([k, n - k]) for k in range(n + 1)]
    out["nml"].append(codes.complexity_bits(2, n))
    out["bayes_kt"].append(max(codes.bayes_bits([k, n - k]) - m for k, m in zip(range(n + 1), ml)))
    out["two_part"].append(max(codes.two_part_bernoulli_bits(k, n)[0] - m for k, m in zip(range(n + 1), ml)))
    out["asymptotic"].append(0.5 * math.log2(n * math.pi / 2))   # 1/2 log2(n / 2 pi) + log2 pi
  return out


def markov_synthetic(n: int, seed: int = 0) -> dict:
  seq, _ = markov.sample_chain(np.random.default_rng(seed), CHAIN_VALUES, TRUE_ORDER, n)
  result = markov.select_order(seq, CHAIN_VALUES, 5)
  result["correct"] = sum(v == TRUE_ORDER for v in result["chosen"].values())
  result.update(n=n, true_order=TRUE_ORDER, values=CHAIN_VALUES)
  return result


def markov_text(text: str, sizes, max_order: int = 6) -> dict:
  symbols = markov.encode_text(text[:max(sizes)])
  rows = {}
  for n in sizes:
    rows[str(n)] = markov.select_order(symbols[:n], markov.NUM_TEXT_SYMBOLS, max_order)
  chosen = {c: [rows[str(n)]["chosen"][c] for n in sizes] for c in markov.CODES}
  return {"sizes": list(sizes), "rows": rows, "chosen": chosen,
          "nml_growth": chosen["nml"][-1] - chosen["nml"][0], "symbols": markov.NUM_TEXT_SYMBOLS}


def polynomial(samples: int, n: int = 100, max_degree: int = 8) -> dict:
  true = len(COEFFICIENTS) - 1
  hits = {c: 0 for c in regression.CODES}
  first = None
  for seed in range(samples):
    x, y = regression.sample(np.random.default_rng(seed), n, COEFFICIENTS, NOISE)
    result = regression.select_degree(x, y, max_degree)
    first = first or result
    for c, d in result["chosen"].items():
      hits[c] += d == true
  fraction = {c: h / samples for c, h in hits.items()}
  return {"true_degree": true, "n": n, "samples": samples, "correct_fraction": fraction,
          "min_correct_fraction": min(fraction.values()), "example": first}


def neural_prequential(text: str, n: int, first: int, steps: int, sizes) -> dict:
  seq = markov.encode_text(text[:n])
  k = markov.NUM_TEXT_SYMBOLS
  out = {"n": n, "first_block": first, "steps_per_block": steps, "uniform_bits_per_char": math.log2(k)}
  for name, hidden in sizes.items():
    r = neural.prequential_code(seq, k, hidden, first, steps)
    out[name] = {"hidden": hidden, "parameters": r["parameters"], "bits": r["bits"], "steps": r["steps"],
                 "bits_per_char": r["bits"] / n, "blocks": r["blocks"], "seconds": r["seconds"]}
  edges = neural.block_edges(first, n)
  for order in (1, 2, 3):
    blocks = neural.kt_prequential_blocks(seq, k, order, edges)
    bits = sum(b for _, _, b in blocks)
    out[f"kt_order{order}"] = {"bits": bits, "bits_per_char": bits / n, "blocks": blocks}
  out["large_minus_small_bits"] = out["large"]["bits"] - out["small"]["bits"]
  out["best_kt_bits_per_char"] = min(out[f"kt_order{o}"]["bits_per_char"] for o in (1, 2, 3))
  return out


def figures(results: dict, out: str) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  r = results["bernoulli_regret"]
  fig, ax = plt.subplots(figsize=(5, 3.5))
  for key, label in (("nml", "NML (= log2 C(2, n))"), ("bayes_kt", "Bayes, KT"), ("two_part", "two-part"),
                     ("asymptotic", "1/2 log2(n pi / 2)")):
    ax.plot(r["n"], r[key], "--" if key == "asymptotic" else "-", label=label)
  ax.set(xscale="log", xlabel="n", ylabel="worst-case regret over ML (bits)", title="Bernoulli codes")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(os.path.join(out, "regret.png"), dpi=120)
  plt.close(fig)

  m = results["markov_text"]
  fig, axes = plt.subplots(1, len(m["sizes"]), figsize=(3 * len(m["sizes"]), 3.2), sharey=False)
  for ax, n in zip(np.atleast_1d(axes), m["sizes"]):
    row = m["rows"][str(n)]
    for code in markov.CODES:
      ax.plot(np.asarray(row["bits"][code]) / n, marker=".", label=code)
    ax.set(title=f"n = {n:,}", xlabel="Markov order")
  np.atleast_1d(axes)[0].set_ylabel("bits per character")
  np.atleast_1d(axes)[0].legend(fontsize=7)
  fig.suptitle("Shakespeare: code length against Markov order")
  fig.tight_layout()
  fig.savefig(os.path.join(out, "markov.png"), dpi=120)
  plt.close(fig)

  p = results["polynomial"]["example"]
  fig, ax = plt.subplots(figsize=(5, 3.5))
  for code, bits in p["bits"].items():
    bits = np.asarray(bits)
    ax.plot(bits - bits.min(), marker=".", label=code)
  ax.axvline(results["polynomial"]["true_degree"], color="gray", lw=0.8)
  ax.set(xlabel="degree", ylabel="bits above the code's minimum", yscale="symlog",
         title="polynomial degree (true: 3)")
  ax.set_ylim(bottom=0)
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(os.path.join(out, "polynomial.png"), dpi=120)
  plt.close(fig)

  q = results["neural"]
  fig, ax = plt.subplots(figsize=(5.5, 3.5))
  for key in ("small", "large", "kt_order1", "kt_order2", "kt_order3"):
    blocks = q[key]["blocks"][1:]
    label = f"LSTM {q[key]['hidden']}" if key in ("small", "large") else key.replace("_", " ")
    ax.plot([hi for _, hi, _ in blocks], [b / (hi - lo) for lo, hi, b in blocks], marker=".", label=label)
  ax.axhline(q["uniform_bits_per_char"], color="gray", lw=0.8, label="uniform")
  ax.set(xscale="log", xlabel="end of block (characters)", ylabel="bits per character in the block",
         title="prequential code on a Shakespeare prefix")
  ax.legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(os.path.join(out, "prequential.png"), dpi=120)
  plt.close(fig)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m papers.mdl.experiment")
  parser.add_argument("--out", required=True, help="directory for results.json and the figures")
  parser.add_argument("--quick", action="store_true", help="smoke sizes")
  args = parser.parse_args(argv)
  from core import datasets  # pylint: disable=g-import-not-at-top
  from core.task import DataMissingError  # pylint: disable=g-import-not-at-top
  try:
    text = datasets.shakespeare_text()
  except DataMissingError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  os.makedirs(args.out, exist_ok=True)
  quick = args.quick
  start = time.time()
  results = {"nml_check": nml_check(),
             "bernoulli_regret": bernoulli_regret([4, 16, 64, 256, 1024] if quick else
                                                  [4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096]),
             "markov_synthetic": markov_synthetic(2000 if quick else 10_000),
             "markov_text": markov_text(text, [1_000, 10_000, 100_000] if quick else
                                        [1_000, 10_000, 100_000, 1_000_000]),
             "polynomial": polynomial(5 if quick else 50)}
  print(f"codes done in {time.time() - start:.0f} s", flush=True)
  results["neural"] = neural_prequential(text, 8_000 if quick else 128_000, 1_000 if quick else 2_000,
                                         50 if quick else 600, {"small": 32, "large": 128})
  results["seconds"] = time.time() - start
  with open(os.path.join(args.out, "results.json"), "w") as f:
    json.dump(results, f, indent=1)
  figures(results, args.out)
  summary = {"markov_synthetic": results["markov_synthetic"]["chosen"],
             "markov_text": results["markov_text"]["chosen"],
             "polynomial": results["polynomial"]["correct_fraction"],
             "neural_bits_per_char": {k: results["neural"][k]["bits_per_char"]
                                      for k in ("small", "large", "kt_order1", "kt_order2", "kt_order3")}}
  print(json.dumps(summary), flush=True)
  return 0


if __name__ == "__main__":
  sys.exit(main())
