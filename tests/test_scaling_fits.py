"""The scaling-law fits recover known power laws, and their error bars are calibrated."""
import json
import os

import numpy as np
import pytest

from papers.scaling_laws import fit

# Kaplan et al. (2020), eqs. 1.1, 1.2 and 1.5.
ALPHA_N, N_C = 0.076, 8.8e13
ALPHA_D, D_C = 0.095, 5.4e13


def kaplan_nd(n, d):
  return ((N_C / n) ** (ALPHA_N / ALPHA_D) + D_C / d) ** ALPHA_D


def noisy(loss, rng, sigma):
  return loss * np.exp(rng.normal(0.0, sigma, np.shape(loss)))


def test_power_law_matches_a_straight_line_in_log_log():
  rng = np.random.default_rng(0)
  n = np.geomspace(1e3, 1e6, 9)
  loss = noisy((N_C / n) ** ALPHA_N, rng, 0.01)
  result = fit.fit_power_law(n, loss)
  # Independent reference: ordinary least squares of log L on log N.
  (slope, intercept), cov = np.polyfit(np.log(n), np.log(loss), 1, cov=True)
  assert result["alpha_N"] == pytest.approx(-slope, rel=1e-6)
  assert result["log10_N_c"] == pytest.approx(intercept / -slope / np.log(10), rel=1e-6)
  assert result.stderr("alpha_N") == pytest.approx(np.sqrt(cov[0, 0]), rel=1e-4)
  assert abs(result["alpha_N"] - ALPHA_N) < 4 * result.stderr("alpha_N")


def test_stderr_is_calibrated_against_repeated_noise():
  rng = np.random.default_rng(1)
  n = np.geomspace(1e3, 1e6, 8)
  truth = (N_C / n) ** ALPHA_N
  fits = [fit.fit_power_law(n, noisy(truth, rng, 0.02)) for _ in range(300)]
  alphas = np.array([f["alpha_N"] for f in fits])
  reported = np.mean([f.stderr("alpha_N") for f in fits])
  assert alphas.mean() == pytest.approx(ALPHA_N, abs=3 * alphas.std() / np.sqrt(len(fits)))
  assert reported == pytest.approx(alphas.std(), rel=0.15)


def test_bootstrap_spread_matches_covariance():
  rng = np.random.default_rng(2)
  n = np.geomspace(1e3, 1e6, 30)
  loss = noisy((N_C / n) ** ALPHA_N, rng, 0.02)
  result = fit.fit_power_law(n, loss)
  spread = fit.bootstrap(fit.fit_power_law, n, loss, num=300, seed=0)
  std, lo, hi = spread["alpha_N"]
  assert std == pytest.approx(result.stderr("alpha_N"), rel=0.3)
  assert lo < result["alpha_N"] < hi


def test_power_law_with_floor_recovers_the_irreducible_loss():
  rng = np.random.default_rng(3)
  n = np.geomspace(1e3, 1e7, 12)
  loss = noisy(1.3 + (2e4 / n) ** 0.35, rng, 0.003)
  result = fit.fit_power_law(n, loss, floor=True)
  assert result["L_inf"] == pytest.approx(1.3, abs=4 * result.stderr("L_inf"))
  assert result["alpha_N"] == pytest.approx(0.35, abs=4 * result.stderr("alpha_N"))
  assert result["log10_N_c"] == pytest.approx(np.log10(2e4), abs=4 * result.stderr("log10_N_c"))
  # The floorless law fits the same points much worse.
  assert fit.fit_power_law(n, loss).rms_log_residual > 5 * result.rms_log_residual


def test_loss_nd_recovers_kaplans_constants():
  rng = np.random.default_rng(4)
  n, d = np.meshgrid(np.geomspace(1e5, 1e9, 7), np.geomspace(1e7, 1e11, 7))
  n, d = n.ravel(), d.ravel()
  result = fit.fit_loss_nd(n, d, noisy(kaplan_nd(n, d), rng, 0.002))
  for name, value in (("alpha_N", ALPHA_N), ("alpha_D", ALPHA_D),
                      ("log10_N_c", np.log10(N_C)), ("log10_D_c", np.log10(D_C))):
    assert abs(result[name] - value) < 4 * result.stderr(name), name
  assert result.predict(3e9, 3e11) == pytest.approx(kaplan_nd(3e9, 3e11), rel=0.01)


def test_frontier_is_the_lower_envelope_and_follows_the_optimal_law():
  # Learning curves L(N, D = C / 6N) of many model sizes; the envelope over runs must equal a
  # brute-force minimum over N, and for Kaplan's L(N, D) the optimum is a power law in C with
  # exponent alpha_N alpha_D / (alpha_N + alpha_D) (minimise A N^-p + B N with p = a_N/a_D).
  sizes = np.geomspace(1e5, 1e9, 25)
  curves = []
  for n in sizes:
    d = np.geomspace(1e6, 1e12, 200)
    curves.append((6 * n * d, kaplan_nd(n, d)))
  frontier = fit.compute_frontier(curves, num=40)
  brute = np.array([min(np.interp(np.log(c), np.log(cc), ll, left=np.inf, right=np.inf)
                        for cc, ll in curves) for c in frontier.compute])
  np.testing.assert_allclose(frontier.loss, brute, rtol=1e-3)
  # Fit where the optimum lies strictly inside the grid of sizes.
  inside = (sizes[frontier.run] > 3e5) & (sizes[frontier.run] < 3e8)
  result = fit.fit_power_law(frontier.compute[inside], frontier.loss[inside], var="C")
  expected = ALPHA_N * ALPHA_D / (ALPHA_N + ALPHA_D)
  assert result["alpha_C"] == pytest.approx(expected, rel=0.03)


def test_holdout_prediction_extrapolates_and_its_interval_covers():
  rng = np.random.default_rng(5)
  n = np.geomspace(1e3, 1e6, 10)
  truth = (N_C / n) ** ALPHA_N
  covered = 0
  for _ in range(200):
    out = fit.holdout_prediction(n, noisy(truth, rng, 0.01), holdout=2)
    z = np.abs(np.log(out["predicted"] / truth[-2:])) / out["predicted_log_stderr"]
    covered += np.all(z < 2.5)
  assert covered / 200 > 0.85
  exact = fit.holdout_prediction(n, truth, holdout=2)
  np.testing.assert_allclose(exact["relative_error"], 0.0, atol=1e-9)
  np.testing.assert_allclose(exact["N"], n[-2:])


def test_too_few_points_is_an_error():
  with pytest.raises(ValueError, match="need more than"):
    fit.fit_power_law([1e3, 1e4], [3.0, 2.5])


def test_analyze_reads_a_sweep_and_recovers_its_laws(tmp_path):
  # A results.jsonl as launch.sweep writes it, with learning curves drawn from eq. 1.5.
  from papers.scaling_laws import analyze
  rng = np.random.default_rng(6)
  tokens_per_step, total = 2 ** 20, 400
  with open(tmp_path / "results.jsonl", "w") as f:
    for n in np.geomspace(1e6, 3e8, 8).astype(int):
      steps = np.arange(25, total + 1, 25)
      d = steps * tokens_per_step
      loss = noisy(kaplan_nd(n, d), rng, 0.001)
      curve = [{"step": int(s), "split": "eval", "loss": float(l), "N": int(n), "D": int(dd),
                "C": int(6 * n * dd)} for s, dd, l in zip(steps, d, loss)]
      f.write(json.dumps({"run": f"n{n}", "status": "finished", "N": int(n),
                          "total_steps": total, "tokens_per_step": tokens_per_step,
                          "D": int(d[-1]), "C": int(6 * n * d[-1]),
                          "final_eval": curve[-1], "curve": curve}) + "\n")
  runs = analyze.load_runs(str(tmp_path))
  laws, summary = analyze.analyze(runs)
  nd = laws["L(N, D)"]
  assert abs(nd["alpha_N"] - ALPHA_N) < 4 * nd.stderr("alpha_N")
  assert abs(nd["alpha_D"] - ALPHA_D) < 4 * nd.stderr("alpha_D")
  final = np.array([r["L"] for r in runs])
  assert summary["prediction"]["actual"] == pytest.approx(list(final[-2:]))
  # Data drawn from eq. 1.5: fitted on the six smaller runs, it predicts the two largest.
  assert np.abs(summary["prediction L(N, D)"]["relative_error"]).max() < 0.005
  paths = analyze.plot(runs, laws, summary, str(tmp_path))
  assert all(os.path.getsize(p) > 10_000 for p in paths)
  assert "alpha_N" in analyze.report(summary)
