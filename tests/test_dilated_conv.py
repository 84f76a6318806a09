"""Dilated convolutions (Yu & Koltun 2016): context module, receptive fields, canvases, mIoU."""
import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import signal

from configs.dilated_conv import get_config
from core import image_data
from core.task import DataMissingError
from core.train import Trainer
from papers.dilated_conv import ContextModule, context_receptive_field, model as model_lib
from papers.dilated_conv import segmentation_data as sd
from papers.dilated_conv.task import confusion_matrix, mean_iou


def unboxed_init(module, x):
  # Eager (no jit): these modules are small, and compiling would cost more than running.
  return nn.meta.unbox(module.init(jax.random.key(0), x))


def test_basic_context_module_at_init_passes_its_input_through_exactly():
  x = jax.random.normal(jax.random.key(1), (2, 12, 12, 11))
  module = ContextModule(11, "basic")
  variables = unboxed_init(module, x)
  y = module.apply(variables, x)
  # Layers 1-7 truncate (ReLU), so the identity holds on the non-negative front-end output.
  np.testing.assert_array_equal(np.asarray(y), np.maximum(np.asarray(x), 0))
  positive = jnp.abs(x)
  np.testing.assert_array_equal(np.asarray(module.apply(variables, positive)), np.asarray(positive))


def eq5_by_loops(k, c_in, c_out, c):
  """Eq. 5 without its noise, written out with loops: C / c_out at the kernel's centre where
  floor(a C / c_in) = floor(b C / c_out)."""
  expected = np.zeros((k, k, c_in, c_out), np.float32)
  for a in range(c_in):
    for b in range(c_out):
      if (a * c) // c_in == (b * c) // c_out:
        expected[k // 2, k // 2, a, b] = c / c_out
  return expected


def test_large_context_module_uses_the_generalised_identity_of_eq_5():
  c = 3
  x = jnp.abs(jax.random.normal(jax.random.key(2), (1, 8, 8, c)))
  exact = ContextModule(c, "large", noise=0.0)
  variables = unboxed_init(exact, x)
  np.testing.assert_allclose(exact.apply(variables, x), x, rtol=1e-6, atol=1e-6)
  widths = [c * m for m in model_lib.LARGE_WIDTHS]
  for i, (c_in, c_out) in enumerate(zip([c] + widths[:-1], widths)):
    kernel = np.asarray(variables["params"][f"ctx{i + 1}"]["kernel"])
    np.testing.assert_array_equal(kernel, eq5_by_loops(kernel.shape[0], c_in, c_out, c))
  # The noise of eq. 5, "else epsilon": only off the identity's entries (one layer: each new
  # shape costs a compile of the random generator).
  noisy = np.asarray(model_lib.identity_kernel(3, 48, 96, c, model_lib.IDENTITY_NOISE, jax.random.key(3)))
  exact = eq5_by_loops(3, 48, 96, c)
  on = exact != 0
  np.testing.assert_array_equal(noisy[on], exact[on])
  assert abs(noisy[~on].mean()) < 1e-4
  assert np.std(noisy[~on]) == pytest.approx(model_lib.IDENTITY_NOISE, rel=0.05)


def test_receptive_field_table_1_and_brute_force_gradient_support():
  # Yu & Koltun 2016, Table 1: receptive field of layers 1-8.
  assert context_receptive_field() == [3, 5, 9, 17, 33, 65, 67, 67]
  # The set of inputs the centre output depends on, from the gradient of a module with
  # positive weights (no ReLU cuts a path): a 67 x 67 square.
  module = ContextModule(1, "basic")
  x = jnp.ones((1, 81, 81, 1))
  params = jax.tree.map(jnp.ones_like, unboxed_init(module, x))
  grad = (jax.grad(lambda inp: module.apply(params, inp)[0, 40, 40, 0]))(x)
  rows, cols = np.nonzero(np.asarray(grad)[0, :, :, 0])
  assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (67, 67)
  assert (rows.min(), cols.min()) == (40 - 33, 40 - 33)


@pytest.mark.parametrize("name, width", [("local", 64), ("small", 160)])
def test_front_end_receptive_field_equals_the_window_an_infinite_pixel_reaches(name, width):
  """Brute force: image i of a batch holds +inf at column i (of one row); with all weights 1 no
  ReLU or max pool can stop it, so the images whose centre score is inf mark its window."""
  net = model_lib.FrontEnd(model_lib.FRONT_ENDS[name], num_classes=1)
  images = np.zeros((width, 8, width, 1), np.float32)
  images[np.arange(width), 4, np.arange(width), 0] = np.inf
  shapes = jax.eval_shape(net.init, jax.random.key(0), jnp.asarray(images[:1]))
  params = jax.tree.map(lambda s: jnp.ones(s.shape), nn.meta.unbox(shapes))
  scores = np.asarray(jax.jit(net.apply)(params, jnp.asarray(images)))
  reached = np.nonzero(np.isinf(scores[:, 0, width // 16, 0]))[0]
  assert 0 < reached.min() and reached.max() < width - 1  # the window is not cut by the border
  assert reached.max() - reached.min() + 1 == model_lib.front_end_receptive_field(net.spec)
  assert model_lib.front_end_receptive_field(model_lib.FRONT_END_VGG16) == 380


def test_context_stage_trains_the_module_only():
  """train_front_end=False (section 4's second stage): no gradient reaches the front end."""
  net = model_lib.DilatedSegmenter(front_end="tiny", num_classes=3, context="basic", train_front_end=False)
  images = jax.random.normal(jax.random.key(4), (2, 16, 16, 1))
  shapes = nn.meta.unbox(jax.eval_shape(net.init, jax.random.key(0), images))
  params = jax.tree.map(lambda s: jnp.full(s.shape, 0.1), shapes)  # any values: only the paths count
  grads = jax.jit(jax.grad(lambda p: jnp.sum(net.apply(p, images) ** 2)))(params)["params"]
  assert all(not np.any(np.asarray(g)) for g in jax.tree.leaves(grads["front_end"]))
  assert any(np.any(np.asarray(g)) for g in jax.tree.leaves(grads["context"]))


def test_dilated_convolution_equals_correlation_with_a_kernel_with_holes():
  rng = np.random.default_rng(0)
  x = rng.normal(size=(1, 11, 13, 2)).astype(np.float32)
  layer = model_lib.conv(3, 3, 2, "c", None, None, jnp.float32)
  variables = unboxed_init(layer, jnp.asarray(x))
  kernel = np.asarray(variables["params"]["kernel"])
  y = np.asarray(layer.apply(variables, jnp.asarray(x)))
  holed = np.zeros((5, 5, 2, 3), np.float32)  # 3x3 taps spread by dilation 2
  holed[::2, ::2] = kernel
  for out in range(3):
    expected = sum(signal.correlate2d(x[0, :, :, i], holed[:, :, i, out], mode="same") for i in range(2))
    np.testing.assert_allclose(y[0, :, :, out], expected, rtol=1e-5, atol=1e-5)


def random_items(n=20, seed=0):
  rng = np.random.default_rng(seed)
  images = rng.integers(0, 256, (n, 28, 28, 1)).astype(np.uint8)
  images[:, :4] = 0  # some background inside each item
  return {"images": images, "labels": rng.integers(0, 10, n).astype(np.int32)}


def test_canvases_are_deterministic_and_every_label_is_the_visible_items_class():
  spec = sd.CanvasSpec(size=32, min_objects=2, max_objects=4, min_side=10, max_side=24, threshold=32)
  items = random_items()
  source = sd.CanvasSource(items, spec, seed=3, split="train", length=10)
  again = sd.CanvasSource(items, spec, seed=3, split="train", length=10)
  chex.assert_trees_all_equal(source[7], again[7])
  assert not np.array_equal(source[7]["labels"], source[8]["labels"])
  assert not np.array_equal(source[7]["labels"], sd.CanvasSource(items, spec, 3, "test", 10)[7]["labels"])
  for index in range(5):
    example, placed = source[index], source.placements(index)
    assert 2 <= len(placed) <= 4
    # Brute force: the label of a pixel is that of the last pasted item whose resized pixel
    # there is foreground; the canvas shows that pixel.
    for y in range(32):
      for x in range(32):
        label, value = 0, 0
        for item, top, left, side in reversed(placed):
          if top <= y < top + side and left <= x < left + side:
            source_pixel = items["images"][item, (y - top) * 28 // side, (x - left) * 28 // side, 0]
            if source_pixel > 32:
              label, value = items["labels"][item] + 1, source_pixel
              break
        assert example["labels"][y, x] == label and example["images"][y, x, 0] == value


def test_confusion_matrix_and_mean_iou_equal_numpy_on_a_hand_made_example():
  labels = np.array([[0, 0, 1, 1], [2, 2, 2, 255]])
  predictions = np.array([[0, 1, 1, 1], [2, 0, 2, 2]])
  confusion = np.asarray(confusion_matrix(jnp.asarray(predictions), jnp.asarray(labels), 3))
  expected = np.zeros((3, 3))
  np.add.at(expected, (labels[labels < 3], predictions[labels < 3]), 1)  # 255 = void, ignored
  np.testing.assert_array_equal(confusion, expected)
  # By hand: class 0: I=1, U=3; class 1: I=2, U=3; class 2: I=2, U=3.
  assert mean_iou(confusion) == pytest.approx((1 / 3 + 2 / 3 + 2 / 3) / 3)


@pytest.fixture
def random_fashion_mnist(monkeypatch):
  def load(name, split, data_dir=None):
    del name, data_dir
    return random_items(40, seed=0 if split == "train" else 1)
  monkeypatch.setattr(image_data, "load_images", load)


def test_training_on_8_devices_equals_one_device(random_fashion_mnist):
  """2 steps and an evaluation on 8 devices (data=4, fsdp=2) and on 1, from the same start."""
  results, initial = [], None
  for devices, mesh in ((jax.devices()[:1], dict(data=1)), (jax.devices()[:8], dict(data=4, fsdp=2))):
    config = get_config("tiny")
    config.mesh.update(mesh)
    trainer = Trainer(config, devices=devices)
    if initial is None:
      # Initialised once, from an "rbg" key: compiling threefry for every parameter's shape
      # would take most of this test's time, and the start only has to be shared.
      state = trainer.init_state(jax.random.key(0, impl="rbg"))
      initial = jax.device_get(state)
    else:
      state = jax.device_put(initial, trainer.state_shardings)
    state, history = trainer.run_steps(state, range(2))
    results.append((jax.device_get(state.params), [float(h["loss"]) for h in history],
                    trainer.evaluate(state, 2)))
  (params_1, losses_1, eval_1), (params_8, losses_8, eval_8) = results
  init_1 = initial.params
  np.testing.assert_allclose(losses_1, losses_8, rtol=1e-5)
  chex.assert_trees_all_close(params_1, params_8, rtol=1e-4, atol=1e-6)
  assert not np.allclose(jax.tree.leaves(params_1)[0], jax.tree.leaves(init_1)[0])
  for name in ("loss", "pixel_accuracy", "miou", "iou_0"):
    assert eval_1[name] == pytest.approx(eval_8[name], rel=1e-5, abs=1e-6), name


def test_voc_reader_pads_with_void_and_says_how_to_get_the_data(tmp_path):
  from PIL import Image  # pylint: disable=g-import-not-at-top
  with pytest.raises(DataMissingError, match="VOCtrainval"):
    sd.voc_root(str(tmp_path))
  root = tmp_path / "VOCdevkit" / "VOC2012"
  for sub in ("JPEGImages", "SegmentationClass", "ImageSets/Segmentation"):
    (root / sub).mkdir(parents=True)
  (root / "ImageSets/Segmentation/val.txt").write_text("a\n")
  Image.fromarray(np.full((6, 10, 3), 200, np.uint8)).save(root / "JPEGImages/a.jpg")
  Image.fromarray(np.arange(60, dtype=np.uint8).reshape(6, 10) % 21).save(root / "SegmentationClass/a.png")
  example = sd.VocSource(str(tmp_path), "val", crop=8, seed=0, random_crop=False)[0]
  assert example["images"].shape == (8, 8, 3) and example["labels"].shape == (8, 8)
  np.testing.assert_array_equal(example["labels"][:6], np.arange(60).reshape(6, 10)[:, :8] % 21)
  assert (example["labels"][6:] == sd.VOC_IGNORE).all()
