"""Several local processes through jax.distributed, as on a pod (launch.local spawns them).

The reference is an unsharded-by-process run: the same config trained in this test process
(1 process x 8 fake devices). Against it:
  1. 2 processes x 4 devices give the same losses and parameters;
  2. a checkpoint written by 2 x 4 continues on 1 x 8 and on 1 x 4 (mesh data=2, fsdp=2);
  3. SIGKILL of one process stops the other within a bounded time, with jax's message,
     and re-launching resumes from the last complete checkpoint;
  4. core.distributed.barrier lets a process that is 40 s late join the first collective.
"""
import fcntl
import os
import shutil
import signal
import time

import jax
import numpy as np
import pytest

from core import checkpoint as checkpoint_lib
from core.config import load_config
from core.metrics import read_metrics
from core.train import Trainer, train
from launch import local

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CONFIG = "configs/transformer_lm.py:tiny"
REFERENCE_STEPS = 12
HEARTBEAT_S = 10
# A lost peer is noticed after HEARTBEAT_S without heartbeats; the rest is slack for a loaded machine.
LOST_PEER_BOUND_S = HEARTBEAT_S + 15
RTOL = 1e-5
# Parameters: the attention key bias has an exactly-zero gradient (softmax ignores a shift
# shared by all keys), so it receives only rounding noise, which Adam rescales into updates
# of up to ~1e-2 x lr per step; two runs whose all-reduce order differs (gloo across processes
# vs. in-process) leave it a few 1e-6 apart. Every other parameter agrees to ~3e-8.
ATOL = 1e-5


def overrides(total_steps, checkpoint_every=3, **extra):
  # decay_steps fixed: the learning-rate schedule must not depend on where a run stops.
  values = {"total_steps": total_steps, "log_every": 1, "eval_every": 10_000,
            "checkpoint_every": checkpoint_every, "keep_checkpoints": 20, "peak_flops": 1e12,
            "optimizer.decay_steps": 200, **extra}
  return [f"--config.{k}={v}" for k, v in values.items()]


def losses(workdir):
  return {r["step"]: r["loss"] for r in read_metrics(workdir, "train")}


def finished_checkpoints(workdir):
  """Steps whose checkpoint orbax has finalised (an interrupted save leaves a '<step>.orbax-...-tmp' folder)."""
  directory = os.path.join(workdir, "checkpoints")
  return sorted(int(d) for d in os.listdir(directory) if d.isdigit()) if os.path.isdir(directory) else []


def restored_params(workdir, step):
  """Parameters of a checkpoint, restored in this process onto its 8-device mesh."""
  trainer = Trainer(load_config(CONFIG, overrides(step)))
  checkpointer = checkpoint_lib.Checkpointer(workdir, async_save=False)
  try:
    state, _ = checkpointer.restore(step, trainer.abstract_state(), trainer.param_signature())
  finally:
    checkpointer.close()
  return jax.device_get(state.params)


def assert_trees_close(a, b, rtol=RTOL, atol=ATOL):
  assert jax.tree.structure(a) == jax.tree.structure(b)
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=atol)


def start_local(num_processes, devices, workdir, train_overrides, cache_dir, log_dir):
  workers = local.local_workers(
      num_processes, devices, ["--config", CONFIG, "--workdir", str(workdir), *train_overrides],
      local.free_port(), heartbeat_timeout_s=HEARTBEAT_S, base_xla_flags=os.environ.get("XLA_FLAGS", ""))
  for w in workers:  # later launches of the same program skip compilation
    w.env.update(JAX_COMPILATION_CACHE_DIR=str(cache_dir), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0")
  return local.start(workers, log_dir=str(log_dir), echo=False, cwd=ROOT)


def run_local(num_processes, devices, workdir, train_overrides, cache_dir, log_dir):
  procs = start_local(num_processes, devices, workdir, train_overrides, cache_dir, log_dir)
  outcome = local.supervise(procs, grace_s=30, timeout_s=600)
  log = (log_dir / "process_0.log").read_text()
  assert outcome.exit_code == 0, f"{local.describe(outcome)}\n{log[-3000:]}"
  return log


def session_root(tmp_path_factory):
  """A folder all pytest-xdist workers of this session share (each has its own basetemp below it)."""
  base = tmp_path_factory.getbasetemp()
  return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def built_once(tmp_path_factory, name, build):
  """`build(folder)` runs once per session, whichever worker gets here first; the others wait."""
  root = session_root(tmp_path_factory)
  folder, done = root / name, root / f"{name}.done"
  with open(root / f"{name}.lock", "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if not done.exists():
      shutil.rmtree(folder, ignore_errors=True)
      folder.mkdir()
      build(folder)
      done.touch()
  return folder


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory):
  return built_once(tmp_path_factory, "mp_jax_cache", lambda folder: None)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
  """1 process x 8 devices, in this process: losses of every step, checkpoints every 3 steps."""
  return built_once(tmp_path_factory, "mp_ref_1x8",
                    lambda wd: train(load_config(CONFIG, overrides(REFERENCE_STEPS)), str(wd / "run"))) / "run"


@pytest.fixture(scope="module")
def two_by_four(tmp_path_factory, cache_dir):
  def build(folder):
    log = run_local(2, 4, folder / "run", overrides(6), cache_dir, folder / "logs")
    assert "8 devices, 2 processes" in log
  return built_once(tmp_path_factory, "mp_run_2x4", build) / "run"


def test_two_processes_match_one_process(reference, two_by_four):
  got, want = losses(two_by_four), losses(reference)
  # Only process 0 writes metrics: exactly one row per step.
  assert [r["step"] for r in read_metrics(two_by_four, "train")] == list(range(1, 7))
  np.testing.assert_allclose([got[s] for s in range(1, 7)], [want[s] for s in range(1, 7)], rtol=RTOL)
  assert_trees_close(restored_params(two_by_four, 6), restored_params(reference, 6))


def _copy_at_step(src, dst, step):
  """A workdir as it was when `step` was its latest checkpoint."""
  shutil.copytree(src, dst)
  for s in finished_checkpoints(dst):
    if s > step:
      shutil.rmtree(os.path.join(dst, "checkpoints", str(s)))


def test_2x4_checkpoint_continues_on_1x8(reference, two_by_four, tmp_path):
  workdir = tmp_path / "resume_1x8"
  _copy_at_step(two_by_four, workdir, 3)
  train(load_config(CONFIG, overrides(6)), str(workdir))
  got, want = losses(workdir), losses(reference)
  np.testing.assert_allclose([got[s] for s in (4, 5, 6)], [want[s] for s in (4, 5, 6)], rtol=RTOL)
  assert_trees_close(restored_params(workdir, 6), restored_params(reference, 6))


def test_2x4_checkpoint_continues_on_1x4_with_another_mesh(reference, two_by_four, cache_dir, tmp_path):
  workdir = tmp_path / "resume_1x4"
  _copy_at_step(two_by_four, workdir, 3)
  log = run_local(1, 4, workdir, overrides(6, **{"mesh.data": 2, "mesh.fsdp": 2}), cache_dir,
                  tmp_path / "logs")
  assert "resumed from step 3" in log
  assert "mesh {'data': 2, 'fsdp': 2, 'tensor': 1, 'stage': 1}, 4 devices, 1 processes" in log
  got, want = losses(workdir), losses(reference)
  # Another device count changes the order of the gradient reductions: a looser tolerance.
  np.testing.assert_allclose([got[s] for s in (4, 5, 6)], [want[s] for s in (4, 5, 6)], rtol=1e-4)
  assert_trees_close(restored_params(workdir, 6), restored_params(reference, 6), rtol=1e-4)


def test_lost_process_stops_the_other_and_relaunch_resumes(reference, cache_dir, tmp_path):
  workdir, logs = tmp_path / "killed", tmp_path / "logs"
  procs = start_local(2, 4, workdir, overrides(1000, checkpoint_every=2), cache_dir, logs)
  deadline = time.monotonic() + 600
  while not finished_checkpoints(workdir):
    assert all(p.poll() is None for p in procs), (logs / "process_0.log").read_text()[-3000:]
    assert time.monotonic() < deadline, "no checkpoint within 10 minutes"
    time.sleep(0.2)
  os.kill(procs[1].pid, signal.SIGKILL)
  outcome = local.supervise(procs, grace_s=60, failed_at={1: time.monotonic()})

  assert outcome.first_failure == 1 and outcome.returncodes[1] == -signal.SIGKILL
  assert 0 not in outcome.killed, "process 0 was still running 60 s after losing its peer"
  assert outcome.returncodes[0] != 0
  assert outcome.seconds_after_failure[0] < LOST_PEER_BOUND_S, local.describe(outcome)
  log0 = (logs / "process_0.log").read_text()
  # Process 0 learns of the loss either from the coordinator (missed heartbeats) or, when the
  # peer died in the middle of a collective, from that collective's transport (gloo) first.
  by_heartbeat = "another task died" in log0 and "stopped sending heartbeats" in log0
  by_collective = "[Gloo]" in log0
  assert by_heartbeat or by_collective, log0[-3000:]

  latest = finished_checkpoints(workdir)[-1]
  before_kill = losses(workdir)
  log = run_local(2, 4, workdir, overrides(latest + 2, checkpoint_every=2), cache_dir, tmp_path / "relaunch")
  assert f"resumed from step {latest}" in log
  got = losses(workdir)
  assert sorted(got) == list(range(1, latest + 3))
  # The resumed steps match the uninterrupted references: the 1x8 run, and what the
  # killed run had logged past its checkpoint.
  expected = {**losses(reference), **before_kill}
  compared = [s for s in (latest + 1, latest + 2) if s in expected]
  assert compared, f"no reference for steps {latest + 1}, {latest + 2}"
  np.testing.assert_allclose([got[s] for s in compared], [expected[s] for s in compared], rtol=RTOL)


LATE_PEER = """
import sys, time
import numpy as np
from core import distributed
spec = distributed.initialize()
import jax, jax.numpy as jnp
mesh = jax.make_mesh((8,), ("d",), axis_types=(jax.sharding.AxisType.Auto,))
rows = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("d"))
total = jax.jit(jnp.sum, out_shardings=jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec()))
x = jax.make_array_from_process_local_data(rows, np.full((4,), spec.process_id + 1.0, np.float32))
if spec.process_id == 1:
  time.sleep(40)  # e.g. compiling while process 0 found its program in the cache
if sys.argv[1] == "barrier":
  distributed.barrier("first_step")
print("sum", float(total(x)), flush=True)
"""


@pytest.mark.parametrize("mode", ["barrier", "no_barrier"])
def test_barrier_lets_a_late_process_join_its_first_collective(mode, tmp_path):
  """Without the barrier, gloo gives up on the late process after 30 s; with it, both agree."""
  workers = local.local_workers(2, 4, [], local.free_port(), heartbeat_timeout_s=HEARTBEAT_S,
                                base_xla_flags=os.environ.get("XLA_FLAGS", ""))
  for w in workers:
    w.argv = [w.argv[0], "-c", LATE_PEER, mode]
  outcome = local.supervise(local.start(workers, log_dir=str(tmp_path), echo=False, cwd=ROOT),
                            grace_s=60, timeout_s=300)
  logs = [(tmp_path / f"process_{i}.log").read_text() for i in range(2)]
  if mode == "barrier":
    assert outcome.exit_code == 0, logs[0][-2000:]
    assert all("sum 12.0" in log for log in logs)  # 4 x 1 + 4 x 2
  else:
    assert outcome.exit_code != 0
    assert "Gloo context initialization failed" in logs[0]


BATCH_ROWS = """
import numpy as np
from core import distributed
spec = distributed.initialize()
import jax
from jax.sharding import NamedSharding, PartitionSpec as P
from core import data
from core.config import load_config
from core.train import Trainer
trainer = Trainer(load_config("%s", ["--config.mesh.data=2", "--config.mesh.fsdp=2"]))
rows = trainer.process_rows
print("rows", rows.min(), rows.max(), len(rows), flush=True)
whole = jax.jit(lambda b: b, out_shardings=NamedSharding(trainer.mesh, P()))(trainer.global_batch(3))
full = data.local_batch(trainer.task, 3, trainer.config.batch_size)
print("in order", all(np.array_equal(np.asarray(whole[k]), full[k]) for k in full), flush=True)
""" % CONFIG


def test_batch_rows_follow_the_sharding_across_processes(tmp_path):
  """Batch over ("fsdp", "data") with data across 2 processes: each process reads the rows its
  devices hold (two blocks, not one), and the assembled global batch is the one-process batch."""
  workers = local.local_workers(2, 2, [], local.free_port(), heartbeat_timeout_s=HEARTBEAT_S,
                                base_xla_flags=os.environ.get("XLA_FLAGS", ""))
  for w in workers:
    w.argv = [w.argv[0], "-c", BATCH_ROWS]
  outcome = local.supervise(local.start(workers, log_dir=str(tmp_path), echo=False, cwd=ROOT),
                            grace_s=30, timeout_s=300)
  logs = [(tmp_path / f"process_{i}.log").read_text() for i in range(2)]
  assert outcome.exit_code == 0, logs[0][-2000:]
  batch = load_config(CONFIG).batch_size
  # process 0 holds rows [0, B/4) and [B/2, 3B/4): it spans 0 .. 3B/4 - 1 with B/2 rows
  assert f"rows 0 {3 * batch // 4 - 1} {batch // 2}" in logs[0], logs[0][-2000:]
  assert all("in order True" in log for log in logs)
