"""The Task contract (core/task.py): train/eval modes, model state, batch spec, data pipeline,
shared keys and logical axis names, checked against independent references."""
import os
import signal
import subprocess
import sys
import time

import chex
import flax.linen as nn
import fsspec
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from fsspec.implementations.memory import MemoryFileSystem

from core import data as data_lib
from core.checkpoint import Checkpointer
from core.metrics import MetricWriter, read_metrics
from core.task import ConfigError, Task, spec
from core.train import Trainer
from tests import toy_task

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---- train and eval modes -----------------------------------------------------------

def test_eval_of_a_dropout_model_does_not_depend_on_the_rng():
  trainer = Trainer(toy_task.get_batchnorm_config(dropout=0.5), devices=jax.devices()[:1])
  state, _ = trainer.run_steps(trainer.init_state(), range(3))
  batch = trainer.task.train_batch(100)
  task, variables = trainer.task, state.variables()
  eval_a = task.loss(variables, batch, jax.random.key(1), train=False)[0]
  eval_b = task.loss(variables, batch, jax.random.key(2), train=False)[0]
  train_a = task.loss(variables, batch, jax.random.key(1), train=True)[0]
  train_b = task.loss(variables, batch, jax.random.key(2), train=True)[0]
  assert float(eval_a) == float(eval_b)
  assert float(train_a) != float(train_b)  # dropout is on in training
  # The trainer's evaluation is the eval-mode loss, averaged over its eval batches.
  expected = np.mean([task.loss(variables, b, jax.random.key(3), train=False)[0] for b in task.eval_batches()])
  assert trainer.evaluate(state, 3)["loss"] == pytest.approx(float(expected), rel=1e-6)


def test_eval_uses_running_statistics_and_train_updates_them():
  trainer = Trainer(toy_task.get_batchnorm_config(), devices=jax.devices()[:1])
  state = trainer.init_state()
  before = jax.device_get(state.model_state)
  batch = trainer.task.train_batch(0)
  # Independent reference: batch norm's running mean after one step is 0.9 * 0 + 0.1 * (batch mean
  # of the conv output), computed here with the plain conv.
  conv = jax.device_get(state.params)["Conv_0"]
  out = jax.lax.conv_general_dilated(batch["images"], conv["kernel"], (1, 1), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
  state, _ = trainer.run_steps(state, [0])
  after = jax.device_get(state.model_state)
  np.testing.assert_allclose(after["batch_stats"]["BatchNorm_0"]["mean"],
                             0.1 * np.asarray(out).mean(axis=(0, 1, 2)), rtol=1e-5, atol=1e-6)
  assert not np.allclose(after["batch_stats"]["BatchNorm_0"]["var"], before["batch_stats"]["BatchNorm_0"]["var"])
  _, _, updates = trainer.task.loss(state.variables(), batch, None, train=False)
  assert updates == {}  # evaluation mutates nothing


def test_batch_norm_on_8_devices_equals_one_device():
  """Statistics are over the global batch: data=4 x fsdp=2 gives the one-device numbers."""
  config = toy_task.get_batchnorm_config(dropout=0.0)
  results = []
  for devices, mesh in ((jax.devices()[:1], dict(data=1, fsdp=1)), (jax.devices()[:8], dict(data=4, fsdp=2))):
    c = config.copy_and_resolve_references()
    c.mesh.data, c.mesh.fsdp = mesh["data"], mesh["fsdp"]
    trainer = Trainer(c, devices=devices)
    state, history = trainer.run_steps(trainer.init_state(), range(5))
    results.append((jax.device_get(state.model_state), [h["loss"] for h in history],
                    trainer.evaluate(state, 5)))
  (stats_1, loss_1, eval_1), (stats_8, loss_8, eval_8) = results
  np.testing.assert_allclose(loss_8, loss_1, rtol=1e-5)
  chex.assert_trees_all_close(stats_8, stats_1, rtol=1e-5, atol=1e-6)
  assert eval_8["loss"] == pytest.approx(eval_1["loss"], rel=1e-5)


BATCHNORM_CONFIG = """
from tests import toy_task
def get_config(arg=None):
  return toy_task.get_batchnorm_config(dropout=0.25)
"""


def _launch(config, workdir, *overrides, wait=True):
  env = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=8")
  cmd = [sys.executable, "-m", "launch.train", "--config", str(config), "--workdir", str(workdir),
         "--config.mesh.data=4", "--config.mesh.fsdp=2", *overrides]
  if not wait:
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _final_state(workdir):
  trainer = Trainer(toy_task.get_batchnorm_config(dropout=0.25), devices=jax.devices()[:1])
  ckpt = Checkpointer(str(workdir))
  state, _ = ckpt.restore(ckpt.latest_step(), trainer.abstract_state(), trainer.param_signature())
  ckpt.close()
  return jax.device_get(state)


def test_model_state_survives_sigkill_and_resume_bit_exactly(tmp_path):
  config = tmp_path / "bn.py"
  config.write_text(BATCHNORM_CONFIG)
  flags = ["--config.total_steps=400", "--config.checkpoint_every=50", "--config.log_every=50"]
  reference = _launch(config, tmp_path / "reference", *flags)
  assert reference.returncode == 0, reference.stderr[-2000:]
  killed = tmp_path / "killed"
  proc = _launch(config, killed, *flags, wait=False)
  deadline = time.time() + 300
  while time.time() < deadline and not (killed / "checkpoints" / "100").is_dir():
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  assert proc.returncode == -signal.SIGKILL
  resumed = _launch(config, killed, *flags)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert "resumed from step" in resumed.stdout
  a, b = _final_state(tmp_path / "reference"), _final_state(killed)
  chex.assert_trees_all_equal(a.model_state, b.model_state)
  chex.assert_trees_all_equal(a.params, b.params)
  assert read_metrics(str(killed), "train") and [r["loss"] for r in read_metrics(str(killed), "train")] == [
      r["loss"] for r in read_metrics(str(tmp_path / "reference"), "train")]


# ---- batch spec, shared keys, logical names --------------------------------------------

def test_batch_spec_must_match_the_data():
  class WrongSpec(toy_task.LinearRegression):
    def batch_spec(self):
      return {**super().batch_spec(), "x": spec((self.config.batch_size, 3), np.float32)}
  c = toy_task.get_config()
  trainer = Trainer(c, devices=jax.devices()[:1])
  trainer.task = WrongSpec(c)
  trainer.batch_shape = dict(trainer.task.batch_spec())
  trainer._batches = None  # pylint: disable=protected-access
  with pytest.raises(ConfigError, match="batch entry 'x' is float32"):
    trainer.global_batch(0)


def test_unknown_dtype_and_stages_on_a_model_without_stages_are_config_errors():
  c = toy_task.get_config()
  with c.unlocked():
    c.dtype = "float16"
  with pytest.raises(ConfigError, match="config.dtype must be one of"):
    toy_task.LinearRegression(c)
  c = toy_task.get_config()
  c.mesh.stage = 2
  with pytest.raises(ConfigError, match="has no pipeline stages"):
    toy_task.LinearRegression(c)


class TypoAxis(toy_task.LinearRegression):
  def __init__(self, config):
    super().__init__(config)
    self.model = nn.Dense(1, kernel_init=nn.with_logical_partitioning(nn.initializers.normal(),
                                                                      ("embd", "mlp")))


class UnknownActivationAxis(toy_task.LinearRegression):
  def loss(self, variables, batch, rng, *, train):
    x = nn.with_logical_constraint(batch["x"], ("batch", "act_hidden"))
    return super().loss(variables, {**batch, "x": x}, rng, train=train)


@pytest.mark.parametrize("task, name", [(TypoAxis, "embd"), (UnknownActivationAxis, "act_hidden")])
def test_logical_axis_names_without_a_rule_are_refused(task, name):
  c = toy_task.get_config()
  c.task = f"tests.test_task_contract:{task.__name__}"
  with pytest.raises(ConfigError, match=f"logical axis names \\['{name}'\\] have no rule"):
    Trainer(c, devices=jax.devices()[:1])


# ---- the grain pipeline -------------------------------------------------------------------

class ExamplesTask(toy_task.LinearRegression):
  """Real-data style: ten numbered examples read through core.data."""

  def train_examples(self):
    return data_lib.ArraySource({"x": np.arange(10, dtype=np.float32)[:, None].repeat(4, 1),
                                 "y": np.arange(10, dtype=np.float32)})


def test_example_sources_are_shuffled_per_epoch_sharded_and_resumable():
  c = toy_task.get_config()
  c.batch_size = 5
  task = ExamplesTask(c)
  seen = [data_lib.local_batch(task, step, 5)["y"] for step in range(6)]
  epochs = [np.concatenate(seen[2 * e:2 * e + 2]) for e in range(3)]
  for epoch in epochs:  # every epoch is a permutation of the ten examples
    np.testing.assert_array_equal(np.sort(epoch), np.arange(10))
  assert not np.array_equal(epochs[0], epochs[1])  # and a new one each epoch
  again = ExamplesTask(c)
  np.testing.assert_array_equal(data_lib.local_batch(again, 4, 5)["y"], seen[4])  # (seed, step) only
  c2 = toy_task.get_config()
  c2.batch_size, c2.seed = 5, 1
  assert not np.array_equal(data_lib.local_batch(ExamplesTask(c2), 0, 5)["y"], seen[0])
  # Two processes read disjoint rows that make up the global batch.
  c.batch_size = 4
  whole = data_lib.local_batch(task, 3, 4)["y"]
  halves = [data_lib.local_batch(task, 3, 4, p, 2)["y"] for p in range(2)]
  np.testing.assert_array_equal(np.concatenate(halves), whole)
  # The prefetching iterator started at step k yields the batches of k, k+1, ...
  batches = data_lib.step_batches(task, 4)
  prefetched = data_lib.Prefetcher(batches, 3, 6)
  for step in range(3, 6):
    chex.assert_trees_all_equal(next(prefetched), batches[step])
  with pytest.raises(StopIteration):
    next(prefetched)
  assert prefetched.wait_seconds >= 0


@pytest.mark.parametrize("group", [1, 3, 16])
def test_prefetcher_reads_ahead_in_groups_without_changing_the_stream(group):
  c = toy_task.get_config()
  batches = data_lib.step_batches(toy_task.LinearRegression(c), 8)
  prefetched = data_lib.Prefetcher(batches, 5, 22, group=group)  # 17 steps: a partial last group
  for step in range(5, 22):
    chex.assert_trees_all_equal(next(prefetched), batches[step])
  with pytest.raises(StopIteration):
    next(prefetched)
  assert list(data_lib.Prefetcher(batches, 7, 7, group=group)) == []


def test_read_group_size_covers_a_megabyte_of_small_batches_only():
  assert data_lib.read_group_size(100) == data_lib.MAX_GROUP
  assert data_lib.read_group_size(300_000) == 3
  assert data_lib.read_group_size(64 << 20) == 1


def test_epoch_batch_indices_equal_the_per_example_epoch_stream():
  def per_example(n, b, step, seed):  # positions kB..(k+1)B of the concatenated permutations
    return [np.random.default_rng([seed, p // n]).permutation(n)[p % n]
            for p in range(step * b, (step + 1) * b)]
  for n, b in [(100, 7), (10, 23), (5, 5), (1000, 64)]:  # batches across 1, 2 and 5 epochs
    for step in (0, 1, 13, 857):
      np.testing.assert_array_equal(data_lib.epoch_batch_indices(n, b, step, 3), per_example(n, b, step, 3))


def test_generated_batches_are_sliced_by_process():
  c = toy_task.get_config()
  task = toy_task.LinearRegression(c)
  quarters = [data_lib.local_batch(task, 2, 16, p, 4)["x"] for p in range(4)]
  np.testing.assert_array_equal(np.concatenate(quarters), task.train_batch(2)["x"])
  with pytest.raises(ConfigError, match="does not split into 3 process shards"):
    data_lib.local_batch(task, 2, 16, 0, 3)


# ---- workdirs on object stores ----------------------------------------------------------

@pytest.fixture
def memory_bucket():
  """gs:// served from memory: etils.epath reaches gs:// through fsspec's 'gcs' protocol."""
  fsspec.register_implementation("gcs", MemoryFileSystem, clobber=True)
  MemoryFileSystem.store.clear()
  yield "gs://bucket/run"
  MemoryFileSystem.store.clear()
  sys.modules["fsspec.registry"]._registry.pop("gcs", None)  # pylint: disable=protected-access


@pytest.mark.parametrize("where", ["local", "memory"])
def test_metrics_and_tensorboard_through_epath(where, tmp_path, memory_bucket):
  from etils import epath  # pylint: disable=g-import-not-at-top
  workdir = str(tmp_path / "run") if where == "local" else memory_bucket
  writer = MetricWriter(workdir)
  for step in (1, 2, 3):
    writer.write(step, "train", {"loss": 1.0 / step})
  writer.truncate_after(2)  # a resumed run drops rows after its checkpoint
  writer.write(3, "eval", {"loss": 0.25})
  writer.close()
  assert read_metrics(workdir) == [{"step": 1, "split": "train", "loss": 1.0},
                                   {"step": 2, "split": "train", "loss": 0.5},
                                   {"step": 3, "split": "eval", "loss": 0.25}]
  events = list((epath.Path(workdir) / "tensorboard").iterdir())
  assert events and events[0].name.startswith("events.out.tfevents") and events[0].stat().length > 0


# ---- derived config values follow the overrides --------------------------------------------

def test_derived_values_follow_overrides():
  from core.config import load_config  # pylint: disable=g-import-not-at-top
  from configs.scaling_laws import kaplan_learning_rate  # pylint: disable=g-import-not-at-top
  copy = load_config(os.path.join(ROOT, "configs/transformer.py"), ["--config.model.d_model=256"])
  assert copy.optimizer.noam_d_model == 256
  big = load_config(os.path.join(ROOT, "configs/transformer.py:big"))
  assert big.optimizer.noam_d_model == big.model.d_model == 1024
  scaling = load_config(os.path.join(ROOT, "configs/scaling_laws.py"), ["--config.model.d_model=64"])
  assert scaling.model.d_ff == 256
  assert scaling.optimizer.learning_rate == pytest.approx(
      kaplan_learning_rate(scaling.model.num_layers, 64, scaling.lr_scale))
  explicit = load_config(os.path.join(ROOT, "configs/scaling_laws.py"),
                         ["--config.model.d_model=64", "--config.optimizer.learning_rate=0.01",
                          "--config.model.d_ff=100"])
  assert explicit.optimizer.learning_rate == 0.01 and explicit.model.d_ff == 100  # explicit wins


def test_held_out_and_training_streams_never_alias():
  from core.task import heldout_rng, step_rng  # pylint: disable=g-import-not-at-top
  draws = {name: rng.integers(0, 2**62, 4).tobytes() for name, rng in {
      "step 0": step_rng(0, 0), "step 0 extra 0": step_rng(0, 0, 0), "held": heldout_rng(0),
      "held 0": heldout_rng(0, 0), "held 0 0": heldout_rng(0, 0, 0), "held 3": heldout_rng(0, 3)}.items()}
  assert len(set(draws.values())) == len(draws)
  # The plain held-out stream is numpy's generator of [seed, HELD_OUT_STREAM] (documented above).
  np.testing.assert_array_equal(heldout_rng(5).integers(0, 9, 5),
                                np.random.default_rng([5, 2**32 - 1]).integers(0, 9, 5))
