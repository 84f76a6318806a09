"""VLAE: the decoder's causal, local receptive field, the AF prior's density, the importance-
sampled NLL, dynamic binarization and data-parallel training."""
import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.vlae import get_config
from core.task import DataMissingError
from papers.vlae import data as vlae_data
from papers.vlae import model as vlae_model
from papers.vlae.task import VLAETask


def _random_variables(module, scale, *args, seed=0):
  """The module's parameters drawn from N(0, scale^2), zero-initialised layers included
  (shapes from an abstract init: compiling a flax init costs more than the whole test)."""
  shapes = vlae_model.nn.meta.unbox(jax.eval_shape(module.init, jax.random.key(0), *args))
  leaves, tree = jax.tree.flatten(shapes)
  keys = jax.random.split(jax.random.key(seed), len(leaves))
  return jax.tree.unflatten(tree, [scale * jax.random.normal(k, l.shape) for k, l in zip(keys, leaves)])


def _offsets(kernel, mask_type):
  mask = vlae_model.pixelcnn_mask(kernel, mask_type)
  c = kernel // 2
  return {(dy - c, dx - c) for dy, dx in zip(*np.nonzero(mask))}


def test_pixelcnn_output_depends_only_on_earlier_pixels_in_its_window():
  """The Jacobian of the logits w.r.t. the image: pixel (r, c)'s logit depends exactly on the
  pixels that the masks reach (a Minkowski sum of the masks' offsets, by brute force), all
  before (r, c) in raster order and within receptive_field() rows up and columns either side."""
  first, kernel, layers, size = 5, 3, 2, 12
  net = vlae_model.LocalPixelCNN(channels=4, first_kernel=first, kernel=kernel, num_layers=layers)
  x = jnp.asarray(np.random.default_rng(0).integers(0, 2, (1, size, size, 1)), jnp.float32)
  z = jnp.ones((1, 3))
  variables = _random_variables(net, 0.5, x, z)
  f = lambda flat: net.apply(variables, flat.reshape(x.shape), z).reshape(-1)
  jac = np.asarray(jax.jit(jax.jacfwd(f))(x.reshape(-1))).reshape(size, size, size, size)  # out r,c; in r',c'

  reach = _offsets(first, "A")
  for _ in range(layers):
    reach = {(a + c, b + d) for (a, b), (c, d) in itertools.product(reach, _offsets(kernel, "B"))}
  window = vlae_model.receptive_field(first, kernel, layers)
  assert window == 4 and max(-dy for dy, _ in reach) == window
  assert max(abs(dx) for _, dx in reach) == window
  for r, c in itertools.product(range(size), range(size)):
    seen = {(rr - r, cc - c) for rr, cc in zip(*np.nonzero(jac[r, c]))}
    assert all(dy < 0 or (dy == 0 and dx < 0) for dy, dx in seen), (r, c)  # strictly earlier
    assert all(-window <= dy and abs(dx) <= window for dy, dx in seen), (r, c)
    inside = {(dy, dx) for dy, dx in reach if 0 <= r + dy < size and 0 <= c + dx < size}
    assert seen == inside, (r, c)  # exactly the reachable pixels (borders cut off by padding)


def test_made_masks_make_output_i_depend_on_inputs_before_i():
  masks = vlae_model.made_masks(5, (7, 6))
  connected = masks[0]
  for m in masks[1:]:
    connected = (connected @ m) > 0
  np.testing.assert_array_equal(connected, np.triu(np.ones((5, 5)), k=1) > 0)


def test_af_prior_log_density_is_the_change_of_variables_and_sampling_inverts_it():
  dim = 4
  prior = vlae_model.AutoregressiveFlowPrior(num_layers=2, hidden=(8, 8))
  z = jnp.asarray(np.random.default_rng(1).normal(size=(3, dim)), jnp.float32)
  variables = _random_variables(prior, 0.3, z)
  forward = lambda v: prior.apply(variables, v[None], method=prior.forward)[0][0]
  log_prob = np.asarray(prior.apply(variables, z, method=prior.log_prob))
  eps_rows, jacobians = jax.jit(jax.vmap(lambda v: (forward(v), jax.jacfwd(forward)(v))))(z)
  for row in range(3):
    eps = np.asarray(eps_rows[row], np.float64)
    sign, log_det = np.linalg.slogdet(np.asarray(jacobians[row], np.float64))
    assert sign != 0
    expected = -0.5 * np.sum(eps ** 2 + math.log(2 * math.pi)) + log_det
    assert log_prob[row] == pytest.approx(expected, abs=1e-4)
  eps = prior.apply(variables, z, method=prior.forward)[0]
  np.testing.assert_allclose(prior.apply(variables, eps, method=prior.sample), z, atol=1e-4)


def _linear_gaussian_terms(x, a, s, q_mean, q_std):
  """One draw of a 1-D VAE: p(z) = N(0, 1), p(x|z) = N(a z, s^2), q(z|x) = N(q_mean(x), q_std^2)."""
  def normal(v, mean, std):
    return -0.5 * ((v - mean) / std) ** 2 - jnp.log(std) - 0.5 * math.log(2 * math.pi)

  def terms(key):
    z = q_mean + q_std * jax.random.normal(key, x.shape)
    return normal(x, a * z, s), normal(z, q_mean, q_std), normal(z, 0.0, 1.0)
  return terms


def test_importance_sampled_nll_matches_the_exact_likelihood_of_a_linear_gaussian_vae():
  a, s = 1.5, 0.5
  x = jnp.asarray([-2.0, 0.3, 1.7])
  exact = -0.5 * x ** 2 / (a * a + s * s) - 0.5 * np.log(2 * np.pi * (a * a + s * s))
  # With the exact posterior every weight equals p(x): the estimate is exact for any K.
  post_var = 1.0 / (1.0 + a * a / (s * s))
  exact_q = _linear_gaussian_terms(x, a, s, post_var * a * x / (s * s), math.sqrt(post_var))
  estimate, _ = vlae_model.importance_sampled_log_likelihood(exact_q, jax.random.key(0), 3)
  np.testing.assert_allclose(estimate, exact, atol=1e-5)
  # A poorer q: K = 1 is the ELBO, below log p(x) by KL(q || posterior) >= 0.16 nats here; the
  # bound tightens towards log p(x) as K grows. (K = 1 is averaged over 2,000 copies of x.)
  copies = jnp.tile(x, 2000)
  poor = lambda v: _linear_gaussian_terms(v, a, s, 0.5 * v, 0.45)
  one, _ = vlae_model.importance_sampled_log_likelihood(poor(copies), jax.random.key(1), 1)
  many, terms = vlae_model.importance_sampled_log_likelihood(poor(x), jax.random.key(2), 20000)
  assert np.all(np.asarray(one).reshape(2000, 3).mean(0) < exact - 0.1)
  # Within 4 standard errors of log p(x): the delta method's std(w) / (mean(w) sqrt(K)).
  w = np.exp(np.asarray(terms[0] + terms[2] - terms[1], np.float64))
  standard_error = w.std(0) / w.mean(0) / np.sqrt(w.shape[0])
  assert np.all(standard_error < 0.01)
  assert np.all(np.abs(np.asarray(many) - exact) < 4 * standard_error)


def test_dynamic_binarization_is_keyed_by_seed_step_and_image_index():
  images = np.random.default_rng(0).integers(0, 256, (3, 6, 6, 1)).astype(np.uint8)
  a = vlae_data.binarize(images, 0, 5, [10, 11, 12])
  np.testing.assert_array_equal(a, vlae_data.binarize(images, 0, 5, [10, 11, 12]))
  # Image 11's bits do not depend on its batch neighbours or position.
  np.testing.assert_array_equal(a[1], vlae_data.binarize(images[[1, 0]], 0, 5, [11, 10])[0])
  assert not np.array_equal(a, vlae_data.binarize(images, 0, 6, [10, 11, 12]))
  assert not np.array_equal(a, vlae_data.binarize(images, 1, 5, [10, 11, 12]))
  assert set(np.unique(a)) <= {0, 1}
  draws = np.mean([vlae_data.binarize(images[:1], 0, step, [0])[0] for step in range(2000)], axis=0)
  np.testing.assert_allclose(draws, images[0] / 255.0, atol=0.05)


def _digits_config():
  config = get_config()
  config.data.name = "digits"
  config.data.train_examples = 256
  config.data.test_examples = 16
  config.data.eval_batch_size = 16
  config.data.importance_samples = 3
  config.optimizer.name = "sgd"  # plain steps: parameter changes as precise as the gradients
  config.optimizer.learning_rate = 1e-3
  config.optimizer.schedule = "constant"
  return config


@pytest.fixture
def digits_or_skip():
  try:
    vlae_data.read_digits()
  except DataMissingError as e:
    pytest.skip(str(e))


def test_opencv_digits_split_and_missing_file(digits_or_skip, monkeypatch):  # pylint: disable=unused-argument,redefined-outer-name
  train, test = vlae_data.load_split("digits", "train"), vlae_data.load_split("digits", "test")
  assert train["images"].shape == (4000, 28, 28, 1) and test["images"].shape == (1000, 28, 28, 1)
  np.testing.assert_array_equal(np.bincount(test["labels"]), [100] * 10)
  assert train["images"][:, :4].max() == 0 and train["images"].max() > 200  # zero padding, ink
  task = VLAETask(_digits_config())
  batch = task.train_batch(3)
  np.testing.assert_array_equal(batch["images"], VLAETask(_digits_config()).train_batch(3)["images"])
  assert batch["images"].shape == (16, 28, 28, 1) and set(np.unique(batch["images"])) <= {0, 1}
  monkeypatch.setenv("OPENCV_DIGITS_PNG", "/nonexistent/digits.png")
  with pytest.raises(DataMissingError, match="apt-get install -y opencv-doc"):
    vlae_data.read_digits()


def test_data_parallel_training_and_evaluation_on_8_devices_equal_one_device(digits_or_skip):  # pylint: disable=unused-argument,redefined-outer-name
  from core.train import Trainer  # pylint: disable=g-import-not-at-top
  from core.train import TrainState  # pylint: disable=g-import-not-at-top
  one, eight = (Trainer(_digits_config(), devices=jax.devices()[:n]) for n in (1, 8))
  # Random parameters of the init's shapes, placed on both meshes (compiling the flax init
  # would cost more than the rest of the test).
  params = _random_variables(one.task.model, 0.05, jnp.zeros((1, 28, 28, 1)), jax.random.key(0))["params"]
  initial = TrainState(step=jnp.zeros((), jnp.int32), params=params, model_state={},
                       opt_state=one.tx.init(params))
  results = []
  for trainer in (one, eight):
    state = jax.device_put(jax.device_get(initial), trainer.state_shardings)
    state, history = trainer.run_steps(state, range(2))
    results.append((jax.device_get(state.params), float(history[-1]["loss"]), trainer.evaluate(state, 2)))
  (p1, loss_1, eval_1), (p8, loss_8, eval_8) = results
  assert loss_1 == pytest.approx(loss_8, rel=1e-5)
  for a, b, a0 in zip(jax.tree.leaves(p1), jax.tree.leaves(p8), jax.tree.leaves(jax.device_get(initial.params))):
    assert np.linalg.norm(a - b) <= 1e-3 * np.linalg.norm(a - a0) + 1e-7
  for name in ("nll", "neg_elbo", "kl", "recon"):
    assert eval_1[name] == pytest.approx(eval_8[name], rel=1e-5), name
  assert eval_1["nll"] <= eval_1["neg_elbo"]  # the K-sample bound is tighter than the ELBO
  assert eval_1["neg_elbo"] == pytest.approx(eval_1["recon"] + eval_1["kl"], rel=1e-5)
