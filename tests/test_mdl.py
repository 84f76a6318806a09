"""papers/mdl: NML complexity against enumeration, the Bernoulli codes against closed forms,
model selection on generated data of known order / degree, the NML density's normalisation,
and a tiny neural prequential code."""
import math

import numpy as np
import pytest
from scipy.special import betaln, comb

from papers.mdl import codes, markov, neural, regression


@pytest.mark.parametrize("k, n", [(1, 3), (2, 1), (2, 7), (3, 5), (4, 4), (5, 3)])
def test_nml_complexity_recurrence_matches_enumeration(k, n):
  assert math.exp(codes.log_complexity(k, n)) == pytest.approx(codes.brute_force_complexity(k, n), rel=1e-12)


def test_known_complexities_and_bernoulli_sum():
  assert math.exp(codes.log_complexity(2, 2)) == pytest.approx(2.5)   # 1 + 2 * 1/4 + 1
  assert math.exp(codes.log_complexity(7, 1)) == pytest.approx(7.0)   # any one symbol: ML prob 1
  n = 50
  direct = sum(comb(n, j, exact=True) * (j / n) ** j * ((n - j) / n) ** (n - j) for j in range(n + 1))
  assert math.exp(codes.log_complexity(2, n)) == pytest.approx(direct, rel=1e-12)
  # Large n stays finite (log space) and near the asymptotic 1/2 log2(n pi / 2).
  assert codes.complexity_bits(2, 10 ** 6) == pytest.approx(0.5 * math.log2(1e6 * math.pi / 2), abs=0.01)


def test_bernoulli_codes_against_closed_forms():
  for k, n in ((0, 10), (3, 10), (30, 100), (500, 1000)):
    ml = -(k * math.log2(k / n) if k else 0) - ((n - k) * math.log2((n - k) / n) if n - k else 0)
    assert codes.ml_bits([k, n - k]) == pytest.approx(ml)
    # KT: the Beta(1/2, 1/2) mixture, B(k + 1/2, n - k + 1/2) / B(1/2, 1/2).
    kt = -(betaln(k + 0.5, n - k + 0.5) - betaln(0.5, 0.5)) / math.log(2)
    assert codes.bayes_bits([k, n - k]) == pytest.approx(kt, rel=1e-10)
    laplace = math.log2((n + 1) * comb(n, k, exact=True))   # uniform prior: 1 / ((n + 1) binom(n, k))
    assert codes.bayes_bits([k, n - k], alpha=1.0) == pytest.approx(laplace, rel=1e-10)
    assert codes.nml_bits([k, n - k]) == pytest.approx(ml + codes.complexity_bits(2, n))
    two_part, _ = codes.two_part_bernoulli_bits(k, n)
    assert ml <= two_part <= ml + math.log2(n) + 4   # 1/2 log2 n inside, up to log2 n at k = 0


@pytest.mark.parametrize("alpha", [0.5, 1.0])
def test_prequential_plug_in_equals_the_bayes_mixture(alpha):
  seq = np.random.default_rng(0).integers(0, 3, 300)
  assert codes.prequential_bits(seq, 3, alpha) == pytest.approx(
      codes.bayes_bits(np.bincount(seq, minlength=3), alpha), rel=1e-12)


def test_context_counts_match_a_dictionary():
  seq = np.random.default_rng(1).integers(0, 4, 500)
  ctx, counts = markov.context_counts(seq, 4, 2)
  want = {}
  for t in range(2, len(seq)):
    key = (seq[t - 2] * 4 + seq[t - 1], seq[t])
    want[key] = want.get(key, 0) + 1
  assert sum(counts) == 498 and len(counts) == len(want)
  assert sorted(want.values()) == sorted(counts.tolist())
  # Order 0: the code lengths are the plain multinomial codes of the symbol counts.
  lengths = markov.code_lengths(seq, 4, 0)
  h = np.bincount(seq, minlength=4)
  assert lengths["bayes"] == pytest.approx(codes.bayes_bits(h))
  assert lengths["nml"] == pytest.approx(codes.nml_bits(h))
  assert lengths["prequential"] == pytest.approx(codes.prequential_bits(seq, 4, 1.0))


@pytest.mark.parametrize("order", [0, 1, 2])
def test_markov_order_selection_finds_the_true_order(order):
  seq, _ = markov.sample_chain(np.random.default_rng(order), 3, order, 4000)
  chosen = markov.select_order(seq, 3, 4)["chosen"]
  assert set(chosen.values()) == {order}, chosen


def test_polynomial_degree_selection_finds_the_true_degree():
  hits = {c: 0 for c in regression.CODES}
  for seed in range(5):
    x, y = regression.sample(np.random.default_rng(seed), 100, (0.2, -1.0, 0.0, 2.0), 0.3)
    for code, degree in regression.select_degree(x, y, 6)["chosen"].items():
      hits[code] += degree == 3
  assert min(hits.values()) >= 4, hits


def test_gaussian_nml_density_integrates_to_one():
  # n = 2 points, the constant model, known variance, fitted values in the ball |y_hat|^2 <= n R.
  x, var, radius = np.array([0.3, -0.5]), 0.5, 2.0
  grid = np.linspace(-8, 8, 201)
  step = grid[1] - grid[0]
  total = 0.0
  for y1 in grid:
    for y2 in grid:
      y = np.array([y1, y2])
      if 2 * np.mean(y) ** 2 <= 2 * radius:
        total += 2.0 ** -regression.nml_bits(x, y, 0, var, radius) * step * step
  assert total == pytest.approx(1.0, abs=0.02)


def test_tiny_neural_prequential_code():
  seq = np.random.default_rng(0).integers(0, 5, 700)
  result = neural.prequential_code(seq, 5, hidden=8, first=100, steps=3, window=16, batch=4)
  assert [(lo, hi) for lo, hi, _ in result["blocks"]] == [(0, 100), (100, 200), (200, 400), (400, 700)]
  assert result["blocks"][0][2] == pytest.approx(100 * math.log2(5))
  assert result["bits"] == pytest.approx(sum(b for *_, b in result["blocks"]))
  # Near-uniform data: near log2 5 bits per symbol, never far below it.
  assert 0.9 * math.log2(5) < result["bits"] / 700 < 1.2 * math.log2(5)
