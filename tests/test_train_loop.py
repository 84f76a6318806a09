"""The trainer end to end through `python -m launch.train`: resume, bad input, divergence."""
import json
import os
import signal
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from core import config as config_lib
from core.data import local_batch
from core.metrics import read_metrics
from core.optim import make_optimizer, noam_schedule
from core.task import ConfigError
from core.train import Trainer
from tests import toy_task

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOY = os.path.join("tests", "toy_task.py")


def launch(workdir, *overrides, config=TOY, env=None, wait=True, devices=1):
  full_env = dict(os.environ, JAX_PLATFORMS="cpu", JAX_LOG_COMPILES="1",
                  XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", **(env or {}))
  cmd = [sys.executable, "-m", "launch.train", "--config", config, "--workdir", str(workdir), *overrides]
  if not wait:
    return subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  return subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=600)


def restored_params(workdir, config_overrides=()):
  config = config_lib.load_config(TOY, config_overrides)
  trainer = Trainer(config, devices=jax.devices()[:1])
  from core.checkpoint import Checkpointer  # pylint: disable=g-import-not-at-top
  ckpt = Checkpointer(str(workdir))
  state, _ = ckpt.restore(ckpt.latest_step(), trainer.abstract_state(), trainer.param_signature())
  ckpt.close()
  return jax.device_get(state.params)


def train_metrics(workdir):
  return [(r["step"], r["loss"], r["grad_norm"]) for r in read_metrics(str(workdir), "train")]


# ---- resume --------------------------------------------------------------------

def test_resume_after_sigkill_is_exact(tmp_path):
  """A run killed (SIGKILL) after a checkpoint and relaunched equals an uninterrupted run."""
  overrides = ["--config.total_steps=1000", "--config.checkpoint_every=100", "--config.keep_checkpoints=2"]
  reference = launch(tmp_path / "reference", *overrides)
  assert reference.returncode == 0, reference.stderr[-2000:]

  killed = tmp_path / "killed"
  proc = launch(killed, *overrides, wait=False)
  deadline = time.time() + 300
  while time.time() < deadline and not os.path.isdir(killed / "checkpoints" / "200"):
    time.sleep(0.05)
  proc.send_signal(signal.SIGKILL)
  proc.wait()
  steps_before_kill = [r["step"] for r in read_metrics(str(killed), "train")]
  assert 200 <= max(steps_before_kill) < 1000, "the kill must land mid-run"

  resumed = launch(killed, *overrides)
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert "resumed from step" in resumed.stdout
  assert train_metrics(killed) == train_metrics(tmp_path / "reference")
  jax.tree.map(np.testing.assert_array_equal, restored_params(killed), restored_params(tmp_path / "reference"))


# ---- bad input: one line, non-zero, nothing compiled ------------------------------

def assert_clean_error(result, *fragments):
  assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
  assert "Traceback" not in result.stderr
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("error: ")
  for fragment in fragments:
    assert fragment in last, last
  assert "_train_step" not in result.stderr, "the train step was compiled before the error"


def test_unknown_config_key(tmp_path):
  assert_clean_error(launch(tmp_path, "--config.optimizer.lernrate=0.1"), "unknown config key", "learning_rate")


def test_mesh_that_does_not_fit(tmp_path):
  assert_clean_error(launch(tmp_path, "--config.mesh.data=3", devices=8), "does not fit 8 devices")


def test_missing_dataset_names_install_command(tmp_path):
  result = launch(tmp_path / "w", "--config.total_steps=2", config="configs/transformer_lm.py:tiny",
                  env={"READING_LIST_DATA": str(tmp_path / "empty")})
  assert_clean_error(result, "python -m core.datasets shakespeare")


def test_checkpoint_of_a_different_model(tmp_path):
  first = launch(tmp_path, "--config.total_steps=5")
  assert first.returncode == 0, first.stderr[-2000:]
  before = sorted(os.listdir(tmp_path / "checkpoints"))
  assert_clean_error(launch(tmp_path, "--config.data.dim=6", "--config.total_steps=10"), "different model")
  assert sorted(os.listdir(tmp_path / "checkpoints")) == before


def test_divergence_stops_with_step_and_keeps_last_good_checkpoint(tmp_path):
  result = launch(tmp_path, "--config.data.nan_at_step=12")
  assert result.returncode == 3, result.stderr[-2000:]
  last = result.stderr.strip().splitlines()[-1]
  assert "diverged at step 13" in last and "last good checkpoint is step 10" in last, last
  assert sorted(int(d) for d in os.listdir(tmp_path / "checkpoints") if d.isdigit()) == [5, 10]


def test_override_parsing_and_errors():
  c = config_lib.load_config(TOY, ["--config.total_steps=7", "--config.optimizer.learning_rate=0.5",
                                   "--config.mesh.data=2", "--config.optimizer.name=adam"])
  assert (c.total_steps, c.optimizer.learning_rate, c.mesh.data, c.optimizer.name) == (7, 0.5, 2, "adam")
  with pytest.raises(ConfigError, match="bad value"):
    config_lib.load_config(TOY, ["--config.total_steps=seven"])
  with pytest.raises(ConfigError, match="is a group"):
    config_lib.load_config(TOY, ["--config.mesh=2"])


# ---- optimizer pieces against formulas ---------------------------------------------

def test_noam_schedule_formula():
  schedule = noam_schedule(2.0, 512, 4000)
  for count in (0, 10, 3999, 4000, 20000):
    s = count + 1
    assert float(schedule(count)) == pytest.approx(2.0 * 512 ** -0.5 * min(s ** -0.5, s * 4000 ** -1.5), rel=1e-6)


def test_gradient_accumulation_equals_full_batch():
  """4 accumulated micro-batches give the full batch's mean gradient (plain SGD step)."""
  def step(accum):
    c = toy_task.get_config()
    c.optimizer.grad_accum_steps = accum
    c.optimizer.learning_rate = 0.1
    trainer = Trainer(c, devices=jax.devices()[:1])
    state, (metrics,) = trainer.run_steps(trainer.init_state(), [0])
    return jax.device_get(state.params), float(metrics["loss"])

  p1, loss1 = step(1)
  p4, loss4 = step(4)
  assert loss4 == pytest.approx(loss1, rel=1e-6)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7), p4, p1)


def test_adadelta_from_config_follows_zeilers_update():
  """Two Adadelta steps against Zeiler (2012), Algorithm 1, written out in numpy."""
  c = toy_task.get_config()
  c.optimizer.name, c.optimizer.learning_rate, c.optimizer.eps, c.optimizer.rho = "adadelta", 1.0, 1e-6, 0.9
  optimizer, _ = make_optimizer(c)
  params = {"w": jnp.array([0.5, -1.0, 2.0])}
  grads = [np.array([0.1, -0.2, 0.3]), np.array([-0.05, 0.4, 0.1])]
  state = optimizer.init(params)
  sq_grad, sq_delta, expected = np.zeros(3), np.zeros(3), np.array([0.5, -1.0, 2.0])
  for g in grads:
    updates, state = optimizer.update({"w": jnp.asarray(g, jnp.float32)}, state, params)
    params = optax.apply_updates(params, updates)
    sq_grad = 0.9 * sq_grad + 0.1 * g ** 2
    delta = -np.sqrt(sq_delta + 1e-6) / np.sqrt(sq_grad + 1e-6) * g
    sq_delta = 0.9 * sq_delta + 0.1 * delta ** 2
    expected = expected + delta
  np.testing.assert_allclose(np.asarray(params["w"]), expected, rtol=1e-5)


def test_clipping_from_config():
  c = toy_task.get_config()
  c.optimizer.clip_norm = 1e-3
  c.optimizer.learning_rate = 1.0
  trainer = Trainer(c, devices=jax.devices()[:1])
  state = trainer.init_state()
  before = jax.device_get(state.params)
  state, _ = trainer.run_steps(state, [0])
  delta = optax.global_norm(jax.tree.map(lambda a, b: a - b, jax.device_get(state.params), before))
  assert float(delta) == pytest.approx(1e-3, rel=1e-4)


def test_data_order_is_a_function_of_seed_and_step():
  c = toy_task.get_config()
  a, b = toy_task.LinearRegression(c), toy_task.LinearRegression(c)
  np.testing.assert_array_equal(a.train_batch(7)["x"], b.train_batch(7)["x"])
  halves = [local_batch(a, 7, c.batch_size, shard, 2)["x"] for shard in range(2)]
  np.testing.assert_array_equal(np.concatenate(halves), a.train_batch(7)["x"])
  assert not np.array_equal(a.train_batch(7)["x"], a.train_batch(8)["x"])


def test_metrics_and_config_files(tmp_path):
  result = launch(tmp_path, "--config.total_steps=6", "--config.log_every=3")
  assert result.returncode == 0, result.stderr[-2000:]
  rows = read_metrics(str(tmp_path), "train")
  assert [r["step"] for r in rows] == [3, 6] and {"loss", "steps_per_sec", "mfu"} <= set(rows[0])
  assert json.load(open(tmp_path / "config.json"))["total_steps"] == 6
  assert any(f.startswith("events.out.tfevents") for f in os.listdir(tmp_path / "tensorboard"))
  assert "ETA" in result.stdout and "MFU" in result.stdout
