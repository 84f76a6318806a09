"""AlexNet: LRN, the two-tower convolutions, the paper's augmentation, ImageNet shapes, 8 devices."""
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.alexnet import get_config
from core import image_data
from core.train import strip_boxes
from papers.alexnet import augment as aug
from papers.alexnet.model import AlexNet, Model, local_response_norm
from papers.alexnet.task import AlexNetTask
from tests.device_equality import train_on_one_and_on_eight


def lrn_loop(a, n=5, k=2.0, alpha=1e-4, beta=0.75):
  """Section 3.3 written out map by map."""
  b = np.empty_like(a)
  channels = a.shape[-1]
  for i in range(channels):
    lo, hi = max(0, i - n // 2), min(channels - 1, i + n // 2)
    total = sum(a[..., j] ** 2 for j in range(lo, hi + 1))
    b[..., i] = a[..., i] / (k + alpha * total) ** beta
  return b


def test_local_response_norm_equals_the_papers_formula():
  # Large activations, so the alpha term matters (|a| ~ 30: alpha * sum a^2 ~ 0.5 against k = 2).
  a = np.random.default_rng(0).normal(0, 30, size=(2, 3, 3, 12)).astype(np.float64)
  both = jax.jit(lambda x: (local_response_norm(x), local_response_norm(x, groups=2)))
  got, got2 = (np.asarray(y) for y in both(jnp.asarray(a, jnp.float32)))
  np.testing.assert_allclose(got, lrn_loop(a), rtol=1e-5)
  # Two towers: each half of the maps is normalised on its own.
  expected2 = np.concatenate([lrn_loop(a[..., :6]), lrn_loop(a[..., 6:])], axis=-1)
  np.testing.assert_allclose(got2, expected2, rtol=1e-5)
  assert not np.allclose(got2, got)


def conv_same(x, w, b):
  """A stride-1 SAME convolution by hand (odd kernel), NHWC x HWIO."""
  k = w.shape[0]
  xp = np.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
  out = np.zeros(x.shape[:3] + (w.shape[-1],))
  for dy in range(k):
    for dx in range(k):
      out += np.einsum("nhwc,cf->nhwf", xp[:, dy:dy + x.shape[1], dx:dx + x.shape[2]], w[dy, dx])
  return out + b


def test_two_tower_network_equals_two_separate_towers_by_hand():
  """towers=2: conv2 of each tower reads only its own conv1 maps; conv3 reads both towers."""
  net = AlexNet(conv_features=(4, 6, 4, 4, 4), conv_kernels=(3, 3, 3, 3, 3), conv1_stride=1,
                conv1_padding="SAME", dense_features=(4, 4), num_classes=3, lrn=False,
                pool_padding="SAME", towers=2)
  x = np.random.default_rng(0).normal(size=(1, 8, 8, 3)).astype(np.float32)
  # Random weights and biases of the model's shapes (no init compile; non-zero biases too).
  shapes = strip_boxes(jax.eval_shape(net.init, jax.random.key(0), jnp.asarray(x)))["params"]
  rng = np.random.default_rng(1)
  params = jax.tree.map(lambda s: rng.normal(0, 0.5, s.shape).astype(np.float32), shapes)
  assert params["conv2"]["kernel"].shape == (3, 3, 2, 6)   # 4 input maps / 2 towers
  assert params["conv3"]["kernel"].shape == (3, 3, 6, 4)   # crosses towers
  p = {k: {n: np.asarray(v, np.float64) for n, v in layer.items()} for k, layer in params.items()}
  relu = lambda y: np.maximum(y, 0)
  def pool(y):  # 3x3 stride 2, SAME: pad 1 at the end of 8 (outputs 4), -inf padding
    yp = np.pad(y, ((0, 0), (0, 1), (0, 1), (0, 0)), constant_values=-np.inf)
    return np.stack([np.stack([yp[:, 2 * i:2 * i + 3, 2 * j:2 * j + 3].max(axis=(1, 2))
                               for j in range(y.shape[2] // 2)], 1) for i in range(y.shape[1] // 2)], 1)
  h1 = pool(relu(conv_same(x, p["conv1"]["kernel"], p["conv1"]["bias"])))
  w2, b2 = p["conv2"]["kernel"], p["conv2"]["bias"]
  tower_a = conv_same(h1[..., :2], w2[..., :3], b2[:3])
  tower_b = conv_same(h1[..., 2:], w2[..., 3:], b2[3:])
  h2 = pool(relu(np.concatenate([tower_a, tower_b], -1)))
  h3 = relu(conv_same(h2, p["conv3"]["kernel"], p["conv3"]["bias"]))
  w4 = p["conv4"]["kernel"]
  h4 = relu(np.concatenate([conv_same(h3[..., :2], w4[..., :2], p["conv4"]["bias"][:2]),
                            conv_same(h3[..., 2:], w4[..., 2:], p["conv4"]["bias"][2:])], -1))
  w5 = p["conv5"]["kernel"]
  h5 = relu(np.concatenate([conv_same(h4[..., :2], w5[..., :2], p["conv5"]["bias"][:2]),
                            conv_same(h4[..., 2:], w5[..., 2:], p["conv5"]["bias"][2:])], -1))
  h = pool(h5).reshape(1, -1)
  for name in ("dense1", "dense2"):
    h = relu(h @ p[name]["kernel"] + p[name]["bias"])
  expected = h @ p["logits"]["kernel"] + p["logits"]["bias"]
  got = jax.jit(net.apply)({"params": params}, jnp.asarray(x))
  np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-5)


def test_imagenet_network_shapes_and_the_papers_parameter_count():
  net = Model("imagenet", towers=2)
  out = jax.eval_shape(lambda: net.init_with_output(jax.random.key(0), jnp.zeros((2, 227, 227, 3))))
  logits, variables = out
  assert logits.shape == (2, 1000)
  params = strip_boxes(variables)["params"]
  shapes = {k: v["kernel"].shape for k, v in params.items()}
  assert shapes["conv1"] == (11, 11, 3, 96) and shapes["conv2"] == (5, 5, 48, 256)
  assert shapes["conv3"] == (3, 3, 256, 384) and shapes["conv4"] == (3, 3, 192, 384)
  assert shapes["dense1"] == (6 * 6 * 256, 4096)   # section 3.5: 256 maps of 6 x 6 after pool 5
  # The parameter count of the two-tower net (Caffe's bvlc_alexnet has the same 60,965,224).
  assert sum(math.prod(x.shape) for x in jax.tree.leaves(params)) == 60_965_224


def test_pca_jitter_equals_the_papers_formula_in_numpy():
  rng = np.random.default_rng(0)
  # Correlated RGB pixels, so the covariance has three distinct eigenvalues.
  mix = np.array([[1.0, 0.6, 0.3], [0.0, 0.5, 0.2], [0.0, 0.0, 0.2]])
  pixels = np.clip(rng.normal(size=(6 * 5 * 5, 3)) @ mix * 40 + 120, 0, 255)
  images = pixels.reshape(6, 5, 5, 3).astype(np.uint8)
  eigenvalues, eigenvectors = aug.rgb_pca(images)
  cov = np.cov(images.reshape(-1, 3).astype(np.float64).T / 255.0, bias=True)
  # Each (l_i, p_i) an eigenpair of numpy's covariance, and they add back up to it.
  np.testing.assert_allclose(cov @ eigenvectors, eigenvectors * eigenvalues, atol=1e-6)
  np.testing.assert_allclose((eigenvectors * eigenvalues) @ eigenvectors.T, cov, atol=1e-6)
  alphas = rng.normal(0, 0.1, size=(4, 3))
  expected = np.stack([sum(eigenvectors[:, i] * a[i] * eigenvalues[i] for i in range(3)) for a in alphas])
  np.testing.assert_allclose(aug.pca_shift(eigenvalues, eigenvectors, alphas), expected, rtol=1e-5)
  # Grayscale: the shift is alpha times the pixel variance (a brightness change).
  gray = images[..., :1]
  values, vectors = aug.rgb_pca(gray)
  np.testing.assert_allclose(values, [np.var(gray / 255.0)], rtol=1e-5)
  np.testing.assert_allclose(aug.pca_shift(values, vectors, np.array([[0.1]])),
                             [[0.1 * np.var(gray / 255.0) * np.sign(vectors[0, 0])]], rtol=1e-5)


def test_augmentation_is_a_pure_function_of_seed_step_and_index():
  images = np.random.default_rng(0).integers(0, 256, size=(6, 8, 8, 3)).astype(np.uint8)
  pca = aug.rgb_pca(images)
  indices = np.array([3, 10, 11, 40, 41, 42])
  crops, shifts = aug.augment(images, 0, 7, indices, crop=8, pad=2, eigenvalues=pca[0],
                              eigenvectors=pca[1])
  again, shifts_again = aug.augment(images, 0, 7, indices, 8, 2, *pca)
  np.testing.assert_array_equal(crops, again)
  np.testing.assert_array_equal(shifts, shifts_again)
  # Row i depends on its own index only: the same image with the same index, alone, matches.
  alone, shift_alone = aug.augment(images[2:3], 0, 7, indices[2:3], 8, 2, *pca)
  np.testing.assert_array_equal(alone[0], crops[2])
  np.testing.assert_array_equal(shift_alone[0], shifts[2])
  other, other_shifts = aug.augment(images, 0, 8, indices, 8, 2, *pca)
  assert not np.array_equal(other, crops) and not np.allclose(other_shifts, shifts)
  # Each crop is a (maybe mirrored) window of the zero-padded image.
  padded = np.pad(images, ((0, 0), (2, 2), (2, 2), (0, 0)))
  for i in range(len(images)):
    windows = [padded[i, y:y + 8, x:x + 8] for y in range(5) for x in range(5)]
    assert any(np.array_equal(crops[i], w) or np.array_equal(crops[i], w[:, ::-1]) for w in windows)


@pytest.fixture
def random_images(monkeypatch):
  def load(name, split, data_dir=None):
    del data_dir
    rng = np.random.default_rng(0 if split == "train" else 1)
    n = 64 if split == "train" else 16
    return {"images": rng.integers(0, 256, (n, *image_data.IMAGE_SHAPE[name])).astype(np.uint8),
            "labels": rng.integers(0, 10, n).astype(np.int32)}
  monkeypatch.setattr(image_data, "load_images", load)


def test_training_on_8_devices_equals_one_device(random_images):
  """2 steps of the tiny AlexNet (dropout on, PCA colour on) on 8 devices (data=4, fsdp=2) and on 1."""
  assert jax.device_count() >= 8

  def config_for(mesh):
    config = get_config("tiny")
    config.data.train_examples = 0
    config.batch_size = 16
    config.mesh.update(mesh)
    return config

  (init_1, state_1, losses_1), (init_8, state_8, losses_8) = train_on_one_and_on_eight(
      config_for, dict(data=4, fsdp=2), share_init=True)
  chex.assert_trees_all_close(init_1.params, init_8.params)
  np.testing.assert_allclose(losses_1, losses_8, rtol=1e-5)
  assert not np.allclose(state_1.params["conv2"]["kernel"], init_1.params["conv2"]["kernel"])
  chex.assert_trees_all_close(state_1.params, state_8.params, rtol=1e-4, atol=1e-6)


def test_task_batches_match_the_spec_and_resume_exactly(random_images):
  task = AlexNetTask(get_config("tiny"))
  batch = task.train_batch(3)
  chex.assert_trees_all_equal(batch, AlexNetTask(get_config("tiny")).train_batch(3))
  assert {k: (v.shape, v.dtype) for k, v in batch.items()} == {
      k: (s.shape, s.dtype) for k, s in task.batch_spec().items()}
  assert np.abs(batch["colour"]).max() > 0
  split = np.concatenate([b["split"] for b in task.eval_batches()])
  assert (split == 0).sum() == 16 and (split == 1).sum() == 16


def test_imagenet_data_path_under_tfds_mock_data():
  tfds = pytest.importorskip("tensorflow_datasets")
  config = get_config("imagenet")
  config.data.update(train_examples=16, test_examples=8, eval_train_examples=8, eval_batch_size=16,
                     pca_examples=16)
  config.batch_size = 8
  with tfds.testing.mock_data(num_examples=16):  # random images of random sizes
    task = AlexNetTask(config)
    batch = task.train_batch(0)
    assert {k: v.shape for k, v in batch.items()} == {k: s.shape for k, s in task.batch_spec().items()}
    assert batch["images"].shape == (8, 227, 227, 3) and batch["labels"].max() < 1000
    assert task.pca[1].shape == (3, 3)
    (eval_batch,) = task.eval_batches()
    assert eval_batch["images"].shape == (16, 227, 227, 3)
    assert eval_batch["split"].tolist() == [0] * 8 + [1] * 8
