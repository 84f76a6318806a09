"""Minimum description length of the weights (Hinton & van Camp 1993) on a task of the paper's
shape: few training cases (105), many inputs (128), a 4-hidden-unit network.

The data (generated, nothing to install; papers/mdl_weights/data.py): inputs x ~ N(0, I_128);
the target is a fixed "teacher" net that reads only `data.relevant` of the 128 inputs, plus
Gaussian noise of std `data.noise`; the 105 training and 1,024 test cases are fixed by the
seed. It stands in for the paper's data set of the same shape, which is not available offline;
a sparse teacher makes "simple" checkable: the code should find the few inputs that matter.

Objectives (`model.objective`), all in bits per training case:
  mdl  noisy weights; description length = KL(Q || prior) + expected misfit bits ("bits back").
       The prior is an adaptive mixture of `model.prior_components` Gaussians (1: one adaptive
       Gaussian), learned with the rest.
  ml   ordinary weights, maximum likelihood: the misfit bits alone.
  map  ordinary weights plus the penalty -log2 N(w; 0, model.decay_std^2): weight decay.
The output noise's std is learned in every case (for a fixed net its optimum is the RMS error).

The weight cost is switched on gradually in training (`model.kl_warmup_steps`: its coefficient
rises linearly from 0 to 1): started at full weight, every noisy weight fell onto the prior
before the net had fitted anything, leaving the no-network code (the trivial optimum). The
step count that drives it is the "schedule" collection, so a resumed run continues it; every
reported code length is at full weight.

The whole training set is every step's batch (`batch_size` >= `data.train_cases`; extra rows
carry weight 0, so the batch splits over a mesh's batch shards), since the description length
is a sum over all training cases.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from core.task import ConfigError, Task, ratio, spec
from core.validate import check_choice
from papers.mdl_weights import coding
from papers.mdl_weights.data import make_data, no_network_bits
from papers.mdl_weights.model import MEANS, NoisyMLP, posterior, predict_numpy

OBJECTIVES = ("mdl", "ml", "map")


class DescriptionLengthTask(Task):
  """A 128-4-1 net on 105 cases, trained for description length (mdl) or plainly (ml, map)."""
  supported_dtypes = ("float32",)
  model_state = ("schedule",)   # the update count, for the weight cost's warm-up

  def __init__(self, config):
    super().__init__(config)
    d, m = config.data, config.model
    check_choice(config, "model.objective", tuple(OBJECTIVES))
    for key, value in (("data.inputs", d.inputs), ("data.train_cases", d.train_cases),
                       ("data.test_cases", d.test_cases), ("data.teacher_hidden", d.teacher_hidden),
                       ("model.hidden", m.hidden), ("model.prior_components", m.prior_components)):
      if int(value) < 1:
        raise ConfigError(f"config.{key} must be >= 1, got {value}")
    if d.relevant < d.teacher_hidden or d.relevant % d.teacher_hidden or d.relevant > d.inputs:
      raise ConfigError(f"config.data.relevant ({d.relevant}) must be a multiple of "
                        f"data.teacher_hidden ({d.teacher_hidden}) and at most data.inputs ({d.inputs})")
    if config.batch_size < d.train_cases:
      raise ConfigError(f"config.batch_size ({config.batch_size}) must be >= data.train_cases "
                        f"({d.train_cases}): every step sees the whole training set")
    for key, value in (("data.noise", d.noise), ("data.precision", d.precision),
                       ("model.init_std", m.init_std), ("model.decay_std", m.decay_std)):
      if not value > 0:
        raise ConfigError(f"config.{key} must be > 0, got {value}")
    if m.kl_warmup_steps < 0:
      raise ConfigError(f"config.model.kl_warmup_steps must be >= 0 (0: no warm-up), got {m.kl_warmup_steps}")
    if int(config.optimizer.get("grad_accum_steps", 1)) != 1:
      raise ConfigError("config.optimizer.grad_accum_steps must be 1: every step is the whole training set")
    self.objective = m.objective
    self.model = NoisyMLP(hidden=m.hidden, noisy=self.objective == "mdl", init_std=m.init_std)

  @functools.cached_property
  def data(self):
    d = self.config.data
    data, teacher = make_data(self.config.seed, d.inputs, d.relevant, d.teacher_hidden, d.noise,
                              d.train_cases, d.test_cases)
    data["relevant"] = np.asarray(teacher[0])
    return data

  # ---- model ----------------------------------------------------------------
  def init(self, rng):
    net = self.model.init(rng, jnp.zeros((1, self.config.data.inputs), jnp.float32))["params"]
    params = {"net": net, "noise": {"log_std": jnp.zeros(())}}
    if self.objective == "mdl":
      k = int(self.config.model.prior_components)
      # Components spread over the initial weights' range; each then moves where weights gather.
      params["prior"] = {"logits": jnp.zeros((k,)),
                         "means": jnp.linspace(-0.5, 0.5, k) if k > 1 else jnp.zeros((1,)),
                         "log_stds": jnp.full((k,), math.log(0.3))}
    return {"params": params, "schedule": {"step": jnp.zeros((), jnp.int32)}}

  def weight_coefficient(self, variables):
    """The warm-up's coefficient of the weight cost: min(1, updates / model.kl_warmup_steps)."""
    warmup = self.config.model.kl_warmup_steps
    if not warmup:
      return jnp.ones(())
    return jnp.minimum(1.0, variables["schedule"]["step"].astype(jnp.float32) / warmup)

  def weight_nats(self, params):
    """KL(Q || prior) summed over all weights (mdl), else the weight-decay penalty (map) or 0."""
    if self.objective == "mdl":
      prior = params["prior"]
      stds = jnp.exp(prior["log_stds"])
      return sum(jnp.sum(coding.mixture_kl(mu, s, prior["logits"], prior["means"], stds))
                 for mu, s in posterior(params["net"]))
    if self.objective == "map":
      sq = sum(jnp.sum(jnp.square(params["net"][n])) for n in MEANS)
      return sq / (2.0 * self.config.model.decay_std ** 2)
    return jnp.zeros(())

  def _code(self, params, x, y, weight):
    """(weight nats, data nats, squared errors of the mean output) on weighted cases."""
    mean, var = self.model.apply({"params": params["net"]}, x)
    sq = jnp.square(mean - y)
    noise_std = jnp.exp(params["noise"]["log_std"])
    data = jnp.sum(weight * coding.gaussian_data_nats(sq + var, noise_std, self.config.data.precision))
    return self.weight_nats(params), data, sq

  def loss(self, variables, batch, rng, *, train):
    del rng  # deterministic: the expectation over the weight noise is computed, not sampled
    p = variables["params"]
    weights, data, sq = self._code(p, batch["x"], batch["y"], batch["weight"])
    n = self.config.data.train_cases
    beta = self.weight_coefficient(variables) if train else 1.0
    loss = (beta * weights + data) / (n * coding.LN2)
    metrics = {"data_bits": data / coding.LN2,
               "train_mse": jnp.sum(batch["weight"] * sq) / n,
               "noise_std": jnp.exp(p["noise"]["log_std"])}
    if self.objective == "mdl":
      metrics.update(weight_bits=weights / coding.LN2,
                     description_length_bits=(weights + data) / coding.LN2, weight_coefficient=beta)
    updates = {"schedule": {"step": variables["schedule"]["step"] + 1}} if train else {}
    return loss, metrics, updates

  # ---- data -----------------------------------------------------------------
  @functools.cached_property
  def _padded_train(self):
    """The training set padded to the batch size: the same arrays every step (read only)."""
    b, n = self.config.batch_size, self.config.data.train_cases
    x = np.zeros((b, self.config.data.inputs), np.float32)
    y, w = np.zeros(b, np.float32), np.zeros(b, np.float32)
    x[:n], y[:n], w[:n] = self.data["train_x"], self.data["train_y"], 1.0
    for array in (x, y, w):
      array.flags.writeable = False
    return {"x": x, "y": y, "weight": w}

  def batch_spec(self):
    b, d = self.config.batch_size, self.config.data.inputs
    return {"x": spec((b, d), np.float32), "y": spec((b,), np.float32),
            "weight": spec((b,), np.float32)}

  def train_batch(self, step):
    del step  # the whole (fixed) training set, every step
    return self._padded_train

  def eval_batches(self):
    train = self._padded_train
    return [{"train_x": train["x"], "train_y": train["y"], "train_weight": train["weight"],
             "test_x": self.data["test_x"], "test_y": self.data["test_y"]}]

  # ---- evaluation -----------------------------------------------------------
  def eval_metrics(self, variables, batch):
    """Code lengths on the training set (mdl: the bits-back description length), test error of
    the expected output (mdl) or the net (ml, map)."""
    p = variables["params"]
    weights, data, sq = self._code(p, batch["train_x"], batch["train_y"], batch["train_weight"])
    n = self.config.data.train_cases
    mean, _ = self.model.apply({"params": p["net"]}, batch["test_x"])
    test_sq = jnp.square(mean - batch["test_y"])
    test_var = jnp.var(batch["test_y"])
    out = {"test_mse": ratio(test_sq.sum(), test_sq.size),
           "test_relative_error": ratio(test_sq.mean() / test_var, 1.0),
           "train_mse": ratio(jnp.sum(batch["train_weight"] * sq), n),
           "data_bits": ratio(data / coding.LN2, 1.0)}
    if self.objective == "mdl":
      out["weight_bits"] = ratio(weights / coding.LN2, 1.0)
      out["description_length_bits"] = ratio((weights + data) / coding.LN2, 1.0)
    return out

  def evaluate(self, variables, step):
    """The quantised two-part code of the (mean) weights, for every objective; for the plain nets
    it is their description length. Also: no-network baseline bits and, for mdl, how many weights
    carry more than one bit (the others sit on the prior: pruned)."""
    del step
    net = jax.device_get(variables["params"]["net"])
    means = {n: np.asarray(net[n], np.float64) for n in MEANS}
    flat, unravel = ravel_pytree(means)
    x, y = self.data["train_x"].astype(np.float64), self.data["train_y"].astype(np.float64)
    c = self.config
    code = coding.two_part_code(np.asarray(flat), lambda w: predict_numpy(unravel(w), x) - y,
                                c.data.train_cases, c.data.precision, int(c.model.prior_components))
    out = {"two_part_bits": code["bits"], "two_part_weight_bits": code["weight_bits"],
           "two_part_data_bits": code["data_bits"], "two_part_delta": code["delta"],
           "baseline_bits": no_network_bits(y, c.data.precision)}
    if self.objective == "mdl":
      p = jax.device_get(variables["params"])
      prior = p["prior"]
      kl = [coding.mixture_kl(mu, s, prior["logits"], prior["means"], jnp.exp(prior["log_stds"]))
            for mu, s in posterior(p["net"])]
      out["weights_over_1_bit"] = float(sum(int(jnp.sum(k > coding.LN2)) for k in kl))
      # Inputs the net reads: those with a first-layer weight over 1 bit (kl[0] is w1's).
      used = np.flatnonzero(np.asarray(kl[0] > coding.LN2).any(1))
      relevant = set(self.data["relevant"].tolist())
      out["relevant_inputs_used"] = float(len(relevant.intersection(used.tolist())))
      out["irrelevant_inputs_used"] = float(len(set(used.tolist()) - relevant))
    else:
      out.update(description_length_bits=code["bits"], weight_bits=code["weight_bits"],
                 data_bits=code["data_bits"])
    return out
