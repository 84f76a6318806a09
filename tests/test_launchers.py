"""Launchers: the commands they print, the environment each worker gets, and what
core.distributed makes of that environment (coordinator, process count and id)."""
import os
import re
import shlex
import signal
import subprocess
import sys
import tarfile
import threading
import time

import pytest

from core import data as data_lib
from core import distributed
from core.task import ConfigError
from launch import local, multinode, slurm, tpu_pod
from tests import toy_task

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRAIN_ARGS = ["--config", "configs/transformer_lm.py:tiny", "--workdir", "/shared/runs/lm",
              "--config.total_steps=50"]
SLURM_ENV = ("SLURM_JOB_ID", "SLURM_STEP_NODELIST", "SLURM_NTASKS", "SLURM_PROCID", "SLURM_LOCALID")


def printed(module, argv, capsys):
  assert module.main(argv) == 0
  return capsys.readouterr().out


def dry_run(module, argv, capsys):
  """A launcher's --dry-run output for the standard training arguments."""
  return printed(module, [*argv, "--dry-run", "--", *TRAIN_ARGS], capsys)


def parse_env_prefix(line: str) -> tuple[dict, list]:
  """Splits 'A=1 B=2 cmd args' into ({A: 1, B: 2}, [cmd, args])."""
  words = shlex.split(line)
  env = {}
  while words and re.match(r"^[A-Z_][A-Z0-9_]*=", words[0]):
    k, v = words.pop(0).split("=", 1)
    env[k] = v
  return env, words


# ---- core.distributed.resolve -------------------------------------------------

def test_single_process_when_nothing_is_set(monkeypatch):
  for k in SLURM_ENV + ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
    monkeypatch.delenv(k, raising=False)
  spec = distributed.resolve()
  assert (spec.num_processes, spec.process_id, spec.source) == (1, 0, "single")


def test_flags_take_precedence_over_environment():
  env = {"JAX_COORDINATOR_ADDRESS": "envhost:1", "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "3"}
  spec = distributed.resolve("flaghost:2", None, 1, environ=env)
  assert (spec.coordinator, spec.num_processes, spec.process_id, spec.source) == ("flaghost:2", 4, 1, "flags")


@pytest.mark.parametrize("partial,missing", [
    ({"JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "0"}, "coordinator"),
    ({"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "2"}, "process_id"),
])
def test_incomplete_settings_say_what_is_missing(partial, missing):
  with pytest.raises(ConfigError, match=missing):
    distributed.resolve(environ=partial)


def test_bad_process_id_is_rejected():
  with pytest.raises(ConfigError, match=r"\[0, 2\)"):
    distributed.resolve("h:1", 2, 2, environ={})


def test_slurm_tasks_resolve_to_one_process_per_gpu(monkeypatch):
  """Every task of a 2-node x 4-GPU step gets a distinct id, the first node as coordinator,
  and the GPU numbered by its local id (SLURM's variables as srun sets them)."""
  job_id = 4242
  port = job_id % 2**12 + 65535 - 2**12 + 1  # jax's rule: a port derived from the job id
  seen = set()
  for task in range(8):
    for k, v in {"SLURM_JOB_ID": str(job_id), "SLURM_STEP_NODELIST": "gpu[017-018]",
                 "SLURM_NTASKS": "8", "SLURM_PROCID": str(task), "SLURM_LOCALID": str(task % 4)}.items():
      monkeypatch.setenv(k, v)
    for k in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
      monkeypatch.delenv(k, raising=False)
    spec = distributed.resolve()
    assert spec.source == "SlurmCluster"
    assert spec.coordinator == f"gpu017:{port}"
    assert (spec.num_processes, spec.process_id, spec.local_device_ids) == (8, task, (task % 4,))
    seen.add(spec.process_id)
  assert seen == set(range(8))


def test_a_one_task_slurm_step_is_a_single_process(monkeypatch):
  for k, v in {"SLURM_JOB_ID": "7", "SLURM_STEP_NODELIST": "gpu001", "SLURM_NTASKS": "1",
               "SLURM_PROCID": "0", "SLURM_LOCALID": "0"}.items():
    monkeypatch.setenv(k, v)
  assert distributed.resolve().source == "single"


# ---- launch.local -------------------------------------------------------------

def test_local_dry_run_gives_each_process_its_id_and_devices(capsys, monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8 --xla_cpu_foo=1")
  out = dry_run(local, ["-n", "3", "--devices_per_process", "2", "--port", "5123"], capsys)
  lines = out.strip().splitlines()
  assert len(lines) == 3
  for i, line in enumerate(lines):
    env, argv = parse_env_prefix(line)
    assert argv[1:4] == ["-u", "-m", "launch.train"] and argv[4:] == TRAIN_ARGS
    # The test process's own 8-device flag is replaced, other XLA flags kept.
    assert env["XLA_FLAGS"] == "--xla_cpu_foo=1 --xla_force_host_platform_device_count=2"
    assert env["JAX_PLATFORMS"] == "cpu"
    spec = distributed.resolve(environ=env)
    assert (spec.coordinator, spec.num_processes, spec.process_id) == ("localhost:5123", 3, i)


def test_local_supervisor_reports_the_first_failure_and_kills_stragglers():
  """Process 0 fails at once; process 1 would sleep for a minute and is killed after the grace."""
  workers = [local.Worker([sys.executable, "-c", "import sys; print('bye'); sys.exit(7)"], {}),
             local.Worker([sys.executable, "-c", "import time; time.sleep(60)"], {})]
  procs = local.start(workers, echo=False)
  outcome = local.supervise(procs, grace_s=1.0)
  assert outcome.first_failure == 0 and outcome.exit_code == 7
  assert outcome.killed == [1] and outcome.returncodes[1] < 0
  assert "process 0 failed first (exit 7)" in local.describe(outcome)


# ---- launch.multinode ---------------------------------------------------------

def test_multinode_dry_run_environment_per_host(capsys):
  hosts = ["node-a", "node-b", "node-c"]
  out = dry_run(multinode, ["--hosts", ",".join(hosts), "--port", "6000", "--heartbeat_timeout_s", "30"],
                capsys)
  lines = out.strip().splitlines()
  assert len(lines) == 3
  for i, line in enumerate(lines):
    argv = shlex.split(line)
    assert argv[:3] == ["ssh", "-tt", hosts[i]]
    remote = argv[3]
    cd, rest = remote.split(" && ", 1)
    assert cd == "cd ~/reading_list"
    env, cmd = parse_env_prefix(rest)
    assert cmd == ["python3", "-u", "-m", "launch.train", *TRAIN_ARGS]
    assert env["JAX_HEARTBEAT_TIMEOUT_SECONDS"] == "30"
    spec = distributed.resolve(environ=env)
    assert (spec.coordinator, spec.num_processes, spec.process_id) == ("node-a:6000", 3, i)


def test_multinode_remote_command_runs_in_a_shell(tmp_path):
  """The exact line a host runs, executed here by bash (with --help, which needs no jax)."""
  env = multinode.host_env(["localhost"], 1, 0)
  line = multinode.remote_command(env, ROOT, sys.executable, ["--help"])
  out = subprocess.run(["bash", "-c", line], capture_output=True, text=True, check=True).stdout
  assert "--coordinator" in out and "--workdir" in out


# ---- launch.slurm -------------------------------------------------------------

def test_sbatch_script(capsys):
  out = dry_run(slurm, ["--nodes", "4", "--gpus_per_node", "8", "--time", "02:00:00",
                        "--partition", "a100", "--account", "lab", "--requeue", "--heartbeat_timeout_s", "45"],
                capsys)
  header, _, rest = out.partition("\n")
  assert header == "# /shared/runs/lm/job.sbatch"
  script, _, submit = rest.rstrip("\n").rpartition("\n\n")
  assert submit == "sbatch /shared/runs/lm/job.sbatch"
  directives = dict(re.findall(r"^#SBATCH --([\w-]+)(?:=(\S+))?$", script, re.M))
  assert directives == {"job-name": "train", "nodes": "4", "ntasks-per-node": "8", "gpus-per-node": "8",
                        "cpus-per-task": "8", "time": "02:00:00", "output": "/shared/runs/lm/slurm-%j.out",
                        "partition": "a100", "account": "lab", "requeue": ""}
  body = script.splitlines()
  assert "export JAX_HEARTBEAT_TIMEOUT_SECONDS=45" in body
  assert shlex.split(body[-1]) == ["srun", "--kill-on-bad-exit=1", "python3", "-u", "-m", "launch.train",
                                   *TRAIN_ARGS]
  syntax = subprocess.run(["bash", "-n"], input=script, text=True, capture_output=True)
  assert syntax.returncode == 0, syntax.stderr


def test_srun_inside_an_allocation(capsys):
  out = dry_run(slurm, ["--srun", "--nodes", "2", "--gpus_per_node", "4", "--cpus_per_task", "12"], capsys)
  assert shlex.split(out) == ["srun", "--kill-on-bad-exit=1", "--nodes=2", "--ntasks-per-node=4",
                              "--gpus-per-node=4", "--cpus-per-task=12", "python3", "-u", "-m",
                              "launch.train", *TRAIN_ARGS]


# ---- launch.tpu_pod -----------------------------------------------------------

def test_tpu_pod_commands(capsys):
  base = ["--name", "pod", "--zone", "us-central2-b", "--project", "proj"]
  out = printed(tpu_pod, [*base, "--dry-run", "run", "--env", "FOO=a b", "--heartbeat_timeout_s", "40",
                          "--follow", "--", *TRAIN_ARGS], capsys)
  start, follow = [shlex.split(l) for l in out.strip().splitlines()]
  assert start[:7] == ["gcloud", "compute", "tpus", "tpu-vm", "ssh", "pod", "--zone=us-central2-b"]
  assert "--worker=all" in start and "--project=proj" in start
  command = start[-1].removeprefix("--command=")
  busy, _, command = command.partition("fi; ")
  assert busy.startswith("if [ -f ~/train.pid ] && kill -0 $(cat ~/train.pid)")
  assert command == ("cd ~/reading_list || exit 1; export FOO='a b'; export JAX_HEARTBEAT_TIMEOUT_SECONDS=40; "
                     "setsid nohup python3 -u -m launch.train " + shlex.join(TRAIN_ARGS) +
                     " > ~/train.log 2>&1 < /dev/null & echo $! > ~/train.pid")
  assert "--worker=0" in follow and follow[-1] == "--command=tail -n 200 -F ~/train.log"

  out = printed(tpu_pod, [*base, "--multislice", "--dry-run", "setup"], capsys)
  pack, copy, install = out.strip().splitlines()
  assert pack == ("git ls-files -z --cached --others --exclude-standard | "
                  "tar --null -czf /tmp/pod-code.tgz -T -")
  copy = shlex.split(copy)
  assert copy[:7] == ["gcloud", "compute", "tpus", "queued-resources", "scp", "/tmp/pod-code.tgz", "pod:~/code.tgz"]
  assert {"--worker=all", "--node=all"} <= set(copy)
  assert shlex.split(install)[-1].endswith("python3 -m pip install -q -r requirements-tpu.txt")

  out = printed(tpu_pod, [*base, "--multislice", "--dry-run", "create", "--accelerator", "v5litepod-256",
                          "--runtime", "v2-alpha-tpuv5-lite", "--num_slices", "4"], capsys)
  assert shlex.split(out) == ["gcloud", "compute", "tpus", "queued-resources", "create", "pod",
                              "--zone=us-central2-b", "--accelerator-type=v5litepod-256",
                              "--runtime-version=v2-alpha-tpuv5-lite", "--node-count=4", "--node-prefix=pod",
                              "--project=proj"]
  out = printed(tpu_pod, [*base, "--multislice", "--dry-run", "exec", "--", "python3", "-m", "core.datasets",
                          "shakespeare"], capsys)
  argv = shlex.split(out)
  assert {"--worker=all", "--node=all"} <= set(argv)
  assert argv[-1] == "--command=cd ~/reading_list && python3 -m core.datasets shakespeare"
  out = printed(tpu_pod, [*base, "--dry-run", "stop"], capsys)
  assert "--worker=all" in shlex.split(out)


def test_tpu_pod_worker_commands_run_in_a_shell(tmp_path):
  """The start / stop lines a worker runs, executed here by bash with HOME in a temporary folder."""
  pod = tpu_pod.Pod("pod", "z", remote_dir=ROOT, python=sys.executable)
  env = {**os.environ, "HOME": str(tmp_path)}
  pid_file, log = tmp_path / "train.pid", tmp_path / "train.log"

  def remote(cmd):
    return ["bash", "-c", cmd[-1].removeprefix("--command=")]

  subprocess.run(remote(pod.run(["--help"])[0]), env=env, check=True, timeout=60)
  assert int(pid_file.read_text()) > 0
  def usage_logged():
    return log.exists() and "usage: python -m launch.train" in log.read_text()

  deadline = time.monotonic() + 60
  while not usage_logged() and time.monotonic() < deadline:
    time.sleep(0.2)  # the job runs detached: bash returned before it even opened the log
  assert usage_logged()

  # A worker whose run is alive refuses a second one, and `stop` ends that run.
  running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
  try:
    pid_file.write_text(str(running.pid))
    again = subprocess.run(remote(pod.run(["--help"])[0]), env=env, capture_output=True, text=True, timeout=60)
    assert again.returncode == 1 and f"still going (pid {running.pid})" in again.stderr
    subprocess.run(remote(pod.stop()[0]), env=env, check=True, timeout=30)
    assert running.wait(timeout=30) == -signal.SIGTERM
    assert not pid_file.exists()
  finally:
    running.kill()
    running.wait()


def test_tpu_pod_code_archive_holds_the_repository_not_the_environment(tmp_path):
  pod = tpu_pod.Pod(f"test-{os.getpid()}", "z")
  pack = pod.setup()[0]
  tarball = re.search(r"-czf (\S+)", pack).group(1)
  try:
    subprocess.run(pack, shell=True, cwd=ROOT, check=True)
    with tarfile.open(tarball) as tar:
      names = set(tar.getnames())
  finally:
    if os.path.exists(tarball):
      os.remove(tarball)
  assert {"launch/train.py", "core/distributed.py", "configs/transformer_lm.py"} <= names
  assert not any(n.startswith((".venv/", "runs/", ".git/")) for n in names)


# ---- core.distributed.StepWatchdog --------------------------------------------

WATCHED = """
import sys, threading, time
from core import data as data_lib
from core import distributed
dog = distributed.StepWatchdog(float(sys.argv[1]))
for step in range(6):
  time.sleep(0.25)
  dog.kick(step)
print(time.time(), flush=True)  # when the last step finished
if sys.argv[2] == "hang":
  def wait_for_a_stuck_peer():
    threading.Event().wait()
  wait_for_a_stuck_peer()
dog.close()
"""


def test_watchdog_ends_a_stuck_process_with_its_stack():
  p = subprocess.run([sys.executable, "-c", WATCHED, "1.0", "hang"], cwd=ROOT, capture_output=True,
                     text=True, timeout=60)
  stalled_for = time.time() - float(p.stdout.split()[0])
  assert p.returncode == distributed.EXIT_STALLED
  assert "no training step finished" in p.stderr and "last finished: step 5" in p.stderr
  assert "wait_for_a_stuck_peer" in p.stderr  # the stack shows where it was stuck
  assert 1.0 <= stalled_for < 1.0 + 0.25 + 5  # timeout, check interval, slack for a loaded machine


def test_watchdog_leaves_a_progressing_process_alone():
  p = subprocess.run([sys.executable, "-c", WATCHED, "3.0", "finish"], cwd=ROOT, capture_output=True,
                     text=True, timeout=60)
  assert p.returncode == 0, p.stderr


class StuckAtStep(toy_task.LinearRegression):
  """Blocks for ever on the batch of step `config.data.stuck_at_step`: a host whose input stalls."""

  def train_batch(self, step):
    if step == self.config.data.stuck_at_step:
      threading.Event().wait()
    return super().train_batch(step)


# The read-ahead moves groups of MAX_GROUP tiny batches: the stuck batch holds back its group,
# so the last step to finish is the end of the group before it.
STUCK_AT_STEP = 2 * data_lib.MAX_GROUP + 3
STUCK_CONFIG = f"""
from tests import toy_task
def get_config(arg=None):
  c = toy_task.get_config()
  c.task = "tests.test_launchers:StuckAtStep"
  c.total_steps = {STUCK_AT_STEP + 10}
  c.data.stuck_at_step = {STUCK_AT_STEP}
  return c
"""


def test_training_loop_stops_when_a_step_never_finishes(tmp_path):
  config = tmp_path / "stuck.py"
  config.write_text(STUCK_CONFIG)
  p = subprocess.run([sys.executable, "-m", "launch.train", "--config", str(config), "--workdir",
                      str(tmp_path / "run")], cwd=ROOT, capture_output=True, text=True, timeout=300,
                     env={**os.environ, distributed.ENV_STEP_TIMEOUT: "3"})
  assert p.returncode == distributed.EXIT_STALLED, p.stderr[-2000:]
  last = STUCK_AT_STEP // data_lib.MAX_GROUP * data_lib.MAX_GROUP
  assert "no training step finished" in p.stderr and f"last finished: step {last}" in p.stderr
  assert "in train_batch" in p.stderr  # the stack names the stalled input
