"""Universal codes for the Bernoulli and multinomial models (Grünwald 2005, ch. 2-2.5), in bits.

For a sequence of n symbols from K values with counts h_1..h_K:
  ML        -log2 P_theta_hat(x): the best code in hindsight (not a code: it depends on x)
  two-part  the parameter sent at a precision chosen for n, then the data with it
  Bayes     -log2 of the Dirichlet(alpha) mixture; alpha = 1/2 is Krichevsky-Trofimov (KT)
  NML       ML + log2 C(K, n), C the parametric complexity: the sum of the ML probability of
            every sequence of length n (Shtarkov), exact, by the Kontkanen-Myllymäki recurrence
  prequential  symbol by symbol with a plug-in estimate (h_j + alpha) / (t + K alpha), the
            Bayes code in another form: the two are equal (tested), as the tutorial notes
Everything is numpy/scipy in float64, in log space where the sums are huge.
"""
from __future__ import annotations

import functools
import math

import numpy as np
from scipy.special import gammaln, logsumexp

LN2 = math.log(2.0)


def ml_bits(counts) -> float:
  """-log2 P(x | theta_hat) for a sequence with these symbol counts."""
  h = np.asarray(counts, np.float64)
  n = h.sum()
  h = h[h > 0]
  return float(-(h * np.log2(h / n)).sum()) if n else 0.0


@functools.lru_cache(maxsize=None)
def _log_c2(n: int) -> float:
  """ln C(2, n) = ln sum_k binom(n, k) (k/n)^k ((n-k)/n)^(n-k): the Bernoulli complexity, exact."""
  if n == 0:
    return 0.0
  k = np.arange(n + 1, dtype=np.float64)
  log_binom = gammaln(n + 1) - gammaln(k + 1) - gammaln(n - k + 1)
  with np.errstate(divide="ignore", invalid="ignore"):  # 0 log 0 = 0
    terms = np.where(k > 0, k * np.log(k / n), 0.0) + np.where(k < n, (n - k) * np.log((n - k) / n), 0.0)
  return float(logsumexp(log_binom + terms))


def log_complexity(num_values: int, n: int) -> float:
  """ln C(K, n), the multinomial model's parametric complexity, by the Kontkanen & Myllymäki
  (2007) recurrence C(K+2, n) = C(K+1, n) + n / K * C(K, n), from C(1, n) = 1 and the exact
  Bernoulli sum C(2, n): O(n + K) per n."""
  if num_values < 1 or n < 0:
    raise ValueError(f"need K >= 1 and n >= 0, got K={num_values}, n={n}")
  if num_values == 1 or n == 0:
    return 0.0
  prev, cur = 0.0, _log_c2(n)   # ln C(1, n), ln C(2, n)
  for k in range(1, num_values - 1):   # cur becomes ln C(k + 2, n)
    prev, cur = cur, float(np.logaddexp(cur, math.log(n / k) + prev))
  return cur


def complexity_bits(num_values: int, n: int) -> float:
  return log_complexity(num_values, n) / LN2


def brute_force_complexity(num_values: int, n: int) -> float:
  """C(K, n) as the Shtarkov sum over all K^n sequences (for tests: small K and n only)."""
  total = 0.0
  for seq in np.ndindex(*([num_values] * n)):
    counts = np.bincount(np.asarray(seq, int), minlength=num_values)
    total += 2.0 ** -ml_bits(counts)
  return total


def nml_bits(counts) -> float:
  counts = np.asarray(counts)
  return ml_bits(counts) + complexity_bits(len(counts), int(counts.sum()))


def bayes_bits(counts, alpha: float = 0.5) -> float:
  """-log2 of the Dirichlet(alpha, ..., alpha) mixture: Gamma(K a) prod Gamma(h_j + a) /
  (Gamma(n + K a) Gamma(a)^K). alpha = 1/2: the KT code; alpha = 1: Laplace's."""
  h = np.asarray(counts, np.float64)
  k, n = len(h), h.sum()
  log_p = gammaln(k * alpha) - gammaln(n + k * alpha) + (gammaln(h + alpha) - gammaln(alpha)).sum()
  return float(-log_p / LN2)


def prequential_bits(sequence, num_values: int, alpha: float = 0.5) -> float:
  """Sum over t of -log2 (h_j(t) + alpha) / (t + K alpha), the counts h(t) of x_1..x_{t-1}."""
  counts = np.zeros(num_values)
  bits = 0.0
  for t, x in enumerate(np.asarray(sequence, int)):
    bits -= math.log2((counts[x] + alpha) / (t + num_values * alpha))
    counts[x] += 1
  return bits


def two_part_bernoulli_bits(k: int, n: int) -> tuple[float, float]:
  """Grünwald's two-part code for a Bernoulli sequence with k ones: for each precision
  d = 1 .. ceil(log2 n) + 1 (2^d grid cells of [0, 1]), send d (log2 of the number of
  precisions tried), the cell (d bits) and the data under the cell's midpoint; the best total
  and its d. Tends to ML + 1/2 log2 n + O(1), as the tutorial's "sqrt(n) precision" says."""
  levels = int(math.ceil(math.log2(max(n, 2)))) + 1
  best = (math.inf, 0)
  for d in range(1, levels + 1):
    grid = (np.arange(2 ** d) + 0.5) / 2 ** d
    data = -(k * np.log2(grid) + (n - k) * np.log2(1 - grid))
    total = math.log2(levels) + d + float(data.min())
    best = min(best, (total, d))
  return best


def two_part_bits(counts) -> float:
  """A two-part code for a K-valued multinomial in its asymptotic form: ML + (K - 1)/2 log2 n
  (each of K - 1 free parameters sent to precision 1/sqrt(n)); BIC in bits."""
  counts = np.asarray(counts)
  n = int(counts.sum())
  return ml_bits(counts) + (len(counts) - 1) / 2 * math.log2(max(n, 1))
