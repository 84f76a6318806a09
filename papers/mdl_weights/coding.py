"""Code lengths of Hinton & van Camp (1993): bits of noisy weights under an adaptive prior, bits
of the data misfit, and a quantised two-part code for a network with ordinary (exact) weights.

Every function here is pure. The jax ones are differentiated by training; the numpy ones
score a finished network on the host. Lengths are in nats inside, bits at the edges
(`/ LN2`), as the paper counts in bits.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from scipy import special, stats

LN2 = math.log(2.0)
LOG_2PI = math.log(2.0 * math.pi)

# Gauss-Hermite (probabilists') nodes: E[f(z)], z ~ N(0, 1), ~= sum_i weights_i f(nodes_i).
# Exact for polynomials of degree < 64; the logistic is smooth and bounded, so 32 nodes give its
# moments to float32 precision (tested against sampling).
_NODES, _WEIGHTS = np.polynomial.hermite_e.hermegauss(32)
_WEIGHTS = _WEIGHTS / math.sqrt(2.0 * math.pi)


def logistic_moments(mean, var):
  """(E[s(x)], E[s(x)^2]) for x ~ N(mean, var) and the logistic s: the hidden units' outputs,
  by quadrature, so that their gradients come with them."""
  z = jnp.asarray(_NODES, jnp.float32)
  w = jnp.asarray(_WEIGHTS, jnp.float32)
  s = jax.nn.sigmoid(mean[..., None] + jnp.sqrt(var)[..., None] * z)
  return jnp.sum(s * w, -1), jnp.sum(s * s * w, -1)


def gaussian_kl(mean, std, prior_mean, prior_std):
  """KL(N(mean, std^2) || N(prior_mean, prior_std^2)) in nats, elementwise."""
  return (jnp.log(prior_std / std) + (std ** 2 + (mean - prior_mean) ** 2) / (2 * prior_std ** 2)
          - 0.5)


def mixture_log_density(w, logits, means, stds):
  """log sum_k pi_k N(w; means_k, stds_k^2), pi = softmax(logits), elementwise in w."""
  log_pi = jax.nn.log_softmax(logits)
  log_n = -0.5 * (((w[..., None] - means) / stds) ** 2 + LOG_2PI) - jnp.log(stds)
  return jax.nn.logsumexp(log_pi + log_n, axis=-1)


def mixture_kl(mean, std, logits, means, stds):
  """The bits-back cost of N(mean, std^2) under a mixture prior, in nats, elementwise:
  -log sum_k pi_k exp(-KL(q || N(means_k, stds_k^2))).

  KL(q || mixture) has no closed form. This is the length of a code that can be used: the
  sender picks the component k by bits-back (drawn from pi_k exp(-KL_k), normalised) and codes
  the weight under it, so it is an upper bound on the KL: above it by the expected divergence
  between that choice and the component posterior p(k | w), w ~ q, which is ~0 while q sits
  within one component; equal to the KL for one component.
  Quadrature of the cross entropy was not used: with a posterior wider than a narrow component,
  32-128 Gauss-Hermite nodes missed by up to 0.4 nats either way, an error training could exploit.
  """
  log_pi = jax.nn.log_softmax(logits)
  return -jax.nn.logsumexp(log_pi - gaussian_kl(mean[..., None], std[..., None], means, stds), -1)


def gaussian_data_nats(sq_error, noise_std, precision):
  """-log(precision * N(target; output, noise_std^2)) per case, given its (expected) squared error:
  the cost of a target quantised to `precision`, coded with Gaussian output noise."""
  return (-math.log(precision) + 0.5 * LOG_2PI + jnp.log(noise_std)
          + sq_error / (2.0 * noise_std ** 2))


# ---- the two-part code of exact weights (numpy, host side) ----------------------------------

def fit_mixture(w: np.ndarray, components: int, iterations: int = 200, min_std: float = 1e-4):
  """A mixture of Gaussians fit to the weights `w` by EM: (proportions, means, stds)."""
  w = np.asarray(w, np.float64).ravel()
  pi = np.full(components, 1.0 / components)
  means = np.quantile(w, (np.arange(components) + 0.5) / components)
  stds = np.full(components, max(float(np.std(w)), min_std))
  for _ in range(iterations):
    log_r = np.log(pi) + stats.norm.logpdf(w[:, None], means, stds)
    r = np.exp(log_r - special.logsumexp(log_r, axis=1, keepdims=True))
    total = r.sum(0) + 1e-12
    pi = total / len(w)
    means = (r * w[:, None]).sum(0) / total
    stds = np.sqrt((r * (w[:, None] - means) ** 2).sum(0) / total)
    stds = np.maximum(stds, min_std)
  return pi, means, stds


def cell_bits(w_rounded: np.ndarray, delta: float, pi, means, stds) -> np.ndarray:
  """-log2 P(cell) for each rounded weight: the mixture's mass on [w - delta/2, w + delta/2]."""
  w = np.asarray(w_rounded, np.float64).ravel()[:, None]
  mass = (pi * (stats.norm.cdf((w + delta / 2 - means) / stds)
                - stats.norm.cdf((w - delta / 2 - means) / stds))).sum(1)
  return -np.log2(np.maximum(mass, 1e-300))


def two_part_code(weights: np.ndarray, residual_fn, num_cases: int, precision: float,
                  components: int, deltas=tuple(2.0 ** -k for k in range(1, 17))) -> dict:
  """The best quantised two-part code over the grid spacings `deltas`.

  Each weight is rounded to a multiple of delta and sent at -log2 P(cell) bits under a
  mixture fit to the weights by EM (its few parameters, and the choice of delta out of
  len(deltas), cost log2 len(deltas) bits: the mixture is not charged, as for the noisy net);
  the targets are then sent with Gaussian noise of the rounded net's mean squared error
  (its best variance). `residual_fn(rounded_weights)` returns the training residuals.
  """
  pi, means, stds = fit_mixture(weights, components)
  best = None
  for delta in deltas:
    rounded = np.round(weights / delta) * delta
    weight_bits = float(cell_bits(rounded, delta, pi, means, stds).sum()) + math.log2(len(deltas))
    mse = max(float(np.mean(np.square(residual_fn(rounded)))), 1e-12)
    data_bits = num_cases * (-math.log(precision) + 0.5 * (LOG_2PI + 1.0 + math.log(mse))) / LN2
    row = {"bits": weight_bits + data_bits, "weight_bits": weight_bits, "data_bits": data_bits,
           "delta": delta}
    if best is None or row["bits"] < best["bits"]:
      best = row
  return best
