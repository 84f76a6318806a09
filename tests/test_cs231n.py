"""CS231n: losses against the course's naive loops, numerical gradient checks in float64 (the
course's backward passes are jax.grad here), kNN against brute force, batch-norm running
statistics, inverted dropout, and 8 devices training the convnet as one does."""
import chex
import flax.linen as nn
import jax
import jax.flatten_util
import jax.numpy as jnp
import numpy as np
import pytest

from configs.cs231n import get_config
from core import image_data
from core.task import ConfigError
from papers.cs231n import layers
from papers.cs231n.model import BatchNorm, Classifier
from papers.cs231n.task import CS231nTask
from tests.device_equality import train_on_one_and_on_eight

# ---- independent references: the course's naive implementations, in numpy loops -----------


def svm_loss_naive(W, X, y, reg):
  """assignment 1, linear_svm.py: loss and dW with explicit loops over rows and classes."""
  dW = np.zeros_like(W)
  loss = 0.0
  for i in range(X.shape[0]):
    scores = X[i] @ W
    for j in range(W.shape[1]):
      if j == y[i]:
        continue
      margin = scores[j] - scores[y[i]] + 1.0
      if margin > 0:
        loss += margin
        dW[:, j] += X[i]
        dW[:, y[i]] -= X[i]
  n = X.shape[0]
  return loss / n + reg * np.sum(W * W), dW / n + 2 * reg * W


def softmax_loss_naive(W, X, y, reg):
  """assignment 1, softmax.py: loss and dW with explicit loops."""
  dW = np.zeros_like(W)
  loss = 0.0
  for i in range(X.shape[0]):
    scores = X[i] @ W
    scores = scores - scores.max()
    probs = np.exp(scores) / np.exp(scores).sum()
    loss -= np.log(probs[y[i]])
    for j in range(W.shape[1]):
      dW[:, j] += (probs[j] - (j == y[i])) * X[i]
  n = X.shape[0]
  return loss / n + reg * np.sum(W * W), dW / n + 2 * reg * W


@pytest.mark.parametrize("name,naive", [("svm", svm_loss_naive), ("softmax", softmax_loss_naive)])
def test_linear_losses_and_their_gradients_equal_the_courses_naive_loops(name, naive):
  rng = np.random.default_rng(0)
  X, W = rng.normal(size=(7, 5)), rng.normal(size=(5, 4))
  y = rng.integers(0, 4, 7)
  reg = 0.1
  loss_fn = {"svm": layers.svm_loss, "softmax": layers.softmax_loss}[name]
  with jax.enable_x64(True):
    def total(w):
      return loss_fn(jnp.asarray(X) @ w, jnp.asarray(y)) + layers.l2_penalty({"kernel": w}, reg)
    loss, grad = jax.value_and_grad(total)(jnp.asarray(W))
  expected_loss, expected_grad = naive(W, X, y, reg)
  np.testing.assert_allclose(float(loss), expected_loss, rtol=1e-12)
  np.testing.assert_allclose(np.asarray(grad), expected_grad, rtol=1e-10, atol=1e-12)


# ---- numerical gradient checks (centred differences, float64) ----------------------------------


def numerical_gradient(f, x, h=1e-6):
  """(f(x + h e_i) - f(x - h e_i)) / 2h for every coordinate i (f jitted: one compile)."""
  flat, unravel = jax.flatten_util.ravel_pytree(x)
  f_flat = jax.jit(lambda v: f(unravel(v)))
  flat = np.asarray(flat)
  grad = np.zeros_like(flat)
  for i in range(flat.size):
    step = np.zeros_like(flat)
    step[i] = h
    grad[i] = (float(f_flat(flat + step)) - float(f_flat(flat - step))) / (2 * h)
  return unravel(jnp.asarray(grad))


def max_relative_error(a, b):
  """The course's rel_error: max |a - b| / max(1e-8, |a| + |b|), over every entry of two trees."""
  a, b = (jax.flatten_util.ravel_pytree(t)[0] for t in (a, b))
  return float(jnp.max(jnp.abs(a - b) / jnp.maximum(1e-8, jnp.abs(a) + jnp.abs(b))))


def check_gradient(f, x, tolerance=1e-6):
  with jax.enable_x64(True):
    x = jax.tree.map(lambda v: jnp.asarray(v, jnp.float64), x)
    error = max_relative_error(jax.jit(jax.grad(f))(x), numerical_gradient(f, x))
  assert error < tolerance, error


@pytest.mark.parametrize("loss_fn", [layers.svm_loss, layers.softmax_loss])
def test_linear_loss_gradients_pass_a_numerical_check(loss_fn):
  rng = np.random.default_rng(1)
  X, y = rng.normal(size=(6, 5)), rng.integers(0, 3, 6)
  check_gradient(lambda w: loss_fn(X @ w, y) + layers.l2_penalty({"kernel": w}, 0.05),
                 rng.normal(size=(5, 3)))


def model_loss(model, images, labels, state=None, dropout_rng=None):
  """Softmax loss of the model's scores as a function of its parameters, in training mode (batch
  norm on the batch's statistics; a fixed dropout rng draws the same mask at every evaluation)."""
  def f(params):
    if state:
      scores, _ = model.apply({"params": params, **state}, images, train=True,
                              rngs={"dropout": dropout_rng}, mutable=["batch_stats"])
    else:
      scores = model.apply({"params": params}, images, train=True)
    return layers.softmax_loss(scores, labels)
  return f


def init_plain(model, images):
  """float64 parameters and model state, without their logical-axis boxes."""
  variables = nn.meta.unbox(model.init(jax.random.key(0), jnp.asarray(images, jnp.float32)))
  variables = jax.tree.map(lambda v: np.asarray(v, np.float64), variables)
  return variables["params"], {k: v for k, v in variables.items() if k != "params"}


def test_two_layer_net_gradient_passes_a_numerical_check():
  rng = np.random.default_rng(2)
  images, labels = rng.normal(size=(4, 2, 3, 1)), rng.integers(0, 3, 4)
  model = Classifier(kind="two_layer", num_classes=3, hidden=5)
  params, _ = init_plain(model, images)
  check_gradient(model_loss(model, images, labels), params)


def test_convnet_with_batch_norm_and_dropout_gradient_passes_a_numerical_check():
  rng = np.random.default_rng(3)
  images, labels = rng.normal(size=(3, 4, 4, 1)), rng.integers(0, 3, 3)
  model = Classifier(kind="convnet", num_classes=3, hidden=4, channels=(2,), batchnorm=True,
                     dropout_keep=0.7)
  params, state = init_plain(model, images)
  check_gradient(model_loss(model, images, labels, state, jax.random.key(5)), params)


def test_batch_norm_gradient_passes_a_numerical_check_for_inputs_scale_and_shift():
  rng = np.random.default_rng(4)
  x, upstream = rng.normal(2.0, 3.0, size=(5, 3)), rng.normal(size=(5, 3))
  def f(args):  # sum(y * upstream): the backward pass of an upstream gradient, as the course checks
    y, _, _ = layers.batch_norm(args["x"], args["gamma"], args["beta"], jnp.zeros(3), jnp.ones(3),
                                train=True)
    return jnp.sum(y * upstream)
  check_gradient(f, {"x": x, "gamma": rng.normal(size=3), "beta": rng.normal(size=3)})


def test_dropout_gradient_with_a_fixed_mask_passes_a_numerical_check():
  rng = np.random.default_rng(5)
  x, upstream = rng.normal(size=(4, 6)), rng.normal(size=(4, 6))
  mask = np.asarray(layers.dropout_mask(jax.random.key(0), 0.6, (4, 6)), np.float64)
  check_gradient(lambda v: jnp.sum(layers.dropout(v, 0.6, train=True, mask=mask) ** 2 * upstream), x)


# ---- k-nearest neighbour against brute force --------------------------------------------------


def knn_brute_force(train_x, train_y, test_x, k, metric):
  """The course's compute_distances_two_loops + predict_labels."""
  predictions = []
  for q in test_x:
    distances = [np.abs(q - r).sum() if metric == "l1" else np.sqrt(((q - r) ** 2).sum())
                 for r in train_x]
    closest = train_y[np.argsort(distances, kind="stable")[:k]]
    predictions.append(np.argmax(np.bincount(closest, minlength=4)))
  return np.array(predictions)


@pytest.mark.parametrize("metric", ["l1", "l2"])
def test_knn_predictions_and_distances_equal_brute_force(metric):
  rng = np.random.default_rng(6)
  train_x, test_x = rng.integers(0, 256, (40, 12)).astype(np.float32), rng.integers(0, 256, (9, 12))
  train_y = rng.integers(0, 4, 40)
  brute = np.array([[np.abs(q - r).sum() if metric == "l1" else np.linalg.norm(q - r)
                     for r in train_x] for q in test_x.astype(np.float64)])
  np.testing.assert_allclose(layers.pairwise_distances(test_x.astype(np.float32), train_x, metric),
                             brute, rtol=1e-4)
  neighbours = layers.nearest_labels(test_x, train_x, train_y, 5, metric, chunk=4)  # 3 chunks
  for k in (1, 3, 5):
    np.testing.assert_array_equal(layers.vote(neighbours, k, 4),
                                  knn_brute_force(train_x, train_y, test_x.astype(np.float64), k,
                                                  metric))


def test_knn_cross_validation_scores_each_fold_against_the_others():
  rng = np.random.default_rng(7)
  x, y = rng.normal(size=(30, 4)).astype(np.float32), rng.integers(0, 4, 30)
  best, accuracies = layers.cross_validate_k(x, y, ks=(1, 3), num_folds=3, num_classes=4, chunk=7)
  for fold in range(3):
    held = np.arange(30)[fold * 10:(fold + 1) * 10]
    rest = np.setdiff1d(np.arange(30), held)
    for k in (1, 3):
      expected = (knn_brute_force(x[rest], y[rest], x[held], k, "l2") == y[held]).mean()
      assert accuracies[k][fold] == pytest.approx(expected)
  assert best == max((1, 3), key=lambda k: (np.mean(accuracies[k]), -k))


# ---- batch norm and dropout against numpy -----------------------------------------------------


def test_batch_norm_running_statistics_and_modes_equal_numpy():
  rng = np.random.default_rng(8)
  batches = [rng.normal(3.0, 2.0, size=(6, 2, 2, 3)).astype(np.float32) for _ in range(3)]
  module = BatchNorm(momentum=0.9)
  variables = module.init(jax.random.key(0), batches[0], train=False)
  apply = jax.jit(module.apply, static_argnames=("train", "mutable"))  # mutable: a tuple
  mean, var = np.zeros(3), np.ones(3)
  for x in batches:
    y, updates = apply(variables, x, train=True, mutable=("batch_stats",))
    # Spatial batch norm: each channel over batch, height and width; the biased variance.
    batch_mean, batch_var = x.mean((0, 1, 2)), x.var((0, 1, 2))
    np.testing.assert_allclose(y, (x - batch_mean) / np.sqrt(batch_var + 1e-5), rtol=1e-4, atol=1e-5)
    mean, var = 0.9 * mean + 0.1 * batch_mean, 0.9 * var + 0.1 * batch_var
    variables = {**variables, **updates}
    np.testing.assert_allclose(variables["batch_stats"]["mean"], mean, rtol=1e-5)
    np.testing.assert_allclose(variables["batch_stats"]["var"], var, rtol=1e-5)
  # Evaluation mode normalises by the running averages and leaves them alone.
  y = apply(variables, batches[0], train=False)
  np.testing.assert_allclose(y, (batches[0] - mean) / np.sqrt(var + 1e-5), rtol=1e-4, atol=1e-5)


def test_inverted_dropout_keeps_the_expected_value_and_is_the_identity_at_test_time():
  x = jnp.linspace(1.0, 2.0, 1000).reshape(10, 100)
  keep = 0.3
  outs = jax.vmap(lambda key: layers.dropout(x, keep, train=True, rng=key))(
      jax.random.split(jax.random.key(0), 400))
  kept = np.asarray(outs) != 0
  # Kept units are exactly x / keep; about `keep` of them survive; the mean over draws is x.
  np.testing.assert_allclose(np.asarray(outs)[kept], np.broadcast_to(x / keep, outs.shape)[kept],
                             rtol=1e-6)
  assert kept.mean() == pytest.approx(keep, abs=0.005)
  # 400 draws of a Bernoulli(0.3) / 0.3: the mean's standard error is 0.076 x; averaged over
  # 1000 units it is 0.0024 x.
  assert float(np.mean(np.asarray(outs).mean(0) / np.asarray(x))) == pytest.approx(1.0, abs=0.01)
  np.testing.assert_array_equal(layers.dropout(x, keep, train=False), x)


# ---- the task on 8 devices ----------------------------------------------------------------------


@pytest.fixture
def random_images(monkeypatch):
  """Random uint8 images in place of Fashion-MNIST: the test is about sharding, not the data."""
  def load(name, split, data_dir=None):
    del data_dir
    rng = np.random.default_rng(0 if split == "train" else 1)
    n = 64 if split == "train" else 24
    return {"images": rng.integers(0, 256, (n, *image_data.IMAGE_SHAPE[name])).astype(np.uint8),
            "labels": rng.integers(0, 10, n).astype(np.int32)}
  monkeypatch.setattr(image_data, "load_images", load)


def tiny_convnet(**mesh):
  config = get_config("convnet")
  config.model.channels = (4,)
  config.model.hidden = 16
  config.batch_size = 16
  config.data.eval_train_examples = 16
  config.data.eval_batch_size = 16
  config.mesh.update(mesh)
  return config


def test_convnet_training_on_8_devices_equals_one_device(random_images):
  """2 steps (batch norm on the global batch, dropout, L2 penalty, Adam) on a data=2, fsdp=2,
  tensor=2 mesh and on one device: the same losses, running statistics and parameters."""
  (init_1, state_1, losses_1), (init_8, state_8, losses_8) = train_on_one_and_on_eight(
      lambda mesh: tiny_convnet(**mesh), dict(data=2, fsdp=2, tensor=2))
  chex.assert_trees_all_close(init_1.params, init_8.params)
  np.testing.assert_allclose(losses_1, losses_8, rtol=1e-5)
  assert not np.allclose(state_1.model_state["batch_stats"]["conv1_bn"]["mean"], 0)
  chex.assert_trees_all_close(state_1.model_state, state_8.model_state, rtol=1e-4, atol=1e-6)
  # What training changed, as a whole: float reassociation across shards leaves ~1e-5 relative
  # differences (Adam's first steps, lr * g / |g|, magnify them where a gradient is tiny); batch
  # statistics per device, another dropout mask or a dropped shard would change it by percents.
  steps = [np.concatenate([(p - p0).ravel() for p, p0 in zip(jax.tree.leaves(state.params),
                                                             jax.tree.leaves(init_1.params))])
           for state in (state_1, state_8)]
  assert np.linalg.norm(steps[0]) > 0
  assert np.linalg.norm(steps[0] - steps[1]) <= 1e-3 * np.linalg.norm(steps[0])


def test_bad_model_settings_are_config_errors():
  for key, value in (("kind", "resnet"), ("loss", "hinge2"), ("dropout_keep", 0.0)):
    config = get_config("two_layer")
    config.model[key] = value
    with pytest.raises(ConfigError, match=key):
      CS231nTask(config)
