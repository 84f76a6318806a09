"""Sort-of-CLEVR generator, Relation Network pieces and data-parallel training."""
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.relation_networks import VARIANTS, get_config
from core.data import local_batch
from core.task import ConfigError, heldout_rng, step_rng
from core.train import strip_boxes
from papers.relation_networks import model as rn_model
from papers.relation_networks import sort_of_clevr as soc
from papers.relation_networks.task import KIND_NAMES, QUESTIONS_PER_IMAGE, SortOfClevrTask


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
        # Pixel centroids are within half a pixel of the true centres in x and y (checked
        # above): a coordinate is off by <= 0.5, a distance between two objects by <= 2 x 0.5
        # x sqrt(2), a difference of two distances from the same object by <= 2 sqrt(2).
        tolerance = 2 * math.sqrt(2) if bits[7] == 1 else 0.5
        if margin <= tolerance:
          ambiguous += 1
          continue
        assert soc.ANSWERS[answer] == expected, soc.describe(bits)
        checked += 1
  assert checked >= 1400 and ambiguous <= 200  # near-ties and near-middle objects


def test_scenes_are_a_pure_function_of_seed_split_and_index():
  a, b = soc.scene(0, "train", 7), soc.scene(0, "train", 7)
  np.testing.assert_array_equal(a.image, b.image)
  np.testing.assert_array_equal(a.questions, b.questions)
  assert not np.array_equal(a.image, soc.scene(0, "test", 7).image)
  assert not np.array_equal(a.image, soc.scene(1, "train", 7).image)
  # The test split is the held-out stream of core.task, which no training step draws from.
  np.testing.assert_array_equal(soc.scene_rng(0, "test", 7).integers(0, 2**31, 8),
                                heldout_rng(0, 7).integers(0, 2**31, 8))
  for step in range(3):
    assert not np.array_equal(soc.scene_rng(0, "test", 0).integers(0, 2**31, 8),
                              step_rng(0, step).integers(0, 2**31, 8))


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
  config.data.test_images = 8
  config.data.eval_images_per_batch = 4  # 80 rows: a multiple of 8
  # Plain SGD with small steps: parameters then differ exactly as much as the gradients do
  # (Adam's normalised steps would magnify float noise in near-zero gradients).
  config.optimizer.name = "sgd"
  config.optimizer.learning_rate = 1e-3
  config.optimizer.warmup_steps = 0
  return config


def test_batch_spec_matches_the_train_batch_and_process_shards_concatenate_to_it():
  task = SortOfClevrTask(tiny_config())
  whole = task.train_batch(5)
  assert {k: (v.shape, v.dtype) for k, v in whole.items()} == {
      k: (s.shape, s.dtype) for k, s in task.batch_spec().items()}
  shards = [local_batch(task, 5, 16, p, 4) for p in range(4)]
  for key in whole:
    np.testing.assert_array_equal(np.concatenate([s[key] for s in shards]), whole[key])
  assert not np.array_equal(task.train_batch(6)["images"], whole["images"])


@pytest.mark.parametrize("variant", VARIANTS)
def test_eval_batches_split_over_8_devices(variant):
  d = get_config(variant).data
  assert d.test_images % d.eval_images_per_batch == 0
  assert d.eval_images_per_batch * QUESTIONS_PER_IMAGE % 8 == 0


def test_eval_batches_hold_every_test_question_once_half_of_them_relational():
  task = SortOfClevrTask(tiny_config())
  batches = list(task.eval_batches())
  assert len(batches) == 2
  for batch in batches:
    assert batch["questions"].shape == (80, 11) and set(batch) == set(task.batch_spec())
    assert (batch["kinds"] >= 3).mean() == 0.5
  images = np.concatenate([b["images"] for b in batches])[::QUESTIONS_PER_IMAGE]
  expected = [soc.scene(0, "test", i, 40, 3).image for i in range(8)]
  np.testing.assert_array_equal(images, expected)
  with pytest.raises(ConfigError, match="eval_images_per_batch"):
    config = tiny_config()
    config.data.eval_images_per_batch = 3
    SortOfClevrTask(config)


def host_scores(task, variables):
  """Test metrics counted in numpy from the model's logits, batch by batch."""
  logits_fn = jax.jit(lambda v, b: task._logits(v, b, None, False)[0])  # pylint: disable=protected-access
  losses, correct, kinds = [], [], []
  for batch in task.eval_batches():
    logits = np.asarray(logits_fn(variables, batch), np.float64)
    log_z = np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1)) + logits.max(-1)
    losses.append(log_z - logits[np.arange(len(logits)), batch["answers"]])
    correct.append(logits.argmax(-1) == batch["answers"])
    kinds.append(batch["kinds"])
  losses, correct, kinds = map(np.concatenate, (losses, correct, kinds))
  scores = {"loss": losses.mean(), "accuracy": correct.mean(),
            "relational_accuracy": correct[kinds >= 3].mean(),
            "non_relational_accuracy": correct[kinds < 3].mean()}
  scores.update({f"accuracy_{name}": correct[kinds == k].mean() for k, name in enumerate(KIND_NAMES)})
  return scores


def test_bfloat16_config_computes_in_bfloat16():
  config = tiny_config()
  config.dtype = "bfloat16"
  task = SortOfClevrTask(config)
  assert task.dtype == jnp.bfloat16
  variables = strip_boxes(jax.eval_shape(task.init, jax.random.key(0)))
  jaxpr = str(jax.make_jaxpr(lambda v, b: task.loss(v, b, None, train=True)[0])(
      variables, task.train_batch(0)))
  convs = re.findall(r"(\w+)\[[\d,]*\] = conv_general_dilated", jaxpr)
  dots = re.findall(r"(\w+)\[[\d,]*\] = dot_general", jaxpr)
  assert len(convs) == 4 and set(convs) == {"bf16"}  # the CNN
  assert len(dots) == 4 and set(dots) == {"bf16"}  # g (2 layers), f (1 layer), the logits
  config.dtype = "float16"
  with pytest.raises(ConfigError, match="dtype"):
    SortOfClevrTask(config)


def test_data_parallel_training_and_evaluation_on_8_devices_equal_one_device(head="rn"):
  """3 train steps and the test-split scores, on 1 device and on 8 (data-parallel)."""
  from core.train import Trainer  # pylint: disable=g-import-not-at-top
  assert jax.device_count() >= 8
  results = []
  for devices in (jax.devices()[:1], jax.devices()[:8]):
    trainer = Trainer(tiny_config(head), devices=devices)
    assert trainer.mesh.shape["data"] == len(devices)
    state, history = trainer.run_steps(trainer.init_state(), range(3))
    results.append((jax.device_get(state.params), float(history[-1]["loss"]),
                    trainer.evaluate(state, 3), state))
  (params_1, loss_1, eval_1, _), (params_8, loss_8, eval_8, _) = results
  assert loss_1 == pytest.approx(loss_8, rel=1e-5)
  initial = jax.device_get(Trainer(tiny_config(head), devices=jax.devices()[:1]).init_state().params)
  # Compare what training changed, leaf by leaf: float reassociation across shards leaves
  # ~1e-6 relative differences; per-shard batch statistics or a dropped shard would not.
  for p1, p8, p0 in zip(jax.tree.leaves(params_1), jax.tree.leaves(params_8),
                        jax.tree.leaves(initial)):
    step_1, step_8 = p1 - p0, p8 - p0
    assert np.linalg.norm(step_1) > 0
    assert np.linalg.norm(step_1 - step_8) <= 1e-3 * np.linalg.norm(step_1)
  # The trainer's sums and counts over (sharded) eval batches = a numpy count on the host.
  task = SortOfClevrTask(tiny_config(head))
  for (_, _, scores, state) in results:
    expected = host_scores(task, jax.device_get(state.variables()))
    assert set(scores) == set(expected)
    for name, value in expected.items():
      assert scores[name] == pytest.approx(value, abs=1e-5 if "accuracy" in name else 1e-4), name
  assert eval_1["loss"] == pytest.approx(eval_8["loss"], rel=1e-4)
