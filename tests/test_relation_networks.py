"""Sort-of-CLEVR generator, Relation Network pieces and data-parallel training."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.relation_networks import get_config
from papers.relation_networks import model as rn_model
from papers.relation_networks import sort_of_clevr as soc
from papers.relation_networks.task import SortOfClevrTask


def objects_from_pixels(image):
  """Finds each colour's object in the rendered image: centroid and square/circle."""
  found = []
  for rgb in soc.RGB:
    ys, xs = np.nonzero(np.all(image == rgb, axis=-1))
    assert len(xs) > 0, "an object is missing from the image"
    box = (xs.max() - xs.min() + 1) * (ys.max() - ys.min() + 1)
    # A square fills its bounding box; a disc fills about pi/4 of it.
    found.append((xs.mean() + 0.5, ys.mean() + 0.5, "square" if len(xs) == box else "circle"))
  return found


def brute_force_answer(objects, bits, image_size):
  """Answers a decoded question by looping over the objects; returns (answer, margin in px)."""
  assert bits.sum() == 3 and bits[:6].sum() == bits[6:8].sum() == bits[8:].sum() == 1
  ref = list(bits[:6]).index(1)
  relational = bits[7] == 1
  subtype = list(bits[8:]).index(1)
  x, y, shape = objects[ref]
  if not relational:
    if subtype == 0:
      return shape, math.inf
    coordinate = x if subtype == 1 else y
    words = ("left", "right") if subtype == 1 else ("top", "bottom")
    return words[0] if coordinate < image_size / 2 else words[1], abs(coordinate - image_size / 2)
  if subtype == 2:
    return str(sum(1 for o in objects if o[2] == shape)), math.inf
  distances = sorted((math.dist((x, y), o[:2]), o[2]) for k, o in enumerate(objects) if k != ref)
  if subtype == 0:
    return distances[0][1], distances[1][0] - distances[0][0]
  return distances[-1][1], distances[-1][0] - distances[-2][0]


def test_generator_answers_match_a_brute_force_reading_of_the_image():
  checked = ambiguous = 0
  for split in ("train", "test"):
    for index in range(40):
      scene = soc.scene(3, split, index)
      assert scene.image.shape == (75, 75, 3) and scene.image.dtype == np.uint8
      objects = objects_from_pixels(scene.image)
      np.testing.assert_allclose([o[:2] for o in objects], scene.centers, atol=0.5)
      assert [o[2] for o in objects] == [soc.SHAPES[s] for s in scene.shapes]
      assert list(scene.kinds[:10] // 3) == [0] * 10 and list(scene.kinds[10:] // 3) == [1] * 10
      for bits, answer in zip(scene.questions, scene.answers):
        expected, margin = brute_force_answer(objects, bits, 75)
        if margin < 1.0:  # pixel centroids are within half a pixel of the true centres
          ambiguous += 1
          continue
        assert soc.ANSWERS[answer] == expected, soc.describe(bits)
        checked += 1
  assert checked >= 1500 and ambiguous <= 100  # near-ties and near-middle objects


def test_scenes_are_a_pure_function_of_seed_split_and_index():
  a, b = soc.scene(0, "train", 7), soc.scene(0, "train", 7)
  np.testing.assert_array_equal(a.image, b.image)
  np.testing.assert_array_equal(a.questions, b.questions)
  assert not np.array_equal(a.image, soc.scene(0, "test", 7).image)
  assert not np.array_equal(a.image, soc.scene(1, "train", 7).image)


def test_relation_pairs_match_a_numpy_loop():
  rng = np.random.default_rng(0)
  objects = rng.normal(size=(2, 5, 3)).astype(np.float32)
  question = rng.integers(0, 2, size=(2, 4)).astype(np.float32)
  expected = np.zeros((2, 25, 10), np.float32)
  for b in range(2):
    for i in range(5):
      for j in range(5):
        expected[b, i * 5 + j] = np.concatenate([objects[b, i], objects[b, j], question[b]])
  np.testing.assert_array_equal(rn_model.relation_pairs(jnp.asarray(objects), jnp.asarray(question)),
                                expected)


def test_cells_become_objects_tagged_with_their_coordinates():
  features = np.arange(2 * 3 * 3 * 2, dtype=np.float32).reshape(2, 3, 3, 2)
  objects = np.asarray(rn_model.cells_as_objects(jnp.asarray(features)))
  assert objects.shape == (2, 9, 4)
  for r in range(3):
    for c in range(3):
      np.testing.assert_array_equal(objects[:, 3 * r + c, :2], features[:, r, c])
      np.testing.assert_allclose(objects[:, 3 * r + c, 2:], [[c - 1, r - 1]] * 2)


def test_relation_network_is_invariant_to_the_order_of_objects():
  net = rn_model.RelationNetwork(num_answers=5, g_units=(16, 16), f_units=(16,))
  rng = np.random.default_rng(1)
  objects = jnp.asarray(rng.normal(size=(3, 6, 4)), jnp.float32)
  question = jnp.asarray(rng.integers(0, 2, size=(3, 11)), jnp.float32)
  params = net.init(jax.random.key(0), objects, question)
  out = net.apply(params, objects, question)
  shuffled = net.apply(params, objects[:, rng.permutation(6)], question)
  np.testing.assert_allclose(out, shuffled, rtol=1e-5, atol=1e-5)


def test_batch_stat_norm_matches_the_numpy_formula():
  x = np.random.default_rng(2).normal(3.0, 2.0, size=(4, 5, 5, 3)).astype(np.float32)
  norm = rn_model.BatchStatNorm()
  params = norm.init(jax.random.key(0), x)
  expected = (x - x.mean((0, 1, 2))) / np.sqrt(x.var((0, 1, 2)) + 1e-5)
  np.testing.assert_allclose(norm.apply(params, x), expected, rtol=1e-4, atol=1e-5)


def tiny_config(head="rn"):
  config = get_config(head)
  config.batch_size = 16
  config.data.image_size = 40
  config.data.object_size = 3
  config.model.channels = (4, 4, 4, 4)
  config.model.g_units = (8, 8)
  config.model.f_units = (8,)
  config.data.train_images = 50
  config.data.test_images = 10
  config.data.eval_images_per_batch = 5
  # Plain SGD with small steps: parameters then differ exactly as much as the gradients do
  # (Adam's normalised steps would magnify float noise in near-zero gradients).
  config.optimizer.name = "sgd"
  config.optimizer.learning_rate = 1e-3
  config.optimizer.warmup_steps = 0
  return config


def test_train_batch_shards_concatenate_to_the_global_batch():
  task = SortOfClevrTask(tiny_config())
  whole = task.train_batch(5)
  shards = [task.train_batch(5, s, 4) for s in range(4)]
  for key in whole:
    np.testing.assert_array_equal(np.concatenate([s[key] for s in shards]), whole[key])
  assert not np.array_equal(task.train_batch(6)["images"], whole["images"])


def test_test_batches_hold_every_test_question_half_of_them_relational():
  task = SortOfClevrTask(tiny_config())
  batches = list(task.test_batches())
  assert len(batches) == 2
  for batch in batches:
    assert batch["questions"].shape == (100, 11)
    assert (batch["kinds"] >= 3).mean() == 0.5


def test_data_parallel_training_on_8_devices_equals_one_device(head="rn"):
  from core.train import Trainer  # pylint: disable=g-import-not-at-top
  assert jax.device_count() >= 8
  results = []
  for devices in (jax.devices()[:1], jax.devices()[:8]):
    trainer = Trainer(tiny_config(head), devices=devices)
    assert trainer.mesh.shape["data"] == len(devices)
    state, history = trainer.run_steps(trainer.init_state(), range(3))
    results.append((jax.device_get(state.params), float(history[-1]["loss"])))
  (params_1, loss_1), (params_8, loss_8) = results
  assert loss_1 == pytest.approx(loss_8, rel=1e-5)
  initial = jax.device_get(Trainer(tiny_config(head), devices=jax.devices()[:1]).init_state().params)
  # Compare what training changed, leaf by leaf: float reassociation across shards leaves
  # ~1e-6 relative differences; per-shard batch statistics or a dropped shard would not.
  for p1, p8, p0 in zip(jax.tree.leaves(params_1), jax.tree.leaves(params_8),
                        jax.tree.leaves(initial)):
    step_1, step_8 = p1 - p0, p8 - p0
    assert np.linalg.norm(step_1) > 0
    assert np.linalg.norm(step_1 - step_8) <= 1e-3 * np.linalg.norm(step_1)
