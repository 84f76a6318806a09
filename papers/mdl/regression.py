"""Polynomial degree selection by code length (Grünwald 2005, sec. 1.3 / 2.8 example).

Data: x ~ U(-1, 1), y = a degree-`degree` polynomial of x plus N(0, sigma^2) noise. Candidate
models: polynomials of degree 0 .. max_degree with Gaussian noise (k = degree + 1 coefficients).
All codes send y to the same precision, a constant per point that cancels between models and
is left out; lengths are in bits, relative to each other.
  two_part     n/2 log2(2 pi e s2_ml) + (k + 1)/2 log2 n: the coefficients and the variance to
               precision 1/sqrt(n) (BIC in bits)
  bayes        Zellner's g-prior beta ~ N(0, g s2 (X'X)^-1) with g = n and p(s2) ~ 1/s2, whose
               marginal is closed: Gamma(n/2) pi^(-n/2) (1 + g)^(-k/2) (y'y - g/(1+g) y'Hy)^(-n/2)
  nml          NML with the noise variance s2 known (here: the largest model's unbiased
               estimate, as in Mallows' Cp) and the fitted values restricted to the ball
               |X beta|^2 <= n R, R = mean(y^2). Then the Shtarkov integral is exact: the
               residual part integrates to 1, the fitted part over the k-ball gives
               COMP = k/2 ln(n R / (2 s2)) - ln Gamma(k/2 + 1) nats.
  prequential  each y_i (i > max_degree + 2) coded with N(fit of y_1..y_{i-1}, s2_ml of that
               fit): the plug-in code. Its first points are left out for all models alike.
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import gammaln

LN2 = math.log(2.0)
CODES = ("two_part", "bayes", "nml", "prequential")


def design(x, degree: int) -> np.ndarray:
  return np.vander(np.asarray(x, np.float64), degree + 1, increasing=True)


def rss(x, y, degree: int) -> float:
  X = design(x, degree)
  beta, *_ = np.linalg.lstsq(X, y, rcond=None)
  return float(np.sum((y - X @ beta) ** 2))


def two_part_bits(x, y, degree: int) -> float:
  n, k = len(y), degree + 1
  return (n / 2 * math.log(2 * math.pi * math.e * rss(x, y, degree) / n) / LN2
          + (k + 1) / 2 * math.log2(n))


def bayes_bits(x, y, degree: int) -> float:
  n, k, g = len(y), degree + 1, float(len(y))
  fitted = float(y @ y) - rss(x, y, degree)          # y'Hy
  log_p = (gammaln(n / 2) - n / 2 * math.log(math.pi) - k / 2 * math.log1p(g)
           - n / 2 * math.log(float(y @ y) - g / (1 + g) * fitted))
  return -log_p / LN2


def nml_bits(x, y, degree: int, noise_var: float, radius: float | None = None) -> float:
  """The NML code with known variance; `radius` (R) defaults to mean(y^2)."""
  n, k = len(y), degree + 1
  radius = float(np.mean(y ** 2)) if radius is None else radius
  fit = rss(x, y, degree) / (2 * noise_var) + n / 2 * math.log(2 * math.pi * noise_var)
  comp = k / 2 * math.log(n * radius / (2 * noise_var)) - gammaln(k / 2 + 1)
  return (fit + comp) / LN2


def prequential_bits(x, y, degree: int, start: int) -> float:
  """Plug-in code of y[start:], each point predicted from the least-squares fit of all before it."""
  bits = 0.0
  for i in range(start, len(y)):
    X = design(x[:i], degree)
    beta, *_ = np.linalg.lstsq(X, y[:i], rcond=None)
    var = max(float(np.mean((y[:i] - X @ beta) ** 2)), 1e-12)
    pred = float((design(x[i:i + 1], degree) @ beta)[0])
    bits += (0.5 * math.log(2 * math.pi * var) + (y[i] - pred) ** 2 / (2 * var)) / LN2
  return bits


def sample(rng: np.random.Generator, n: int, coefficients, noise: float):
  x = rng.uniform(-1.0, 1.0, n)
  y = design(x, len(coefficients) - 1) @ np.asarray(coefficients, np.float64) + noise * rng.normal(size=n)
  return x, y


def select_degree(x, y, max_degree: int) -> dict:
  """{"bits": {code: [bits per degree]}, "chosen": {code: degree}}."""
  n = len(y)
  k_max = max_degree + 1
  noise_var = rss(x, y, max_degree) / (n - k_max)
  start = k_max + 2
  bits = {"two_part": [two_part_bits(x, y, d) for d in range(max_degree + 1)],
          "bayes": [bayes_bits(x, y, d) for d in range(max_degree + 1)],
          "nml": [nml_bits(x, y, d, noise_var) for d in range(max_degree + 1)],
          "prequential": [prequential_bits(x, y, d, start) for d in range(max_degree + 1)]}
  return {"bits": bits, "chosen": {c: int(np.argmin(v)) for c, v in bits.items()}}
