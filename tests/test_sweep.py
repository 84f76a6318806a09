"""launch.sweep: points from a config's sweep(), kill-and-rerun, the results table."""
import csv
import json
import os
import shlex
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from launch import sweep as sweep_lib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SPEC = "configs/scaling_laws.py:tiny"
# The trainers run on one CPU device: conftest's 8 fake devices only slow their start-up.
ENV = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
# Enough steps that a point trains for a few seconds after its first checkpoint.
SHORT = ["--config.total_steps=300", "--config.checkpoint_every=100", "--config.eval_every=150",
         "--config.log_every=50", "--config.peak_flops=1e9"]


def lm_non_embedding_params(layers, d, d_ff):
  """Pre-norm block: q, k, v, out (d x d + bias), FFN (d x d_ff, d_ff x d + biases),
  two LayerNorms (scale + bias); plus the final LayerNorm. Tied embedding excluded."""
  per_layer = 4 * (d * d + d) + (d * d_ff + d_ff) + (d_ff * d + d) + 2 * 2 * d
  return layers * per_layer + 2 * d


def sweep_cmd(sweep_dir, *extra):
  return [sys.executable, "-m", "launch.sweep", "--config", SPEC, "--sweep_dir", str(sweep_dir),
          *extra, *SHORT]


def events(sweep_dir):
  with open(os.path.join(sweep_dir, "events.jsonl")) as f:
    return [json.loads(line) for line in f]


def finished(sweep_dir, name):
  return sweep_lib.is_finished(os.path.join(sweep_dir, name), 300)


def alive(pid):
  try:
    with open(f"/proc/{pid}/status") as f:
      return "\nState:\tZ" not in f.read()
  except FileNotFoundError:
    return False


def test_points_carry_the_overrides_and_flags_win():
  points = sweep_lib.load_points(SPEC, ["--config.total_steps=7"])
  assert [p["name"] for p in points] == ["L1_d8", "L1_d16", "L2_d16"]
  config = points[2]["config"]
  assert (config.model.num_layers, config.model.d_model, config.model.d_ff) == (2, 16, 64)
  assert config.total_steps == 7


def test_non_embedding_count_matches_the_block_formula():
  for point in sweep_lib.load_points(SPEC, []):
    m = point["config"].model
    n, total = sweep_lib.count_params(point["config"])
    assert n == lm_non_embedding_params(m.num_layers, m.d_model, m.d_ff)
    assert total == n + m.vocab_size * m.d_model


def test_dispatch_hands_each_point_to_the_pod_launcher(tmp_path):
  out = subprocess.run(
      sweep_cmd(tmp_path, "--dry_run", "--parallel", "2", "--dispatch", "tpu_pod",
                "--launcher_args", "--name sweep-{slot} --zone us-central2-b run",
                "--remote_sweep_dir", "gs://bucket/sweep"),
      cwd=ROOT, capture_output=True, text=True, check=True).stdout
  lines = [shlex.split(line) for line in out.splitlines() if not line.startswith("[sweep]")]
  assert len(lines) == 3
  for slot, (cmd, name) in enumerate(zip(lines, ["L1_d8", "L1_d16", "L2_d16"])):
    assert cmd[1:3] == ["-m", "launch.tpu_pod"]
    assert cmd[3:9] == ["--name", f"sweep-{slot % 2}", "--zone", "us-central2-b", "run", "--"]
    train_args = cmd[9:]
    assert train_args[:4] == ["--config", SPEC, "--workdir", f"gs://bucket/sweep/{name}"]
    assert "--config.total_steps=300" in train_args
    # What follows '--' is exactly what the launcher hands to launch.train.
    from launch import train
    args, overrides = train.parse_args(train_args)
    assert args.config == SPEC and overrides[-len(SHORT):] == SHORT
  assert not any(p.is_dir() for p in tmp_path.iterdir())  # a dry run trains nothing


def test_bad_sweep_key_fails_before_any_run(tmp_path):
  out = subprocess.run(sweep_cmd(tmp_path, "--config.model.no_such_key=1"), cwd=ROOT,
                       capture_output=True, text=True)
  assert out.returncode == 2
  assert "unknown config key" in out.stderr
  assert not os.path.exists(tmp_path / "L1_d8")


def test_killed_sweep_reruns_only_the_missing_points(tmp_path, shakespeare_or_skip):
  shakespeare_or_skip()
  names = ["L1_d8", "L1_d16", "L2_d16"]
  proc = subprocess.Popen(sweep_cmd(tmp_path), cwd=ROOT, env=ENV, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL)
  # Kill the sweep (SIGKILL: no clean-up) once the second point has a checkpoint.
  deadline = time.time() + 240
  victim = None
  while time.time() < deadline and victim is None:
    time.sleep(0.05)
    ckpt = tmp_path / names[1] / "checkpoints"
    if ckpt.is_dir() and any(p.name.isdigit() for p in ckpt.iterdir()):
      proc.kill()
      proc.wait()
      victim = [e for e in events(tmp_path) if e["event"] == "start"][-1]
  assert victim is not None, "the sweep did not reach its second point in time"
  assert victim["run"] == names[1]
  # Its trainer dies with it rather than running on as an orphan.
  for _ in range(100):
    if not alive(victim["pid"]):
      break
    time.sleep(0.1)
  assert not alive(victim["pid"])

  done_before = {n for n in names if finished(tmp_path, n)}
  assert names[0] in done_before and names[2] not in done_before
  first_metrics = (tmp_path / names[0] / "metrics.jsonl").read_bytes()
  partial_log_len = len((tmp_path / names[1] / "train.log").read_bytes())
  seen = len(events(tmp_path))

  subprocess.run(sweep_cmd(tmp_path), cwd=ROOT, env=ENV, check=True, capture_output=True)
  rerun = events(tmp_path)[seen:]
  assert {e["run"] for e in rerun if e["event"] == "skip_finished"} == done_before
  assert {e["run"] for e in rerun if e["event"] == "start"} == set(names) - done_before
  assert all(finished(tmp_path, n) for n in names)
  assert (tmp_path / names[0] / "metrics.jsonl").read_bytes() == first_metrics
  if names[1] not in done_before:  # the killed point resumed from its checkpoint
    log = (tmp_path / names[1] / "train.log").read_bytes()[partial_log_len:].decode()
    assert "resumed from step" in log

  # The results table: every logged point, with D = step x batch x seq_len and C = 6 N D.
  with open(tmp_path / "results.csv") as f:
    rows = list(csv.DictReader(f))
  assert {r["run"] for r in rows} == set(names)
  for r in rows:
    assert int(r["D"]) == int(r["step"]) * 8 * 32
    assert int(r["C"]) == 6 * int(r["N"]) * int(r["D"])
  results = [json.loads(line) for line in open(tmp_path / "results.jsonl")]
  for r in results:
    assert r["status"] == "finished"
    assert r["final_eval"]["step"] == 300
    layers, d = r["overrides"]["model.num_layers"], r["overrides"]["model.d_model"]
    assert r["N"] == lm_non_embedding_params(layers, d, 4 * d)
    curve = [c for c in r["curve"] if c["split"] == "eval"]
    assert [c["step"] for c in curve] == [150, 300]
    assert np.isfinite([c["loss"] for c in curve]).all()


def test_dispatch_through_the_local_pod_double_finishes_the_point(tmp_path, shakespeare_or_skip):
  shakespeare_or_skip()
  # launch.local runs the same jax.distributed path as a pod: 2 processes x 1 device.
  cmd = sweep_cmd(tmp_path, "--only", "L1_d8", "--dispatch", "local", "--poll_s", "0.5",
                  "--launcher_args", "--num_processes 2 --devices_per_process 1")
  cmd += ["--config.total_steps=20", "--config.checkpoint_every=20", "--config.eval_every=20"]
  subprocess.run(cmd, cwd=ROOT, env=ENV, check=True, capture_output=True, timeout=600)
  assert sweep_lib.is_finished(str(tmp_path / "L1_d8"), 20)
  log = (tmp_path / "L1_d8" / "train.log").read_text()
  assert "[p0]" in log and "[p1]" in log
  (result,) = [json.loads(line) for line in open(tmp_path / "results.jsonl")]
  assert result["status"] == "finished" and result["final_eval"]["step"] == 20


def test_a_changed_config_is_refused_on_rerun(tmp_path):
  point = sweep_lib.load_points(SPEC, [])[0]
  workdir = tmp_path / point["name"]
  workdir.mkdir()
  from core.config import to_json
  saved = json.loads(to_json(point["config"]))
  saved["batch_size"] = 999
  (workdir / "config.json").write_text(json.dumps(saved))
  out = subprocess.run(sweep_cmd(tmp_path, "--dry_run"), cwd=ROOT, capture_output=True, text=True)
  assert out.returncode == 2
  assert "trained with another config" in out.stderr and "batch_size" in out.stderr
