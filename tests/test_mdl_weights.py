"""papers/mdl_weights: the code lengths against numpy/scipy formulas, the noisy net's moments
against sampling, the data generator, a short run that shortens the description length, and
config errors."""
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, stats

from core.config import load_config
from core.task import ConfigError, load_task
from papers.mdl_weights import coding
from papers.mdl_weights.model import NoisyMLP

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = os.path.join(ROOT, "configs", "mdl_weights.py")


def _config(variant="mdl", *overrides):
  return load_config(f"{CONFIG}:{variant}", list(overrides))


def test_gaussian_kl_matches_closed_form_and_one_component_mixture():
  rng = np.random.default_rng(0)
  mu, s = rng.normal(size=20), np.exp(rng.normal(size=20) - 1)
  pm, ps = 0.3, 0.7
  want = np.log(ps / s) + (s ** 2 + (mu - pm) ** 2) / (2 * ps ** 2) - 0.5
  got = coding.gaussian_kl(jnp.asarray(mu), jnp.asarray(s), pm, ps)
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  one = coding.mixture_kl(jnp.asarray(mu), jnp.asarray(s), jnp.zeros(1), jnp.full(1, pm), jnp.full(1, ps))
  np.testing.assert_allclose(one, want, rtol=1e-4, atol=1e-4)


def test_mixture_code_bounds_the_exact_kl():
  logits, means, stds = np.array([0.5, 0.0, -1.0]), np.array([-1.0, 0.0, 0.8]), np.array([0.2, 0.05, 0.5])
  pi = np.exp(logits) / np.exp(logits).sum()
  for mu, s in ((0.0, 0.01), (0.7, 0.3), (-1.2, 0.1), (0.0, 1.0)):
    q = stats.norm(mu, s)
    integrand = lambda w, q=q: q.pdf(w) * (q.logpdf(w) - np.log((pi * stats.norm.pdf(w, means, stds)).sum()))
    want, _ = integrate.quad(integrand, mu - 12 * s, mu + 12 * s, points=[mu], limit=200)
    got = coding.mixture_kl(jnp.asarray(mu), jnp.asarray(s), jnp.asarray(logits), jnp.asarray(means),
                            jnp.asarray(stds))
    # An upper bound (a usable code); tight while q sits within one component.
    assert float(got) >= want - 1e-5, (mu, s, float(got), want)
    if s <= 0.1:
      assert float(got) - want < 0.05, (mu, s, float(got), want)
  # Far from the other components, the bound is the KL to the nearest one.
  far = coding.mixture_kl(jnp.asarray(5.0), jnp.asarray(0.1), jnp.zeros(2), jnp.asarray([5.0, -5.0]),
                          jnp.asarray([0.2, 0.2]))
  want = float(coding.gaussian_kl(5.0, 0.1, 5.0, 0.2)) + math.log(2)
  assert abs(float(far) - want) < 1e-5


def test_noisy_net_moments_match_sampling():
  rng = np.random.default_rng(1)
  x = rng.normal(size=(3, 6)).astype(np.float32)
  model = NoisyMLP(hidden=4, init_std=0.3)
  params = model.init(jax.random.key(0), jnp.asarray(x))["params"]
  params = jax.tree.map(lambda p: p + 0.1 * jnp.asarray(rng.normal(size=p.shape), jnp.float32), params)
  mean, var = model.apply({"params": params}, jnp.asarray(x))
  p = jax.tree.map(np.asarray, params)
  draws = 200_000
  def sample(name):
    return p[name] + np.exp(p[f"{name}_logstd"]) * rng.normal(size=(draws,) + p[name].shape)
  w1, b1, w2, b2 = (sample(n) for n in ("w1", "b1", "w2", "b2"))
  hidden = 1 / (1 + np.exp(-(np.einsum("bd,ndh->nbh", x, w1) + b1[:, None])))
  out = np.einsum("nbh,nh->nb", hidden, w2) + b2[:, None]
  np.testing.assert_allclose(mean, out.mean(0), atol=4 * out.std(0).max() / math.sqrt(draws) + 1e-4)
  np.testing.assert_allclose(var, out.var(0), rtol=0.02)


def test_data_bits_and_two_part_code():
  # -log2(t N(d; y, s^2)) against scipy.
  got = coding.gaussian_data_nats(jnp.asarray(0.25), jnp.asarray(0.7), 0.01) / coding.LN2
  want = -np.log2(0.01 * stats.norm.pdf(0.5, 0.0, 0.7))
  assert abs(float(got) - want) < 1e-4
  # A cell's bits approach -log2(delta p(w)) for a small delta and never go below 0.
  pi, means, stds = np.array([0.7, 0.3]), np.array([0.0, 1.0]), np.array([0.1, 0.3])
  w = np.array([0.05, 0.9])
  small = coding.cell_bits(w, 1e-4, pi, means, stds)
  density = (pi * stats.norm.pdf(w[:, None], means, stds)).sum(1)
  np.testing.assert_allclose(small, -np.log2(1e-4 * density), rtol=1e-6)
  assert np.all(coding.cell_bits(np.zeros(3), 100.0, pi, means, stds) >= 0)
  # EM recovers a clear two-cluster mixture.
  sample = np.concatenate([np.random.default_rng(2).normal(0, 0.01, 400),
                           np.random.default_rng(3).normal(1, 0.01, 100)])
  pi, means, _ = coding.fit_mixture(sample, 2)
  order = np.argsort(means)
  np.testing.assert_allclose(means[order], [0, 1], atol=0.01)
  np.testing.assert_allclose(pi[order], [0.8, 0.2], atol=0.01)


def test_data_is_fixed_by_the_seed_and_depends_on_the_relevant_inputs_only():
  task = load_task(_config())
  again = load_task(_config())
  for key in ("train_x", "train_y", "test_x", "test_y"):
    np.testing.assert_array_equal(task.data[key], again.data[key])
  assert task.data["train_x"].shape == (105, 128) and task.data["test_y"].shape == (1024,)
  from papers.mdl_weights.data import make_teacher, teacher_signal
  from core.task import heldout_rng
  teacher = make_teacher(heldout_rng(0, 1), 128, 8, 2)
  x = np.random.default_rng(0).normal(size=(5, 128))
  moved = x.copy()
  others = np.setdiff1d(np.arange(128), teacher[0])
  moved[:, others] += 5.0
  np.testing.assert_allclose(teacher_signal(teacher, x), teacher_signal(teacher, moved))
  # The padded batch: every training case once, with weight 1; padding with weight 0.
  batch = task.train_batch(7)
  assert batch["x"].shape[0] == 108 and batch["weight"].sum() == 105 and batch["weight"][105:].sum() == 0


def test_short_training_shortens_the_description_length():
  from core.train import Trainer
  config = _config("mdl", "--config.mesh.data=1", "--config.model.kl_warmup_steps=100")
  trainer = Trainer(config, devices=jax.devices()[:1])
  state = trainer.init_state()
  before = trainer.evaluate(state, 0)
  state, history = trainer.run_steps(state, range(200))
  after = trainer.evaluate(state, 200)
  assert after["description_length_bits"] < before["description_length_bits"] - 100, (before, after)
  assert after["test_mse"] < before["test_mse"]
  assert history[-1]["weight_coefficient"] == 1.0 and history[0]["weight_coefficient"] == 0.0
  # The eval code length is the training objective at full weight, in bits.
  assert abs(history[-1]["loss"] * 105 - history[-1]["description_length_bits"]) < 1e-2 * 105


@pytest.mark.parametrize("flag, fragment", [
    ("--config.model.objective=bayes", "model.objective"),
    ("--config.batch_size=64", "batch_size"),
    ("--config.data.relevant=7", "data.relevant"),
    ("--config.data.precision=0.0", "data.precision"),
    ("--config.model.prior_components=0", "model.prior_components"),
    ("--config.model.kl_warmup_steps=-1", "kl_warmup_steps"),
])
def test_bad_config_values_give_one_line_errors(flag, fragment):
  with pytest.raises(ConfigError) as info:
    load_task(_config("mdl", flag))
  assert fragment in str(info.value) and "\n" not in str(info.value)


def test_unknown_variant_is_a_config_error():
  with pytest.raises(ConfigError, match="unknown variant"):
    _config("bayes")
