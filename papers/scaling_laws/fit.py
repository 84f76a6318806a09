"""Power-law fits of Kaplan et al. (2020) with their uncertainties.

All fits are least squares on log L (the paper's losses span a decade and their
relative noise is what is roughly constant), done with `scipy.optimize.curve_fit`,
whose covariance (scaled by the residual variance) gives the standard errors.
`bootstrap` gives a resampling alternative when the residuals are not i.i.d.

Laws (x is N, D or C; constants are kept as log10 so the fits stay well scaled):
  power law        L(x)    = (x_c / x)^alpha                         eq. 1.1-1.3
  with a floor     L(x)    = L_inf + (x_c / x)^alpha                 (Henighan et al. 2020)
  model and data   L(N, D) = [(N_c / N)^(alpha_N / alpha_D) + D_c / D]^alpha_D   eq. 1.5
  frontier         L(C_min) from the lower envelope of all learning curves   fig. 1 left
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Sequence

import numpy as np
from scipy import optimize

LN10 = np.log(10.0)


@dataclasses.dataclass(frozen=True)
class Fit:
  """A fitted law: parameter values, their covariance, and the fitted log-model."""
  law: str
  names: tuple[str, ...]
  values: np.ndarray
  cov: np.ndarray
  log_model: Callable = dataclasses.field(repr=False, compare=False)
  rms_log_residual: float
  num_points: int

  def __getitem__(self, name: str) -> float:
    return float(self.values[self.names.index(name)])

  def stderr(self, name: str) -> float:
    i = self.names.index(name)
    return float(np.sqrt(self.cov[i, i]))

  def predict(self, *xs) -> np.ndarray:
    return np.exp(self.log_model(self.values, *map(np.asarray, xs)))

  def predict_log_stderr(self, *xs) -> np.ndarray:
    """Standard error of log L at xs (delta method: J cov J^T)."""
    xs = tuple(map(np.asarray, xs))
    jac = []
    for i in range(len(self.values)):
      step = 1e-6 * max(1.0, abs(self.values[i]))
      hi, lo = self.values.copy(), self.values.copy()
      hi[i] += step
      lo[i] -= step
      jac.append((self.log_model(hi, *xs) - self.log_model(lo, *xs)) / (2 * step))
    jac = np.stack(jac, axis=-1)
    return np.sqrt(np.einsum("...i,ij,...j->...", jac, self.cov, jac))

  def summary(self) -> dict:
    out = {"law": self.law, "num_points": self.num_points,
           "rms_log_residual": self.rms_log_residual}
    for name in self.names:
      out[name] = self[name]
      out[name + "_stderr"] = self.stderr(name)
    return out


def _fit(law, names, log_model, xs, loss, starts, bounds=(-np.inf, np.inf)) -> Fit:
  """Least squares on log L from several starting points; keeps the best."""
  xs = tuple(np.asarray(x, dtype=np.float64) for x in xs)
  y = np.log(np.asarray(loss, dtype=np.float64))
  if len(y) <= len(names):
    raise ValueError(f"{law}: need more than {len(names)} points, got {len(y)}")
  best = None
  for p0 in starts:
    try:
      values, cov = optimize.curve_fit(
          lambda _, *p: log_model(np.array(p), *xs), np.arange(len(y)), y, p0=p0,
          bounds=bounds, maxfev=20000)
    except (RuntimeError, ValueError):
      continue
    ssr = float(np.sum((log_model(values, *xs) - y) ** 2))
    if np.all(np.isfinite(cov)) and (best is None or ssr < best[0]):
      best = (ssr, values, cov)
  if best is None:
    raise RuntimeError(f"{law}: no starting point converged")
  ssr, values, cov = best
  return Fit(law, tuple(names), values, cov, log_model,
             float(np.sqrt(ssr / len(y))), len(y))


def _log_power(p, x):
  alpha, log10_xc = p[0], p[1]
  return alpha * (log10_xc * LN10 - np.log(x))


def _log_power_floor(p, x):
  return np.log(p[2] + np.exp(_log_power(p, x)))


def fit_power_law(x: Sequence[float], loss: Sequence[float], var: str = "N",
                  floor: bool = False) -> Fit:
  """L = (x_c/x)^alpha, or L_inf + (x_c/x)^alpha with `floor=True`."""
  x, loss = np.asarray(x, np.float64), np.asarray(loss, np.float64)
  # Start from the straight line through the log-log points.
  slope, intercept = np.polyfit(np.log(x), np.log(loss), 1)
  alpha0 = max(-slope, 1e-3)
  log10_xc0 = intercept / alpha0 / LN10
  names = [f"alpha_{var}", f"log10_{var}_c"]
  if not floor:
    return _fit(f"L = ({var}_c/{var})^alpha_{var}", names, _log_power, (x,), loss,
                [(alpha0, log10_xc0)])
  lmin = float(loss.min())
  starts = []
  for frac in (0.0, 0.5, 0.8, 0.95):
    rest = loss - frac * lmin
    s, b = np.polyfit(np.log(x), np.log(rest), 1)
    a = max(-s, 1e-3)
    starts.append((a, b / a / LN10, frac * lmin))
  bounds = ([1e-4, -np.inf, 0.0], [10.0, np.inf, lmin])
  return _fit(f"L = L_inf + ({var}_c/{var})^alpha_{var}", names + ["L_inf"],
              _log_power_floor, (x,), loss, starts, bounds)


def _log_loss_nd(p, n, d):
  alpha_n, alpha_d, log10_nc, log10_dc = p
  model_term = (alpha_n / alpha_d) * (log10_nc * LN10 - np.log(n))
  data_term = log10_dc * LN10 - np.log(d)
  return alpha_d * np.logaddexp(model_term, data_term)


def fit_loss_nd(n: Sequence[float], d: Sequence[float], loss: Sequence[float]) -> Fit:
  """Kaplan's eq. 1.5, L(N, D) = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D."""
  n, d, loss = (np.asarray(a, np.float64) for a in (n, d, loss))
  # Starting points from one-variable fits on the data-rich / model-rich ends.
  starts = []
  for alpha_n in (0.05, 0.1, 0.3):
    for alpha_d in (0.05, 0.1, 0.3):
      log10_nc = np.log10(n.max()) + np.log(loss.max()) / alpha_n / LN10
      log10_dc = np.log10(d.max()) + np.log(loss.max()) / alpha_d / LN10
      starts.append((alpha_n, alpha_d, log10_nc, log10_dc))
  bounds = ([1e-4, 1e-4, -np.inf, -np.inf], [10.0, 10.0, np.inf, np.inf])
  return _fit("L = [(N_c/N)^(alpha_N/alpha_D) + D_c/D]^alpha_D",
              ["alpha_N", "alpha_D", "log10_N_c", "log10_D_c"], _log_loss_nd,
              (n, d), loss, starts, bounds)


@dataclasses.dataclass(frozen=True)
class Frontier:
  compute: np.ndarray   # grid of C values
  loss: np.ndarray      # lowest loss any run reached at that C
  run: np.ndarray       # index of the run that reached it


def compute_frontier(curves: Sequence[tuple[np.ndarray, np.ndarray]],
                     num: int = 60) -> Frontier:
  """Lower envelope of learning curves L(C), each interpolated in log-log.

  curves: one (C, L) pair of increasing-C arrays per run. At each grid point a run
  counts only inside the range of C it covered.
  """
  lo = min(float(np.min(c)) for c, _ in curves)
  hi = max(float(np.max(c)) for c, _ in curves)
  grid = np.geomspace(lo, hi, num)
  best = np.full(num, np.inf)
  who = np.full(num, -1)
  for i, (c, l) in enumerate(curves):
    c, l = np.asarray(c, np.float64), np.asarray(l, np.float64)
    inside = (grid >= c.min()) & (grid <= c.max())
    interp = np.exp(np.interp(np.log(grid[inside]), np.log(c), np.log(l)))
    better = interp < best[inside]
    idx = np.flatnonzero(inside)[better]
    best[idx], who[idx] = interp[better], i
  keep = who >= 0
  return Frontier(grid[keep], best[keep], who[keep])


def holdout_prediction(x: Sequence[float], loss: Sequence[float], holdout: int = 2,
                       var: str = "N", floor: bool = False) -> dict:
  """Fits on all but the `holdout` largest x and predicts the loss at those."""
  order = np.argsort(x)
  x, loss = np.asarray(x, np.float64)[order], np.asarray(loss, np.float64)[order]
  fit = fit_power_law(x[:-holdout], loss[:-holdout], var=var, floor=floor)
  pred = fit.predict(x[-holdout:])
  se = fit.predict_log_stderr(x[-holdout:])
  return {"fit": fit, var: x[-holdout:], "actual": loss[-holdout:],
          "predicted": pred, "predicted_log_stderr": se,
          "relative_error": (pred - loss[-holdout:]) / loss[-holdout:]}


def bootstrap(fit_fn: Callable[..., Fit], *arrays, num: int = 500,
              seed: int = 0) -> dict[str, tuple[float, float, float]]:
  """Resamples points with replacement and refits: {name: (std, p2.5, p97.5)}."""
  arrays = [np.asarray(a) for a in arrays]
  rng = np.random.default_rng(seed)
  samples = []
  names = None
  for _ in range(num):
    idx = rng.integers(0, len(arrays[0]), len(arrays[0]))
    if len(np.unique(arrays[0][idx])) < 3:
      continue
    try:
      fit = fit_fn(*(a[idx] for a in arrays))
    except (RuntimeError, ValueError):
      continue
    names = fit.names
    samples.append(fit.values)
  if not samples:
    raise RuntimeError("bootstrap: no resample could be fitted")
  samples = np.array(samples)
  return {name: (float(samples[:, i].std(ddof=1)),
                 float(np.percentile(samples[:, i], 2.5)),
                 float(np.percentile(samples[:, i], 97.5)))
          for i, name in enumerate(names)}
