"""Faults a long run meets, through `python -m launch.train` (and launch.local for two processes):

1. a damaged newest checkpoint (random bytes, truncated files) -> one warning line, moved aside to
   checkpoints/corrupt-<step> untouched, resume from the newest intact one, same result as an
   uninterrupted run; nothing intact -> one error line (exit 2); a save cut by SIGKILL is ignored;
2. the final checkpoint is committed before the task's host-side evaluate runs, and an exception
   there is one warning line, not the end of the run;
3. SIGTERM (a preemption notice) -> a checkpoint at the step reached, exit EXIT_PREEMPTED, and the
   relaunch ends bit-identical to an uninterrupted run: one process, and 2 processes x 4 devices;
4. re-running a finished run says so and compiles nothing.

The task is tests/toy_task.py's least-squares fit with held-out batches, a pace (data.sleep_s:
seconds per batch, so that a signal lands mid-run on a loaded machine) and a host-side evaluate
that can fail (data.host_eval).
"""
import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

from core import distributed
from core.checkpoint import Checkpointer
from core.config import load_config
from core.metrics import read_metrics
from core.task import heldout_rng
from core.train import Trainer
from launch import local
from tests import toy_task

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HOLD_SAVE_ENV = "TEST_FAULTS_HOLD_SAVE_OF_STEP"

CONFIG = """
from tests import toy_task
def get_config(arg=None):
  c = toy_task.get_config()
  c.task = "tests.test_faults:FaultyLinearRegression"
  c.keep_checkpoints = 10
  c.data.sleep_s = 0.0
  c.data.host_eval = "none"   # none | raise | crash (os._exit at the last step)
  return c
"""


class FaultyLinearRegression(toy_task.LinearRegression):

  def train_batch(self, step):
    if self.config.data.sleep_s:
      time.sleep(self.config.data.sleep_s)
    return super().train_batch(step)

  def eval_batches(self):
    rng = heldout_rng(self.config.seed)
    x = rng.normal(size=(self.config.batch_size, self.config.data.dim)).astype(np.float32)
    return [{"x": x, "y": (x @ np.arange(1, self.config.data.dim + 1) + 0.5).astype(np.float32)}]

  def evaluate(self, variables, step):
    if self.config.data.host_eval == "raise":
      raise RuntimeError(f"sampling broke at step {step}")
    if self.config.data.host_eval == "crash" and step == self.config.total_steps:
      os._exit(9)  # a hard crash (segfault, OOM kill) in the host-side evaluation
    return {}


def _hold_checkpoint_commit(step: int):
  """In a launched run: the save of `step` writes everything, then waits before orbax commits it
  (renames <step>.orbax-checkpoint-tmp to <step>), so that a SIGKILL lands mid-save."""
  from orbax.checkpoint._src.path import atomicity  # pylint: disable=g-import-not-at-top
  finalize = atomicity.AtomicRenameTemporaryPath.finalize

  async def held(self):
    if self.get_final().name == str(step):
      print(f"holding the commit of checkpoint {step}", flush=True)
      await asyncio.sleep(600)
    return await finalize(self)

  atomicity.AtomicRenameTemporaryPath.finalize = held


if os.environ.get(HOLD_SAVE_ENV):
  _hold_checkpoint_commit(int(os.environ[HOLD_SAVE_ENV]))


# ---- helpers ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def config_file(tmp_path_factory):
  path = tmp_path_factory.mktemp("faults_config") / "faulty.py"
  path.write_text(CONFIG)
  return str(path)


def flags(total_steps, **extra):
  values = {"total_steps": total_steps, "checkpoint_every": 5, "log_every": 1, "eval_every": 1000,
            **extra}
  return [f"--config.{k}={v}" for k, v in values.items()]


def launch(config_file, workdir, *overrides, env=None, wait=True, devices=1):
  full_env = {k: v for k, v in os.environ.items() if k != HOLD_SAVE_ENV}
  full_env.update(JAX_PLATFORMS="cpu",
                  XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", **(env or {}))
  cmd = [sys.executable, "-m", "launch.train", "--config", config_file, "--workdir", str(workdir),
         *overrides]
  if not wait:
    return subprocess.Popen(cmd, cwd=ROOT, env=full_env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
  return subprocess.run(cmd, cwd=ROOT, env=full_env, capture_output=True, text=True, timeout=600)


def checkpoints(workdir):
  """Committed checkpoint steps (orbax's unfinished saves are <step>.orbax-checkpoint-tmp*)."""
  directory = os.path.join(workdir, "checkpoints")
  return sorted(int(d) for d in os.listdir(directory) if d.isdigit()) if os.path.isdir(directory) else []


def final_params(config_file, workdir, step, devices=1, **overrides):
  config = load_config(config_file, flags(step, **overrides))
  trainer = Trainer(config, devices=jax.devices()[:devices])
  checkpointer = Checkpointer(str(workdir), async_save=False)
  try:
    state, _ = checkpointer.restore(step, trainer.abstract_state(), trainer.param_signature())
  finally:
    checkpointer.close()
  return jax.device_get(state.params)


def assert_bit_identical(a, b):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def train_rows(workdir):
  return [(r["step"], r["loss"], r["grad_norm"]) for r in read_metrics(str(workdir), "train")]


def logged_steps(workdir):
  """Train steps logged so far (the file may be mid-write)."""
  try:
    return [r["step"] for r in read_metrics(str(workdir), "train")]
  except (ValueError, OSError):
    return []


def assert_no_traceback(result):
  assert "Traceback" not in result.stderr, result.stderr[-3000:]


def warning_lines(result):
  return [line for line in (result.stdout + result.stderr).splitlines() if "warning" in line.lower()]


def snapshot(folder):
  out = {}
  for root, _, files in os.walk(folder):
    for name in files:
      path = os.path.join(root, name)
      with open(path, "rb") as f:
        out[os.path.relpath(path, folder)] = f.read()
  return out


def damage(folder, how, rng):
  for root, _, files in os.walk(folder):
    for name in files:
      path = os.path.join(root, name)
      size = os.path.getsize(path)
      if how == "random_bytes":
        with open(path, "wb") as f:
          f.write(rng.integers(0, 256, size, dtype=np.uint8).tobytes())
      else:
        os.truncate(path, size // 2)


@pytest.fixture(scope="module")
def reference(config_file, tmp_path_factory):
  """An uninterrupted 20-step run: checkpoints at 5, 10, 15, 20."""
  workdir = tmp_path_factory.mktemp("faults_reference") / "run"
  result = launch(config_file, workdir, *flags(20))
  assert result.returncode == 0, result.stderr[-3000:]
  assert checkpoints(workdir) == [5, 10, 15, 20]
  return workdir


def copy_at_step(src, dst, step):
  """The workdir as it was when `step` was its newest checkpoint (metrics past it are dropped on resume)."""
  shutil.copytree(src, dst)
  for s in checkpoints(dst):
    if s > step:
      shutil.rmtree(os.path.join(dst, "checkpoints", str(s)))


# ---- 1. damaged checkpoints ---------------------------------------------------------------------

@pytest.mark.parametrize("how", ["random_bytes", "truncated"])
def test_damaged_newest_checkpoint_falls_back_to_the_newest_intact_one(config_file, reference, tmp_path, how):
  workdir = tmp_path / "run"
  copy_at_step(reference, workdir, 15)
  damage(workdir / "checkpoints" / "15", how, np.random.default_rng(0))
  damaged = snapshot(workdir / "checkpoints" / "15")

  result = launch(config_file, workdir, *flags(20))
  assert result.returncode == 0, result.stderr[-3000:]
  assert_no_traceback(result)
  warnings = warning_lines(result)
  assert len(warnings) == 1, warnings
  assert "checkpoint step 15" in warnings[0] and "corrupt-15" in warnings[0], warnings[0]
  assert "resuming from step 10" in warnings[0], warnings[0]
  assert "resumed from step 10" in result.stdout
  # The damaged files are kept as they were, beside the checkpoints; step 15 was saved again.
  assert snapshot(workdir / "checkpoints" / "corrupt-15") == damaged
  assert checkpoints(workdir) == [5, 10, 15, 20]
  assert train_rows(workdir) == train_rows(reference)
  assert_bit_identical(final_params(config_file, workdir, 20), final_params(config_file, reference, 20))


def test_no_intact_checkpoint_is_one_error_line_and_changes_nothing(config_file, reference, tmp_path):
  workdir = tmp_path / "run"
  copy_at_step(reference, workdir, 10)
  rng = np.random.default_rng(1)
  for step in (5, 10):
    damage(workdir / "checkpoints" / str(step), "random_bytes", rng)
  before = snapshot(workdir / "checkpoints")

  result = launch(config_file, workdir, *flags(20))
  assert result.returncode == 2, result.stderr[-3000:]
  assert_no_traceback(result)
  last = result.stderr.strip().splitlines()[-1]
  assert last.startswith("error: no checkpoint in") and "can be read back" in last, last
  assert "step 10:" in last and "step 5:" in last and "--workdir" in last, last
  assert snapshot(workdir / "checkpoints") == before


def test_checkpoint_save_cut_by_sigkill_is_ignored(config_file, reference, tmp_path):
  """SIGKILL while step 10 is being saved (all written, not yet committed): the relaunch resumes
  from step 5 and ends as the uninterrupted run."""
  workdir = tmp_path / "run"
  proc = launch(config_file, workdir, *flags(20), env={HOLD_SAVE_ENV: "10"}, wait=False)
  for line in proc.stdout:  # (the test's timeout bounds this)
    if line.startswith("holding the commit of checkpoint 10"):
      break
  else:
    pytest.fail(f"the run ended before saving step 10: {proc.communicate()[1][-3000:]}")
  proc.send_signal(signal.SIGKILL)
  proc.communicate()
  directory = workdir / "checkpoints"
  assert checkpoints(workdir) == [5]
  pending = [d for d in os.listdir(directory) if d.startswith("10.orbax-checkpoint-tmp")]
  assert pending and os.listdir(directory / pending[0] / "state"), "no unfinished save was left behind"

  result = launch(config_file, workdir, *flags(20))
  assert result.returncode == 0, result.stderr[-3000:]
  assert_no_traceback(result)
  assert "resumed from step 5" in result.stdout
  # orbax replaces its unfinished folder when it saves step 10 again, and says so; nothing else.
  others = [w for w in warning_lines(result) if "since it is not finalized" not in w]
  assert not others, others
  assert checkpoints(workdir) == [5, 10, 15, 20]
  assert_bit_identical(final_params(config_file, workdir, 20), final_params(config_file, reference, 20))


def test_checkpoint_of_another_model_is_still_refused(config_file, reference, tmp_path):
  workdir = tmp_path / "run"
  copy_at_step(reference, workdir, 15)
  damage(workdir / "checkpoints" / "15", "truncated", np.random.default_rng(2))
  result = launch(config_file, workdir, *flags(20), "--config.data.dim=6")
  assert result.returncode == 2, result.stderr[-3000:]
  assert "different model" in result.stderr.strip().splitlines()[-1]
  assert checkpoints(workdir) == [5, 10, 15]  # nothing moved


# ---- 2. the end of a run: checkpoint first, host-side evaluate may fail ----------------------------

def test_final_checkpoint_is_committed_before_host_evaluation(config_file, reference, tmp_path):
  workdir = tmp_path / "run"
  result = launch(config_file, workdir, *flags(20, **{"data.host_eval": "crash"}))
  assert result.returncode == 9, result.stderr[-3000:]  # the evaluate of step 20 crashed hard
  assert checkpoints(workdir) == [5, 10, 15, 20]
  assert_bit_identical(final_params(config_file, workdir, 20), final_params(config_file, reference, 20))


def test_host_evaluate_exception_is_one_warning_line(config_file, tmp_path):
  workdir = tmp_path / "run"
  result = launch(config_file, workdir, *flags(10, eval_every=5, **{"data.host_eval": "raise"}))
  assert result.returncode == 0, result.stderr[-3000:]
  assert_no_traceback(result)
  warnings = warning_lines(result)
  assert len(warnings) == 2, warnings  # the evaluations of steps 5 and 10
  for step, line in zip((5, 10), warnings):
    assert f"RuntimeError: sampling broke at step {step}" in line, line
    assert "FaultyLinearRegression.evaluate" in line, line
  evals = read_metrics(str(workdir), "eval")
  assert [r["step"] for r in evals] == [5, 10] and all(np.isfinite(r["loss"]) for r in evals)
  assert checkpoints(workdir) == [5, 10]


# ---- 3. preemption -----------------------------------------------------------------------------

PREEMPT_STEPS = 300


def preempt_flags(sleep_s):
  return flags(PREEMPT_STEPS, checkpoint_every=100, **{"data.sleep_s": sleep_s})


def preempted_at(output) -> int:
  found = re.findall(r"preempted \(SIGTERM\): saved a checkpoint at step (\d+) ", output)
  assert len(found) == 1, output[-3000:]
  return int(found[0])


def wait_for_steps(workdir, at_least, procs, log=lambda: ""):
  deadline = time.monotonic() + 300
  while max(logged_steps(workdir), default=0) < at_least:
    assert all(p.poll() is None for p in procs), log()
    assert time.monotonic() < deadline, f"step {at_least} not reached within 5 minutes\n{log()}"
    time.sleep(0.05)


def test_sigterm_saves_the_reached_step_and_the_relaunch_is_exact(config_file, tmp_path):
  reference = tmp_path / "reference"
  result = launch(config_file, reference, *preempt_flags(0.0))
  assert result.returncode == 0, result.stderr[-3000:]

  workdir = tmp_path / "preempted"
  proc = launch(config_file, workdir, *preempt_flags(0.04), wait=False)
  wait_for_steps(workdir, 20, [proc])
  proc.send_signal(signal.SIGTERM)
  out, err = proc.communicate(timeout=300)
  assert proc.returncode == distributed.EXIT_PREEMPTED, (proc.returncode, err[-3000:])
  assert "Traceback" not in err, err[-3000:]
  reached = preempted_at(out)
  assert 20 <= reached < PREEMPT_STEPS, "SIGTERM must land mid-run"
  assert reached == max(logged_steps(workdir))  # the step it had reached (every step is logged)
  assert checkpoints(workdir)[-1] == reached  # not a multiple of checkpoint_every (100): the preemption's

  resumed = launch(config_file, workdir, *preempt_flags(0.0))
  assert resumed.returncode == 0, resumed.stderr[-3000:]
  assert f"resumed from step {reached}" in resumed.stdout
  assert train_rows(workdir) == train_rows(reference)
  assert_bit_identical(final_params(config_file, workdir, PREEMPT_STEPS),
                       final_params(config_file, reference, PREEMPT_STEPS))


def start_local(config_file, workdir, overrides, log_dir, cache_dir):
  workers = local.local_workers(
      2, 4, ["--config", config_file, "--workdir", str(workdir), *overrides], local.free_port(),
      heartbeat_timeout_s=10, base_xla_flags=os.environ.get("XLA_FLAGS", ""))
  for w in workers:  # later launches of the same program skip compilation
    w.env.update(JAX_COMPILATION_CACHE_DIR=str(cache_dir), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
    w.env.pop(HOLD_SAVE_ENV, None)
  return local.start(workers, log_dir=str(log_dir), echo=False, cwd=ROOT)


def test_sigterm_two_processes_agree_on_a_step_and_the_relaunch_is_exact(config_file, tmp_path):
  cache = tmp_path / "jax_cache"

  def run(workdir, overrides, logs):
    outcome = local.supervise(start_local(config_file, workdir, overrides, logs, cache),
                              grace_s=60, timeout_s=600)
    log = (logs / "process_0.log").read_text()
    assert outcome.exit_code == 0, f"{local.describe(outcome)}\n{log[-3000:]}"
    return log

  reference = tmp_path / "reference"
  run(reference, preempt_flags(0.0), tmp_path / "reference_logs")

  workdir, logs = tmp_path / "preempted", tmp_path / "preempted_logs"
  procs = start_local(config_file, workdir, preempt_flags(0.04), logs, cache)
  log0 = lambda: (logs / "process_0.log").read_text()[-3000:]
  wait_for_steps(workdir, 20, procs, log0)
  for p in procs:  # a preempted pod: every host gets the notice
    p.send_signal(signal.SIGTERM)
  outcome = local.supervise(procs, grace_s=120, timeout_s=300)
  assert outcome.returncodes == [distributed.EXIT_PREEMPTED] * 2, f"{local.describe(outcome)}\n{log0()}"
  reached = preempted_at(log0())
  assert 20 <= reached < PREEMPT_STEPS, "SIGTERM must land mid-run"
  assert reached == max(logged_steps(workdir))  # process 0 logs every step
  assert checkpoints(workdir)[-1] == reached  # both processes wrote their shards of one step

  log = run(workdir, preempt_flags(0.0), tmp_path / "relaunch_logs")
  assert f"resumed from step {reached}" in log
  assert "8 devices, 2 processes" in log
  assert train_rows(workdir) == train_rows(reference)
  assert_bit_identical(final_params(config_file, workdir, PREEMPT_STEPS, devices=8),
                       final_params(config_file, reference, PREEMPT_STEPS, devices=8))


# ---- 4. a finished run ----------------------------------------------------------------------------

def test_rerunning_a_finished_run_says_so_and_compiles_nothing(config_file, reference, tmp_path):
  workdir = tmp_path / "run"
  shutil.copytree(reference, workdir)
  before = snapshot(workdir / "checkpoints"), train_rows(workdir)
  result = launch(config_file, workdir, *flags(20), env={"JAX_LOG_COMPILES": "1"})
  assert result.returncode == 0, result.stderr[-3000:]
  lines = result.stdout.strip().splitlines()
  assert lines == [f"run already finished: step 20 of 20 in {workdir / 'checkpoints'} (nothing to do; "
                   "raise --config.total_steps to train further)"], result.stdout
  assert "_train_step" not in result.stderr, "the train step was compiled"
  assert (snapshot(workdir / "checkpoints"), train_rows(workdir)) == before
