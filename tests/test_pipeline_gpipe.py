"""papers.gpipe: the pipelined ResNet-style stack, its data and its config."""
import os

os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=8")

import jax  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from core import pipeline as pl  # noqa: E402
from core.config import load_config  # noqa: E402
from core.train import Trainer  # noqa: E402
from papers.gpipe import task as task_lib  # noqa: E402

SMALL = ["--config.model.channels=8", "--config.model.num_blocks=4", "--config.model.groups=4",
         "--config.data.image_size=8", "--config.batch_size=16", "--config.data.eval_examples=16"]


def trainer(*flags):
  return Trainer(load_config("configs/gpipe.py", SMALL + list(flags)))


def run_steps(t, steps):
  with t.context():
    state = t.init_state()
  losses = []
  for step in range(steps):
    state, metrics = t.train_step(state, t.global_batch(step))
    losses.append(float(metrics["loss"]))
  return jax.device_get(state.params), losses


def test_pipelined_training_equals_unpipelined():
  """data=2 x stage=4, M=4 against data=8 unpipelined: same init, same 3 Adam steps."""
  p_pipe, l_pipe = run_steps(trainer("--config.mesh.data=2", "--config.mesh.stage=4",
                                     "--config.pipeline.microbatches=4"), 3)
  p_flat, l_flat = run_steps(trainer("--config.mesh.data=8"), 3)
  np.testing.assert_allclose(l_pipe, l_flat, rtol=1e-5)
  assert l_pipe[-1] < l_pipe[0]
  blocks_pipe = pl.stages_to_layers(p_pipe["blocks"]["stages"])
  blocks_flat = pl.stages_to_layers(p_flat["blocks"]["stages"])
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5),
               (blocks_pipe, p_pipe["head"]), (blocks_flat, p_flat["head"]))


def test_synthetic_batches_are_a_function_of_seed_and_step():
  t = trainer("--config.mesh.data=8").task
  a, b, c = t.train_batch(5), t.train_batch(5), t.train_batch(6)
  np.testing.assert_array_equal(a["images"], b["images"])
  assert not np.array_equal(a["images"], c["images"])
  half = t.train_batch(5, shard=1, num_shards=2)
  np.testing.assert_array_equal(half["labels"], a["labels"][8:])
  assert a["images"].shape == (16, 8, 8, 1) and a["labels"].dtype == np.int32


def test_config_errors_name_the_fix():
  from core.task import ConfigError
  with pytest.raises(ConfigError, match="num_blocks"):
    trainer("--config.mesh.data=1", "--config.mesh.stage=8")


def test_fashion_mnist_reader():
  root = task_lib.FASHION_MNIST_DIR
  if not os.path.exists(os.path.join(root, "t10k-labels-idx1-ubyte.gz")):
    pytest.skip("apt-get install -y dataset-fashion-mnist")
  images, labels = task_lib.load_fashion_mnist(root, "test")
  assert images.shape == (10_000, 28, 28, 1) and labels.shape == (10_000,)
  np.testing.assert_array_equal(np.bincount(labels), [1000] * 10)  # balanced test set
  assert images.min() == -1.0 and images.max() == 1.0
