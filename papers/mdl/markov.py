"""Markov order selection by code length (Grünwald 2005, sec. 1.4 / 2.5 example).

A k-th order Markov chain over K symbols is K^k multinomials, one per context. Each code
below sends the first k symbols at log2 K bits each, then every later symbol with the
multinomial code of its context (the counts of the symbols that followed that context):
  two_part     per context seen n_c times, its ML parameter sent as the context's type (its
               counts: log2 binom(n_c + K - 1, K - 1) bits), then the symbols with it: a
               crude, valid two-part code. (The asymptotic (K - 1)/2 log2 n_c is no code for a
               context seen once: it charges 0 bits there, and chose order 6 on 1,000 characters.)
  bayes        the KT (Dirichlet 1/2) mixture per context
  nml          ML + log2 C(K, n_c) per context: NML given the contexts' counts (the
               "factorised" NML; the chain's own NML has no exact form this cheap)
  prequential  the Laplace plug-in (h + 1) / (n_c + K) symbol by symbol: Bayes with a uniform
               prior in another form (equal, tested)
The order with the shortest code is chosen.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln

from papers.mdl.codes import LN2, log_complexity

CODES = ("two_part", "bayes", "nml", "prequential")


def context_counts(seq: np.ndarray, num_values: int, order: int) -> tuple[np.ndarray, np.ndarray]:
  """(context index of each (context, symbol) pair seen, its count), from symbol `order` on."""
  seq = np.asarray(seq, np.int64)
  ctx = np.zeros(len(seq) - order, np.int64)
  for i in range(order):
    ctx = ctx * num_values + seq[i:len(seq) - order + i]
  keys = ctx * num_values + seq[order:]
  pairs, counts = np.unique(keys, return_counts=True)
  return pairs // num_values, counts


def code_lengths(seq, num_values: int, order: int) -> dict:
  """{code: bits} of the sequence under the order-k chain, plus the ML bits (no code)."""
  ctx, h = context_counts(seq, num_values, order)
  _, where, _ = np.unique(ctx, return_inverse=True, return_counts=True)
  n_c = np.bincount(where, weights=h)   # the times each context was seen
  head = order * math.log2(num_values)
  ml = float(-(h * np.log2(h / n_c[where])).sum())
  k = num_values
  def dirichlet(alpha):
    log_p = (gammaln(k * alpha) - gammaln(n_c + k * alpha)).sum() + (gammaln(h + alpha) - gammaln(alpha)).sum()
    return float(-log_p / LN2)
  sizes, times = np.unique(n_c.astype(np.int64), return_counts=True)
  complexity = sum(t * log_complexity(k, int(s)) for s, t in zip(sizes, times)) / LN2
  return {"ml": head + ml,
          "two_part": head + ml + float((gammaln(n_c + k) - gammaln(n_c + 1) - gammaln(k)).sum()) / LN2,
          "bayes": head + dirichlet(0.5),
          "nml": head + ml + complexity,
          "prequential": head + dirichlet(1.0)}


def select_order(seq, num_values: int, max_order: int) -> dict:
  """{"bits": {code: [bits per order]}, "chosen": {code: order}}."""
  rows = [code_lengths(seq, num_values, k) for k in range(max_order + 1)]
  bits = {c: [r[c] for r in rows] for c in ("ml", *CODES)}
  return {"bits": bits, "chosen": {c: int(np.argmin(bits[c])) for c in CODES}}


def sample_chain(rng: np.random.Generator, num_values: int, order: int, n: int,
                 concentration: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
  """n symbols of a random order-k chain (each context's next-symbol distribution drawn from
  Dirichlet(concentration)); returns (sequence, transition table [K^k, K])."""
  table = rng.dirichlet(np.full(num_values, concentration), size=num_values ** order)
  seq = np.zeros(n, np.int64)
  seq[:order] = rng.integers(0, num_values, order)
  ctx = 0
  for i in range(order):
    ctx = ctx * num_values + seq[i]
  u = rng.random(n)
  cdf = np.cumsum(table, 1)
  for t in range(order, n):
    seq[t] = min(int(np.searchsorted(cdf[ctx], u[t], side="right")), num_values - 1)
    ctx = (ctx * num_values + seq[t]) % (num_values ** order) if order else 0
  return seq, table


ALPHABET = "abcdefghijklmnopqrstuvwxyz .,;:!?'\n-"


def encode_text(text: str) -> np.ndarray:
  """Lower-cased characters as symbols: the letters, space, newline and a few punctuation
  marks; every other character (digits, brackets, ...) is one extra symbol."""
  lookup = {c: i for i, c in enumerate(ALPHABET)}
  other = len(ALPHABET)
  return np.asarray([lookup.get(c, other) for c in text.lower()], np.int64)


NUM_TEXT_SYMBOLS = len(ALPHABET) + 1
