"""papers.gpipe: the pipelined ResNet-style stack, its data and its config."""
import concurrent.futures
import os
import re

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from core import pipeline as pl  # noqa: E402
from core.config import load_config  # noqa: E402
from core.data import ArraySource, local_batch  # noqa: E402
from core.task import ConfigError, heldout_rng  # noqa: E402
from core.train import Trainer, strip_boxes  # noqa: E402
from papers.gpipe import task as task_lib  # noqa: E402

SMALL = ["--config.model.channels=8", "--config.model.num_blocks=4", "--config.model.groups=4",
         "--config.data.image_size=8", "--config.batch_size=16", "--config.data.eval_examples=32"]


def config(*flags, variant=""):
  return load_config("configs/gpipe.py" + (f":{variant}" if variant else ""), SMALL + list(flags))


def trainer(*flags):
  return Trainer(config(*flags))


def fashion_mnist_or_skip():
  if not os.path.exists(os.path.join(task_lib.FASHION_MNIST_DIR, "train-labels-idx1-ubyte.gz")):
    pytest.skip("apt-get install -y dataset-fashion-mnist")


def test_pipelined_training_and_evaluation_equal_unpipelined():
  """data=2 x stage=4, M=4 against data=8 unpipelined: same init, same 3 AdamW steps, same
  test scores through the trainer's sharded evaluation."""
  results = []
  for flags in (("--config.mesh.data=2", "--config.mesh.stage=4", "--config.pipeline.microbatches=4"),
                ("--config.mesh.data=8",)):
    t = trainer(*flags)
    assert t.task.num_stages == t.mesh.shape["stage"]
    state, history = t.run_steps(t.init_state(), range(3))
    results.append((jax.device_get(state.params), [float(m["loss"]) for m in history],
                    t.evaluate(state, 3)))
  (p_pipe, l_pipe, e_pipe), (p_flat, l_flat, e_flat) = results
  np.testing.assert_allclose(l_pipe, l_flat, rtol=1e-5)
  assert l_pipe[-1] < l_pipe[0]
  assert p_pipe["blocks"]["stages"]["conv1"]["kernel"].shape[:2] == (4, 1)  # [K, L/K, ...]
  blocks_pipe = pl.stages_to_layers(p_pipe["blocks"]["stages"])
  blocks_flat = pl.stages_to_layers(p_flat["blocks"]["stages"])
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
               (blocks_pipe, p_pipe["head"]), (blocks_flat, p_flat["head"]))
  assert set(e_pipe) == {"loss", "accuracy"}
  assert e_pipe["loss"] == pytest.approx(e_flat["loss"], rel=1e-4)
  assert e_pipe["accuracy"] == e_flat["accuracy"]


def test_synthetic_batches_are_a_function_of_seed_and_step():
  t = task_lib.ImageClassificationTask(config())
  assert t.train_examples() is None  # generated data: train_batch(step)
  a, b, c = t.train_batch(5), t.train_batch(5), t.train_batch(6)
  np.testing.assert_array_equal(a["images"], b["images"])
  assert not np.array_equal(a["images"], c["images"])
  assert {k: (v.shape, v.dtype) for k, v in a.items()} == {
      k: (s.shape, s.dtype) for k, s in t.batch_spec().items()}
  halves = [local_batch(t, 5, 16, p, 2) for p in range(2)]
  for key in a:
    np.testing.assert_array_equal(np.concatenate([h[key] for h in halves]), a[key])
  # Held-out: 32 examples (2 batches of 16) from heldout_rng(seed), not a training step's stream.
  batches = t.eval_batches()
  assert [b["labels"].shape for b in batches] == [(16,), (16,)]
  images, _ = task_lib.synthetic_images(0, heldout_rng(0), 32, 8, 10)
  np.testing.assert_array_equal(np.concatenate([b["images"] for b in batches]), images)


def test_config_errors_name_the_fix():
  with pytest.raises(ConfigError, match="num_blocks"):
    trainer("--config.mesh.data=1", "--config.mesh.stage=8")
  with pytest.raises(ConfigError, match="microbatches"):
    task_lib.ImageClassificationTask(config("--config.pipeline.microbatches=3"))
  with pytest.raises(ConfigError, match="data.source"):
    task_lib.ImageClassificationTask(config("--config.data.source=imagenet"))
  # The task reads the shared keys that Task.__init__ resolved.
  t = task_lib.ImageClassificationTask(config("--config.mesh.stage=2", "--config.pipeline.microbatches=4",
                                              "--config.pipeline.remat=False"))
  assert (t.model.num_stages, t.model.microbatches, t.model.remat) == (2, 4, False)


def test_bfloat16_config_computes_in_bfloat16():
  t = task_lib.ImageClassificationTask(config("--config.dtype=bfloat16"))
  assert t.dtype == jnp.bfloat16 and t.model.dtype == jnp.bfloat16
  variables = strip_boxes(jax.eval_shape(t.init, jax.random.key(0)))
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(variables))  # float32 weights
  jaxpr = str(jax.make_jaxpr(lambda v, b: t.loss(v, b, None, train=True)[0])(
      variables, t.train_batch(0)))
  convs = re.findall(r"(\w+)\[[\d,]*\] = conv_general_dilated", jaxpr)
  assert len(convs) == 3 and set(convs) == {"bf16"}  # the stem, and the block's two in the scan


def test_fashion_mnist_reader():
  fashion_mnist_or_skip()
  images, labels = task_lib.load_fashion_mnist(task_lib.FASHION_MNIST_DIR, "test")
  assert images.shape == (10_000, 28, 28, 1) and labels.shape == (10_000,)
  np.testing.assert_array_equal(np.bincount(labels), [1000] * 10)  # balanced test set
  assert images.min() == -1.0 and images.max() == 1.0


def test_fashion_mnist_trains_from_examples_and_scores_the_test_set_in_order():
  fashion_mnist_or_skip()
  t = task_lib.ImageClassificationTask(config(variant="fashion_mnist"))
  # Read once, whatever the number of threads asking.
  with concurrent.futures.ThreadPoolExecutor(4) as pool:
    sources = list(pool.map(lambda _: t.train_examples(), range(4)))
  assert all(isinstance(s, ArraySource) and len(s) == 60_000 for s in sources)
  assert len({id(s.arrays["images"]) for s in sources}) == 1
  with pytest.raises(ConfigError, match="train_examples"):
    t.train_batch(0)
  whole = local_batch(t, 3, 16)
  assert {k: (v.shape, v.dtype) for k, v in whole.items()} == {
      k: (s.shape, s.dtype) for k, s in t.batch_spec().items()}
  halves = [local_batch(t, 3, 16, p, 2) for p in range(2)]
  for key in whole:
    np.testing.assert_array_equal(np.concatenate([h[key] for h in halves]), whole[key])
  assert not np.array_equal(local_batch(t, 4, 16)["images"], whole["images"])
  np.testing.assert_array_equal(
      local_batch(task_lib.ImageClassificationTask(config(variant="fashion_mnist")), 3, 16)["labels"],
      whole["labels"])  # a pure function of (seed, step)
  batches = t.eval_batches()
  assert len(batches) == 2  # eval_examples=32: the first 32 test images, in order
  images, labels = task_lib.load_fashion_mnist(task_lib.FASHION_MNIST_DIR, "test")
  np.testing.assert_array_equal(np.concatenate([b["images"] for b in batches]), images[:32])
  np.testing.assert_array_equal(np.concatenate([b["labels"] for b in batches]), labels[:32])
