"""Multi-process start-up: one `initialize()` for TPU pods, SLURM, plain hosts and local tests.

Where the process count, id and coordinator come from, first match wins:
  1. arguments (launch.train's --coordinator/--num_processes/--process_id),
  2. environment: JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID
     (launch.local and launch.multinode set these),
  3. the cluster jax itself detects (TPU VM pod / GKE, SLURM, Open MPI),
  4. none of these: one process, and jax.distributed is not started.

A lost peer must not hang the others. jax's coordination service stops every process
("Terminating process because the JAX distributed service detected fatal errors") once
a peer has missed heartbeats for `heartbeat_timeout_s`, or at once if the coordinator
(process 0) itself dies; the exit status is non-zero (SIGABRT). The default here is
shorter than jax's 100 s so that a preempted host frees the pod quickly. A peer that is
alive but stuck keeps sending heartbeats; `step_watchdog()` ends such a run instead.

Preemption: spot / preemptible VMs get a SIGTERM some seconds before they are taken away.
`PreemptionWatch` turns it into a checkpoint: with jax.distributed running, through jax's
preemption sync point (the notice reaches every process, they agree on the next step the
fastest one has not passed, and each stops there); for a lone process, through a plain
signal handler. The training loop saves a checkpoint at that step and raises `Preempted`,
so the process exits with EXIT_PREEMPTED (76); re-running the same command resumes.
"""
from __future__ import annotations

import dataclasses
import faulthandler
import os
import signal
import sys
import threading
import time
from typing import Mapping, Sequence

import jax

from core.task import ConfigError

ENV_COORDINATOR = "JAX_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX_PROCESS_ID"
ENV_HEARTBEAT = "JAX_HEARTBEAT_TIMEOUT_SECONDS"
ENV_STEP_TIMEOUT = "JAX_STEP_TIMEOUT_SECONDS"

DEFAULT_HEARTBEAT_TIMEOUT_S = 60
DEFAULT_INIT_TIMEOUT_S = 300
DEFAULT_STEP_TIMEOUT_S = 1800  # multi-process runs only; room for an eval and a checkpoint save
EXIT_STALLED = 75     # the step watchdog stopped a stuck process
EXIT_PREEMPTED = 76   # SIGTERM (a preemption notice): a checkpoint was saved; re-run to resume

_started: "ProcessSpec | None" = None


@dataclasses.dataclass(frozen=True)
class ProcessSpec:
  """Where this process sits in the job, and what said so."""
  coordinator: str | None
  num_processes: int
  process_id: int
  source: str  # "single" | "flags" | "env" | a jax cluster name ("SlurmCluster", ...)
  local_device_ids: tuple[int, ...] | None = None


def _int_or_none(value, name: str) -> int | None:
  if value is None or value == "":
    return None
  try:
    return int(value)
  except ValueError:
    raise ConfigError(f"{name} must be an integer, got {value!r}") from None


def _detect_cluster():
  """jax's own cluster detection: the first cluster type whose environment is present."""
  try:
    from jax._src import clusters  # private, but it is exactly what jax.distributed uses
  except ImportError:  # a jax without it: only explicit flags/env work
    return None
  for env in clusters.ClusterEnv._cluster_types:  # pylint: disable=protected-access
    if not env.opt_in_only_method and env.is_env_present():
      return env
  return None


def resolve(coordinator: str | None = None,
            num_processes: int | None = None,
            process_id: int | None = None,
            environ: Mapping[str, str] | None = None,
            init_timeout_s: int = DEFAULT_INIT_TIMEOUT_S) -> ProcessSpec:
  """Works out (coordinator, count, id) without starting anything."""
  environ = os.environ if environ is None else environ
  from_flags = (coordinator, num_processes, process_id)
  from_env = (environ.get(ENV_COORDINATOR) or None,
              _int_or_none(environ.get(ENV_NUM_PROCESSES), ENV_NUM_PROCESSES),
              _int_or_none(environ.get(ENV_PROCESS_ID), ENV_PROCESS_ID))
  if any(v is not None for v in from_flags + from_env):
    merged = [f if f is not None else e for f, e in zip(from_flags, from_env)]
    source = "flags" if any(v is not None for v in from_flags) else "env"
    addr, n, i = merged
    if n == 1 and addr is None and i in (None, 0):
      return ProcessSpec(None, 1, 0, "single")
    missing = [name for name, v in zip(("coordinator", "num_processes", "process_id"), merged)
               if v is None]
    if missing:
      raise ConfigError(
          f"multi-process start needs coordinator, num_processes and process_id; {', '.join(missing)} "
          f"missing: pass --{missing[0]} or set {ENV_COORDINATOR}/{ENV_NUM_PROCESSES}/{ENV_PROCESS_ID}")
    if not 0 <= i < n:
      raise ConfigError(f"process_id must be in [0, {n}), got {i}")
    return ProcessSpec(addr, n, i, source)

  cluster = _detect_cluster()
  if cluster is None:
    return ProcessSpec(None, 1, 0, "single")
  n = cluster.get_process_count()
  if n == 1:
    return ProcessSpec(None, 1, 0, "single")
  from jax._src import clusters
  addr, n, i, local_ids = clusters.ClusterEnv.auto_detect_unset_distributed_params(
      None, None, None, None, cluster.name, init_timeout_s)
  return ProcessSpec(addr, n, i, cluster.__name__,
                     tuple(local_ids) if local_ids is not None else None)


def initialize(coordinator: str | None = None,
               num_processes: int | None = None,
               process_id: int | None = None,
               *,
               heartbeat_timeout_s: int | None = None,
               init_timeout_s: int = DEFAULT_INIT_TIMEOUT_S,
               local_device_ids: Sequence[int] | None = None) -> ProcessSpec:
  """Starts jax.distributed unless this is a single process; call before any jax computation.

  Idempotent: a second call returns the first call's ProcessSpec.
  """
  global _started
  if _started is not None:
    return _started
  spec = resolve(coordinator, num_processes, process_id, init_timeout_s=init_timeout_s)
  if spec.num_processes == 1:
    _started = spec
    return spec
  if heartbeat_timeout_s is None:
    heartbeat_timeout_s = _int_or_none(os.environ.get(ENV_HEARTBEAT), ENV_HEARTBEAT)
  heartbeat_timeout_s = heartbeat_timeout_s or DEFAULT_HEARTBEAT_TIMEOUT_S
  # Cross-process collectives between CPU devices need an implementation; gloo ships in jaxlib.
  # It is harmless on TPU/GPU, where only the (idle) host backend uses it.
  jax.config.update("jax_cpu_collectives_implementation", "gloo")
  ids = local_device_ids if local_device_ids is not None else spec.local_device_ids
  # One line per process: on a pod, each host's log then says where it sits in the job.
  print(f"jax.distributed: process {spec.process_id} of {spec.num_processes}, coordinator "
        f"{spec.coordinator} (from {spec.source}), heartbeat timeout {heartbeat_timeout_s} s", flush=True)
  try:
    jax.distributed.initialize(
        coordinator_address=spec.coordinator,
        num_processes=spec.num_processes,
        process_id=spec.process_id,
        local_device_ids=list(ids) if ids is not None else None,
        cluster_detection_method="deactivate",  # resolve() already chose; do not guess again
        initialization_timeout=init_timeout_s,
        heartbeat_timeout_seconds=heartbeat_timeout_s,
        # At a normal exit every process waits at a barrier for the others; a dead peer
        # should not keep the survivors there for jax's default 5 minutes.
        shutdown_timeout_seconds=max(2 * heartbeat_timeout_s, 30),
    )
  except RuntimeError as e:
    if "must be called before" in str(e):
      raise ConfigError("core.distributed.initialize() must run before any jax computation or "
                        "jax.devices() call; move it to the top of the program") from e
    raise
  _started = dataclasses.replace(spec, local_device_ids=tuple(ids) if ids is not None else None)
  return _started


_barriers = 0


def barrier(name: str, timeout_s: float = DEFAULT_STEP_TIMEOUT_S) -> None:
  """Waits until every process gets here; nothing for one process.

  It goes through the coordination service, not a device collective: on CPU, the first gloo
  collective of a device group gives late peers only 30 s to join ("Gloo context
  initialization failed: ... GetKeyValue() timed out"), less than processes can drift apart
  while compiling (one hits the compilation cache, another compiles).
  """
  global _barriers
  if jax.process_count() == 1:
    return
  from jax._src import distributed as jax_distributed  # the client jax.distributed started
  _barriers += 1
  jax_distributed.global_state.client.wait_at_barrier(f"{name}:{_barriers}", int(timeout_s * 1000))


class StepWatchdog:
  """Ends this process when no training step has finished for `timeout_s` seconds.

  Heartbeats catch a peer that died or froze, not one that is alive but stuck (say, blocked
  reading its data shard): the others would wait in a collective for ever. With a watchdog
  in every process the stuck run ends instead: the stalled processes exit with EXIT_STALLED,
  printing their Python stacks, and the rest follow through the lost-heartbeat path.
  """

  def __init__(self, timeout_s: float, exit_code: int = EXIT_STALLED):
    self.timeout_s = timeout_s
    self.exit_code = exit_code
    self._last, self._step = time.monotonic(), None
    self._stop = threading.Event()
    if timeout_s > 0:
      threading.Thread(target=self._watch, name="step-watchdog", daemon=True).start()

  def kick(self, step: int | None = None) -> None:
    self._last, self._step = time.monotonic(), step

  def close(self) -> None:
    self._stop.set()

  def _watch(self) -> None:
    while not self._stop.wait(min(5.0, self.timeout_s / 4)):
      idle = time.monotonic() - self._last
      if idle > self.timeout_s:
        print(f"error: no training step finished for {idle:.0f} s (last finished: step {self._step}); "
              f"a process of this job is stuck, so this one stops (the limit is {ENV_STEP_TIMEOUT}="
              f"{self.timeout_s:g}). Python stacks of this process:", file=sys.stderr, flush=True)
        faulthandler.dump_traceback(file=sys.stderr, all_threads=True)
        os._exit(self.exit_code)  # the main thread is blocked: raising there is not possible


def step_watchdog(timeout_s: float | None = None) -> StepWatchdog:
  """The training loop's watchdog: `timeout_s`, else $JAX_STEP_TIMEOUT_SECONDS, else 30 minutes
  when several processes run and off for one (0 turns it off)."""
  if timeout_s is None:
    env = os.environ.get(ENV_STEP_TIMEOUT)
    if env:
      timeout_s = float(env)
    else:
      timeout_s = DEFAULT_STEP_TIMEOUT_S if jax.process_count() > 1 else 0
  return StepWatchdog(timeout_s)


def _client():
  from jax._src import distributed as jax_distributed  # the client jax.distributed started
  return jax_distributed.global_state.client


_agreements = 0


def all_agree(ok: bool, name: str, timeout_s: float = DEFAULT_STEP_TIMEOUT_S) -> bool:
  """True if `ok` is true in every process (through the coordination service; `ok` for one process).

  Every process must call it, in the same order.
  """
  global _agreements
  client = _client() if jax.process_count() > 1 else None
  if client is None:
    return bool(ok)
  _agreements += 1
  key = f"reading_list/agree/{name}:{_agreements}"
  client.key_value_set(f"{key}/{jax.process_index()}", "1" if ok else "0")
  return all(client.blocking_key_value_get(f"{key}/{i}", int(timeout_s * 1000)) == "1"
             for i in range(jax.process_count()))


class Preempted(SystemExit):
  """The run stopped for a preemption notice after saving a checkpoint at `step`.

  A SystemExit: uncaught, the process exits with EXIT_PREEMPTED and no traceback.
  """

  def __init__(self, step: int):
    super().__init__(EXIT_PREEMPTED)
    self.step = step


def _preemption_sync_manager():
  from jax._src import distributed as jax_distributed
  if jax_distributed.global_state.client is None:
    return None
  return jax_distributed.global_state.preemption_sync_manager


class PreemptionWatch:
  """Says at which step the training loop stops for a preemption notice (SIGTERM).

  `reached(step)` must be called by every process at every step, with the same step numbers
  (the number of updates done); it is True at the one step where all of them stop.

  - jax.distributed running (any process count): jax's preemption service, whose own SIGTERM
    handler (installed by jax.distributed.initialize) propagates the notice to every process;
    `jax.experimental.multihost_utils.reached_preemption_sync_point` then turns true at the
    same step everywhere (one past the step the fastest process had reported). orbax's
    CheckpointManager.save asks the same sync point with the same step numbers.
  - one process without jax.distributed: a Python SIGTERM handler sets a flag, read at the
    next step. The previous handler is put back by `close()`.
  - jax.distributed with the preemption service turned off (jax_enable_preemption_service):
    nothing; SIGTERM ends the processes as before.
  The sync point counts from the last step each process had reported, 0 before its first
  `reached()` call: a notice that comes in the first seconds of a resumed multi-process run
  (before core.train asks, right after jax.distributed starts) points at step 1, which that
  run never reaches, so it trains on until the VMs go away and later resumes from its newest
  checkpoint, as without this class.
  """

  def __init__(self):
    self.signalled = False
    self._previous, self._installed = None, False
    self._sync = _preemption_sync_manager() is not None
    if (not self._sync and _client() is None
        and threading.current_thread() is threading.main_thread()):
      self._previous = signal.signal(signal.SIGTERM, self._on_sigterm)
      self._installed = True

  def _on_sigterm(self, signum, frame):  # pylint: disable=unused-argument
    self.signalled = True

  def reached(self, step: int) -> bool:
    if self._sync:
      from jax.experimental import multihost_utils  # pylint: disable=g-import-not-at-top
      return multihost_utils.reached_preemption_sync_point(int(step))
    return self.signalled

  def close(self) -> None:
    if self._installed:
      signal.signal(signal.SIGTERM, signal.SIG_DFL if self._previous is None else self._previous)
      self._previous, self._installed = None, False
