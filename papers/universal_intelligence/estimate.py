"""Monte Carlo estimate of the universal intelligence measure over sampled programs.

Legg's measure (thesis, def. 4.1 / ch. 5): Upsilon(pi) = sum over environments mu of
2^-K(mu) V_mu^pi. AIQ replaces K(mu) by the length of a program for mu on the reference machine
and the sum by sampling programs from the 2^-length prior, so Upsilon is the prior mean of the
agent's average reward per cycle V (in [-100, 100]). Two variance reductions, as AIQ:

- Antithetic variates: each program is run twice, the second time with its rewards negated;
  the sample is y = (V+ + V-) / 2. An agent whose actions ignore the rewards (the random agent)
  has E[y] = 0 on every program, and a program that never reads an action gives y = 0 exactly
  for every agent (the "passive" stratum, counted without running it).
- Stratified sampling by program length: strata weights p_s come from a large pool drawn from
  the prior; each stratum gets its own sample (proportional allocation with at least 2 per
  stratum, where AIQ adapts the allocation to the strata's variances).

Estimate sum_s p_s mean_s(y), variance sum_s p_s^2 var_s(y) / n_s, 95% CI +- 1.96 sd. Episodes
voided by a cycle over the instruction budget are left out of their stratum (AIQ redraws a
program from the same stratum instead: the same conditional mean).
"""
from __future__ import annotations

import numpy as np

from papers.universal_intelligence import bf

EDGES = (8, 12, 18)  # active programs by length: <= 8, 9-12, 13-18, longer


def stratum_of(program: str) -> int:
  """0: passive (scores exactly 0), 1..len(EDGES)+1: active, by length."""
  if bf.is_passive(program):
    return 0
  return 1 + int(np.searchsorted(EDGES, len(program)))


def strata_weights(pool: list[str]) -> np.ndarray:
  """p_s: the fraction of the prior (as sampled in `pool`) in each stratum."""
  counts = np.bincount([stratum_of(p) for p in pool], minlength=len(EDGES) + 2)
  return counts / counts.sum()


def allocate(pool: list[str], weights: np.ndarray, n: int, minimum: int = 2) -> list[int]:
  """The indices in `pool` of n active programs, proportionally to the active strata's weights
  (at least `minimum` each), taken from the pool in order, grouped by stratum."""
  active = weights[1:] / weights[1:].sum()
  want = np.maximum(minimum, np.round(active * n).astype(int))
  by_stratum = [[] for _ in weights]
  for i, p in enumerate(pool):
    s = stratum_of(p)
    if s and len(by_stratum[s]) < want[s - 1]:
      by_stratum[s].append(i)
  short = [s for s in range(1, len(weights)) if len(by_stratum[s]) < want[s - 1]]
  if short:
    raise ValueError(f"the pool has too few programs in strata {short}: raise --pool")
  return [p for group in by_stratum for p in group]


def stratified(y: np.ndarray, strata: np.ndarray, valid: np.ndarray, weights: np.ndarray) -> dict:
  """The stratified estimate and 95% CI from per-program samples y (the passive stratum is 0)."""
  est, var, used = 0.0, 0.0, 0
  for s in range(1, len(weights)):
    ys = y[(strata == s) & valid]
    used += len(ys)
    if len(ys) == 0:
      continue  # every program of this stratum broke the budget: it adds nothing, as if 0
    est += weights[s] * ys.mean()
    if len(ys) > 1:
      var += weights[s] ** 2 * ys.var(ddof=1) / len(ys)
  half = 1.96 * float(np.sqrt(var))
  return {"estimate": float(est), "ci_low": float(est - half), "ci_high": float(est + half),
          "programs": int(used), "programs_void": int((~valid).sum())}


def antithetic(rewards: np.ndarray, void: np.ndarray, upto: int) -> tuple[np.ndarray, np.ndarray]:
  """rewards, void [n, 2, horizon] -> (y [n], valid [n]) over the first `upto` cycles."""
  v = rewards[:, :, :upto].mean(-1)
  return v.mean(-1), ~void[:, :, upto - 1].any(-1)
