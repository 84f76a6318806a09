"""ResNet v1 / plain / pre-activation models, the image task, and data-parallel batch norm."""
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from configs.resnet import get_config
from core import image_data
from core.optim import make_optimizer
from core.train import Trainer, strip_boxes
from papers.resnet import VARIANTS, Model, PreActBasicBlock, zero_pad_shortcut
from papers.resnet.task import ImageClassificationTask


def num_params(variant, size=32, **kwargs):
  model = Model(variant, **kwargs)
  variables = jax.eval_shape(lambda: model.init(jax.random.key(0), jnp.zeros((1, size, size, 3))))
  return sum(math.prod(x.shape) for x in jax.tree.leaves(strip_boxes(variables)["params"]))


@pytest.mark.parametrize("variant,paper", [
    ("resnet20", 0.27e6), ("resnet56", 0.85e6), ("resnet110", 1.7e6),  # He 2015 Table 6
    ("preact_resnet164", 1.7e6), ("preact_resnet1001", 10.2e6),          # He 2016 Table 3
])
def test_cifar_parameter_counts_match_the_papers(variant, paper):
  # The papers print two or three significant figures (1.7M for ResNet-110's 1.73M).
  assert num_params(variant) == pytest.approx(paper, rel=0.02)


@pytest.mark.parametrize("variant,torchvision", [("resnet18", 11_689_512), ("resnet50", 25_557_032)])
def test_imagenet_parameter_counts_equal_torchvision(variant, torchvision):
  assert num_params(variant, size=64, num_classes=1000) == torchvision


def test_option_a_shortcut_subsamples_and_zero_pads_channels():
  x = np.random.default_rng(0).normal(size=(2, 8, 8, 16)).astype(np.float32)
  y = np.asarray(zero_pad_shortcut(jnp.asarray(x), 32, 2))
  assert y.shape == (2, 4, 4, 32)
  np.testing.assert_array_equal(y[..., 8:24], x[:, ::2, ::2, :])
  assert not y[..., :8].any() and not y[..., 24:].any()


def torch_weights_from_flax(net, params, stats):
  """Copies flax params and batch statistics into the PyTorch ResNet-20 of the benchmark."""
  import torch  # pylint: disable=g-import-not-at-top
  def conv(name, p):
    getattr_path(net, name).weight.data = torch.tensor(np.transpose(p["kernel"], (3, 2, 0, 1)).copy())
  def bn(name, p, s):
    m = getattr_path(net, name)
    m.weight.data, m.bias.data = torch.tensor(p["scale"]), torch.tensor(p["bias"])
    m.running_mean.data, m.running_var.data = torch.tensor(s["mean"]), torch.tensor(s["var"])
  conv("stem", params["stem"])
  bn("stem_bn", params["stem_bn"], stats["stem_bn"])
  for i in range(9):
    key = f"stage{i // 3 + 1}_block{i % 3 + 1}"
    for layer in ("conv1", "conv2"):
      conv(f"blocks.{i}.{layer}", params[key][layer])
    for layer in ("bn1", "bn2"):
      bn(f"blocks.{i}.{layer}", params[key][layer], stats[key][layer])
  net.head.weight.data = torch.tensor(np.asarray(params["head"]["kernel"]).T.copy())
  net.head.bias.data = torch.tensor(params["head"]["bias"])


def getattr_path(module, dotted):
  for part in dotted.split("."):
    module = module[int(part)] if part.isdigit() else getattr(module, part)
  return module


@pytest.mark.parametrize("variant", ["resnet20", "plain20"])
def test_resnet20_and_plain20_equal_a_pytorch_implementation_with_the_same_weights(variant):
  torch = pytest.importorskip("torch")
  from papers.resnet.benchmark import torch_resnet  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  x = rng.normal(size=(4, 8, 8, 3)).astype(np.float32)
  model = Model(variant)
  variables = jax.device_get(strip_boxes(jax.jit(model.init)(jax.random.key(1), jnp.asarray(x[:1]))))
  # Non-trivial running statistics, so evaluation mode is checked too.
  stats = jax.tree.map(lambda s: rng.uniform(0.5, 1.5, s.shape).astype(np.float32),
                       variables["batch_stats"])
  params = jax.tree.map(lambda p: p + rng.normal(0, 0.1, p.shape).astype(np.float32), variables["params"])
  net = torch_resnet(shortcuts=variant == "resnet20")
  torch_weights_from_flax(net, params, stats)
  x_torch = torch.tensor(x).permute(0, 3, 1, 2)
  with torch.no_grad():
    expected_eval = net.eval()(x_torch).numpy()
    expected_train = net.train()(x_torch).numpy()
  apply = jax.jit(model.apply, static_argnames=("train", "mutable"))
  got_eval = apply({"params": params, "batch_stats": stats}, jnp.asarray(x), train=False)
  got_train, updates = apply({"params": params, "batch_stats": stats}, jnp.asarray(x), train=True,
                             mutable=("batch_stats",))
  np.testing.assert_allclose(got_eval, expected_eval, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(got_train, expected_train, rtol=1e-4, atol=1e-4)
  # Running averages (momentum 0.1 in PyTorch's convention); PyTorch keeps the unbiased variance.
  block = net.blocks[4].bn2
  new = updates["batch_stats"]["stage2_block2"]["bn2"]
  np.testing.assert_allclose(new["mean"], block.running_mean.numpy(), rtol=1e-4, atol=1e-5)
  n = 4 * 4 * 4  # rows x height x width of stage 2's feature maps
  old = stats["stage2_block2"]["bn2"]["var"]
  np.testing.assert_allclose(new["var"] - 0.9 * old,
                             (block.running_var.numpy() - 0.9 * old) * (n - 1) / n, rtol=1e-4, atol=1e-5)


def test_model_entry_point_names_every_variant():
  assert {"resnet20", "resnet56", "resnet110", "plain20", "plain56", "resnet18", "resnet152",
          "preact_resnet56", "preact_resnet110", "preact_resnet164", "preact_resnet1001"} <= set(VARIANTS)
  with pytest.raises(ValueError, match="resnet56"):
    Model("resnet57")
  model = Model("preact_resnet164", stage_sizes=(1, 1, 1))
  logits = jax.jit(model.apply)(jax.jit(model.init)(jax.random.key(0), jnp.zeros((2, 8, 8, 3))),
                                jnp.ones((2, 8, 8, 3)))
  assert logits.shape == (2, 10) and np.isfinite(logits).all()


def conv_numpy(x, kernel, stride):
  """3x3 (or kxk) convolution, zero padding k // 2, NHWC x HWIO, by shifted slices."""
  k = kernel.shape[0]
  padded = np.pad(x, ((0, 0), (k // 2, k // 2), (k // 2, k // 2), (0, 0)))
  h, w = (x.shape[1] - 1) // stride + 1, (x.shape[2] - 1) // stride + 1
  out = np.zeros((x.shape[0], h, w, kernel.shape[-1]))
  for i in range(k):
    for j in range(k):
      window = padded[:, i:i + stride * h:stride, j:j + stride * w:stride]
      out += np.einsum("bhwc,cf->bhwf", window, kernel[i, j])
  return out


def batch_norm_numpy(x, p):
  """Training-mode batch norm over (batch, height, width), biased variance, epsilon 1e-5."""
  mean, var = x.mean(axis=(0, 1, 2)), x.var(axis=(0, 1, 2))
  return (x - mean) / np.sqrt(var + 1e-5) * p["scale"] + p["bias"]


@pytest.mark.parametrize("in_features,features,strides", [(16, 16, 1), (16, 32, 2)])
def test_preact_basic_block_equals_the_papers_formula_in_numpy(in_features, features, strides):
  """He 2016 Fig. 4e: x + conv(relu(bn(conv(relu(bn(x)))))); where the shape changes the
  shortcut is the option-A (subsampled, zero-padded) pre-activated input; nothing after the sum."""
  rng = np.random.default_rng(0)
  x = rng.normal(size=(4, 8, 8, in_features)).astype(np.float32)
  block = PreActBasicBlock(features, strides, "A")
  variables = strip_boxes(block.init(jax.random.key(0), jnp.asarray(x), train=True))
  p = jax.tree.map(lambda v: np.asarray(v, np.float64) + rng.normal(0, 0.2, v.shape), variables["params"])
  got, _ = block.apply({"params": p, "batch_stats": variables["batch_stats"]}, jnp.asarray(x),
                       train=True, mutable=["batch_stats"])
  relu = lambda v: np.maximum(v, 0)  # pylint: disable=unnecessary-lambda-assignment
  pre = relu(batch_norm_numpy(x, p["bn1"]))
  y = conv_numpy(relu(batch_norm_numpy(conv_numpy(pre, p["conv1"]["kernel"], strides), p["bn2"])),
                 p["conv2"]["kernel"], 1)
  if strides == 1:
    shortcut = x
  else:
    pad = (features - in_features) // 2
    shortcut = np.pad(pre[:, ::2, ::2], ((0, 0), (0, 0), (0, 0), (pad, pad)))
  np.testing.assert_allclose(got, y + shortcut, rtol=1e-4, atol=1e-4)
  assert (np.asarray(got) < 0).any()  # no ReLU after the addition


def test_preact_nets_normalise_once_after_the_last_block_not_after_the_stem():
  params = jax.eval_shape(lambda: Model("preact_resnet8").init(jax.random.key(0), jnp.zeros((1, 8, 8, 3))))
  assert "final_bn" in params["params"] and "stem_bn" not in params["params"]


def stack_into_scanned(tree, stage_sizes):
  """Unrolled variables stage{s}_block{b} (b >= 2) -> stacked stage{s}_blocks/block."""
  out = {k: v for k, v in tree.items() if not (k.startswith("stage") and not k.endswith("_block1"))}
  for s, size in enumerate(stage_sizes, 1):
    if size > 1:
      blocks = [tree[f"stage{s}_block{b}"] for b in range(2, size + 1)]
      out[f"stage{s}_blocks"] = {"block": jax.tree.map(lambda *v: np.stack(v), *blocks)}
  return out


def test_scanned_blocks_equal_unrolled_blocks_with_the_same_weights():
  """Forward (train and eval), running statistics and gradients of the scanned, rematerialised
  model equal those of the unrolled one once its variables are stacked per stage (a stage of
  one block has nothing to scan)."""
  rng = np.random.default_rng(0)
  x = jnp.asarray(rng.normal(size=(4, 8, 8, 3)).astype(np.float32))
  labels = jnp.asarray([0, 1, 2, 3])
  sizes = (2, 1, 3)
  unrolled = Model("preact_resnet20", stage_sizes=sizes)
  scanned = Model("preact_resnet20", stage_sizes=sizes, scan_blocks=True, remat="nothing_saveable")
  variables = jax.device_get(strip_boxes(jax.jit(unrolled.init)(jax.random.key(1), x)))
  params = jax.tree.map(lambda v: v + rng.normal(0, 0.1, v.shape).astype(np.float32), variables["params"])
  stats = jax.tree.map(lambda v: rng.uniform(0.5, 1.5, v.shape).astype(np.float32),
                       variables["batch_stats"])

  def run(model, params, stats):
    def loss(p):
      logits, new = model.apply({"params": p, "batch_stats": stats}, x, train=True,
                                mutable=["batch_stats"])
      return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), new["batch_stats"]
    (value, new_stats), grads = jax.value_and_grad(loss, has_aux=True)(params)
    return model.apply({"params": params, "batch_stats": stats}, x), value, new_stats, grads

  expected = jax.jit(lambda p, s: run(unrolled, p, s))(params, stats)
  got = jax.jit(lambda p, s: run(scanned, p, s))(stack_into_scanned(params, sizes),
                                                 stack_into_scanned(stats, sizes))
  np.testing.assert_allclose(got[0], expected[0], rtol=1e-5, atol=1e-5)  # eval logits
  np.testing.assert_allclose(got[1], expected[1], rtol=1e-5)              # training loss
  chex.assert_trees_all_close(got[2], stack_into_scanned(expected[2], sizes), rtol=1e-5, atol=1e-6)
  chex.assert_trees_all_close(got[3], stack_into_scanned(expected[3], sizes), rtol=1e-4, atol=1e-6)


@pytest.fixture
def random_images(monkeypatch):
  """Random uint8 images in place of a data set: what is tested here does not depend on them."""
  def load(name, split, data_dir=None):
    del data_dir
    rng = np.random.default_rng(0 if split == "train" else 1)
    n = 96 if split == "train" else 40
    return {"images": rng.integers(0, 256, (n, *image_data.IMAGE_SHAPE[name])).astype(np.uint8),
            "labels": rng.integers(0, 10, n).astype(np.int32)}
  monkeypatch.setattr(image_data, "load_images", load)


def tiny_config(**mesh):
  config = get_config("resnet20")
  config.model.variant = "resnet8"  # 6n+2 with n = 1: small enough to compile for 8 devices quickly
  config.batch_size = 16
  config.data.train_examples = 0
  config.data.eval_train_examples = 24
  config.data.test_examples = 0
  config.data.eval_batch_size = 16
  for axis, size in mesh.items():
    config.mesh[axis] = size
  return config


def test_train_batches_walk_a_seeded_permutation_each_epoch(random_images):
  task = ImageClassificationTask(tiny_config())
  epoch = np.concatenate([task.train_indices(step) for step in range(6)])  # 96 images, batch 16
  assert sorted(epoch) == list(range(96))
  next_epoch = np.concatenate([task.train_indices(step) for step in range(6, 12)])
  assert sorted(next_epoch) == list(range(96)) and not np.array_equal(epoch, next_epoch)
  batch = task.train_batch(7)
  again = ImageClassificationTask(tiny_config()).train_batch(7)  # a resumed run
  chex.assert_trees_all_equal(batch, again)
  assert {k: (v.shape, v.dtype) for k, v in batch.items()} == {
      k: (s.shape, s.dtype) for k, s in task.batch_spec().items()}


def test_eval_batches_hold_the_training_subset_then_the_test_split_once(random_images):
  task = ImageClassificationTask(tiny_config())
  batches = list(task.eval_batches())
  split = np.concatenate([b["split"] for b in batches])
  assert all(len(b["labels"]) == 16 for b in batches)
  assert (split == 0).sum() == 24 and (split == 1).sum() == 40 and (split == -1).sum() == 0


def test_paper_variants_use_the_papers_optimiser_and_schedule():
  config = get_config("cifar10_resnet110")
  assert (config.batch_size, config.total_steps, config.data.name) == (128, 64_000, "cifar10")
  assert (config.optimizer.name, config.optimizer.momentum, config.optimizer.weight_decay) == (
      "momentum", 0.9, 1e-4)
  _, schedule = make_optimizer(config)
  # He 2015 section 4.2: 0.01 for the first 400 iterations of ResNet-110, then 0.1 / 10 / 100.
  steps = (0, 399, 400, 31_999, 32_000, 47_999, 48_000, 63_999)
  np.testing.assert_allclose([float(schedule(s)) for s in steps],
                             [0.01, 0.01, 0.1, 0.1, 0.01, 0.01, 0.001, 0.001], rtol=1e-6)
  _, schedule = make_optimizer(get_config("cifar10_resnet56"))  # no warm-up below 110 layers
  np.testing.assert_allclose([float(schedule(s)) for s in (0, 399, 400, 32_000)],
                             [0.1, 0.1, 0.1, 0.01], rtol=1e-6)
  # Without a constant rate, the warm-up is a linear ramp from 0.
  config = get_config("cifar10_resnet56")
  config.optimizer.warmup_steps = 10
  _, schedule = make_optimizer(config)
  np.testing.assert_allclose([float(schedule(s)) for s in (0, 5, 10)], [0.0, 0.05, 0.1], rtol=1e-6)


def test_config_switches_the_task_model_to_scanned_blocks(random_images):
  config = get_config("preact_resnet56")
  assert not ImageClassificationTask(config).model.scan_blocks
  config.model.scan_blocks, config.model.remat = True, "nothing_saveable"
  model = ImageClassificationTask(config).model
  assert model.scan_blocks and model.remat == "nothing_saveable"


def test_training_on_mesh_data4_fsdp2_equals_one_device_with_global_batch_statistics(random_images):
  """2 steps on 8 devices (data=4, fsdp=2) and on 1: same losses, batch-norm statistics, params."""
  assert jax.device_count() >= 8
  results = []
  for devices, mesh in ((jax.devices()[:1], dict(data=1)), (jax.devices()[:8], dict(data=4, fsdp=2))):
    trainer = Trainer(tiny_config(**mesh), devices=devices)
    assert dict(trainer.mesh.shape) == {"data": 1, "fsdp": 1, "tensor": 1, "stage": 1, **mesh}
    state = trainer.init_state()
    initial = jax.device_get(state)  # a host copy: the train step donates the state's buffers
    state, history = trainer.run_steps(state, range(2))
    results.append((initial, jax.device_get(state), [float(h["loss"]) for h in history],
                    trainer.evaluate(state, 2)))
  (init_1, state_1, losses_1, eval_1), (init_8, state_8, losses_8, eval_8) = results
  chex.assert_trees_all_close(init_1.params, init_8.params)
  np.testing.assert_allclose(losses_1, losses_8, rtol=1e-4)
  # The running statistics moved, and equally: each device normalised by the global batch.
  assert not np.allclose(state_1.model_state["batch_stats"]["stem_bn"]["mean"], 0)
  chex.assert_trees_all_close(state_1.model_state, state_8.model_state, rtol=1e-4, atol=1e-6)
  # What training changed: float reassociation across shards leaves ~1e-4 relative differences
  # (up to 1e-3 in a leaf whose gradient nearly cancels over the batch); per-device batch
  # statistics or a dropped shard would change the steps by tens of percent.
  steps_1, steps_8 = [], []
  for p1, p8, p0 in zip(jax.tree.leaves(state_1.params), jax.tree.leaves(state_8.params),
                        jax.tree.leaves(init_1.params)):
    steps_1.append((p1 - p0).ravel())
    steps_8.append((p8 - p0).ravel())
    assert np.linalg.norm(steps_1[-1]) > 0
    assert np.linalg.norm(steps_1[-1] - steps_8[-1]) <= 1e-2 * np.linalg.norm(steps_1[-1])
  step_1, step_8 = np.concatenate(steps_1), np.concatenate(steps_8)
  assert np.linalg.norm(step_1 - step_8) <= 1e-3 * np.linalg.norm(step_1)
  for name in ("loss", "train_error", "test_error"):
    assert eval_1[name] == pytest.approx(eval_8[name], rel=1e-5, abs=1e-6), name
