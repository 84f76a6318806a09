"""The network of Hinton & van Camp (1993): one hidden layer of logistic units, a linear output,
every weight and bias a Gaussian with its own mean and standard deviation.

With the inputs fixed, each hidden unit's total input is a sum of independent Gaussians, so it
is Gaussian; its output's mean and variance follow by quadrature, and the linear output's mean
and variance are then exact (the hidden units are independent: no weight is shared between
them). So the expected squared error, and with it the expected misfit in bits, needs no
sampling. `noisy=False` is the same network with ordinary weights (variance 0).
"""
from __future__ import annotations

import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from papers.mdl_weights.coding import logistic_moments

MEANS = ("w1", "b1", "w2", "b2")   # the names of the weights' means; "<name>_logstd" their spreads


class NoisyMLP(nn.Module):
  """x [B, D] -> (mean [B], variance [B]) of the output under the weight noise."""
  hidden: int = 4
  noisy: bool = True
  init_std: float = 0.01  # the weights' initial standard deviation (small: near an ordinary net)

  @nn.compact
  def __call__(self, x):
    d, h = x.shape[-1], self.hidden
    w1 = self.param("w1", nn.initializers.normal(1.0 / math.sqrt(d)), (d, h))
    b1 = self.param("b1", nn.initializers.zeros, (h,))
    w2 = self.param("w2", nn.initializers.normal(1.0 / math.sqrt(h)), (h,))
    b2 = self.param("b2", nn.initializers.zeros, ())
    h_mean = x @ w1 + b1
    if not self.noisy:
      y = jax.nn.sigmoid(h_mean)
      return y @ w2 + b2, jnp.zeros(x.shape[:-1], x.dtype)
    log_init = nn.initializers.constant(math.log(self.init_std))
    v1, vb1, v2, vb2 = (jnp.exp(2.0 * self.param(f"{n}_logstd", log_init, p.shape))
                        for n, p in zip(MEANS, (w1, b1, w2, b2)))
    h_var = (x * x) @ v1 + vb1
    ey, ey2 = logistic_moments(h_mean, h_var)
    # Var(w y) = s^2 E[y^2] + mu^2 Var(y) for independent w and y.
    out_var = ey2 @ v2 + (ey2 - ey * ey) @ (w2 * w2) + vb2
    return ey @ w2 + b2, out_var


def posterior(net_params) -> list[tuple[jax.Array, jax.Array]]:
  """(mean, std) of every weight group of a noisy net's parameters."""
  return [(net_params[n], jnp.exp(net_params[f"{n}_logstd"])) for n in MEANS]


def predict_numpy(means, x: np.ndarray) -> np.ndarray:
  """The net with ordinary weights `means` (a dict of MEANS), in float64 numpy."""
  w1, b1, w2, b2 = (np.asarray(means[n], np.float64) for n in MEANS)
  return (1.0 / (1.0 + np.exp(-(x @ w1 + b1)))) @ w2 + b2
