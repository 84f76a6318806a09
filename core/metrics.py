"""Metrics to metrics.jsonl and TensorBoard, and the progress line.

Only process 0 writes. On resume, rows past the restored step are dropped so
that a resumed run's metrics.jsonl equals an uninterrupted run's.
"""
from __future__ import annotations

import json
import math
import os
import time

import jax
import numpy as np


def _scalar(value):
  value = np.asarray(value)
  return value.item() if value.size == 1 else value.tolist()


class MetricWriter:

  def __init__(self, workdir: str, enabled: bool = True):
    self.enabled = enabled
    self.path = os.path.join(workdir, "metrics.jsonl")
    self._tb = None
    if enabled:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))

  def truncate_after(self, step: int) -> None:
    """Drops rows logged after `step` (by a run that was killed before its next checkpoint)."""
    if not self.enabled or not os.path.exists(self.path):
      return
    with open(self.path) as f:
      rows = [line for line in f if line.strip() and json.loads(line)["step"] <= step]
    tmp = self.path + ".tmp"
    with open(tmp, "w") as f:
      f.writelines(rows)
    os.replace(tmp, self.path)

  def write(self, step: int, split: str, metrics: dict) -> None:
    if not self.enabled:
      return
    row = {"step": int(step), "split": split}
    row.update({k: _scalar(v) for k, v in metrics.items()})
    with open(self.path, "a") as f:
      f.write(json.dumps(row) + "\n")
    for k, v in row.items():
      if k not in ("step", "split") and isinstance(v, (int, float)):
        self._tb.add_scalar(f"{split}/{k}", v, step)
    self._tb.flush()

  def close(self):
    if self._tb is not None:
      self._tb.close()


def read_metrics(workdir: str, split: str | None = None) -> list[dict]:
  path = os.path.join(workdir, "metrics.jsonl")
  if not os.path.exists(path):
    return []
  with open(path) as f:
    rows = [json.loads(line) for line in f if line.strip()]
  return [r for r in rows if split is None or r["split"] == split]


def format_duration(seconds: float) -> str:
  if not math.isfinite(seconds):
    return "?"
  seconds = int(seconds)
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class Progress:
  """Step rate, ETA and MFU over the window since the last report."""

  def __init__(self, start_step: int, total_steps: int, flops_per_step: float, peak_flops: float):
    self.total_steps = total_steps
    self.flops_per_step = flops_per_step
    self.peak_flops = peak_flops  # summed over all devices
    self._last_step, self._last_time = start_step, time.perf_counter()

  def update(self, step: int) -> dict:
    now = time.perf_counter()
    steps_per_sec = (step - self._last_step) / max(now - self._last_time, 1e-9)
    self._last_step, self._last_time = step, now
    out = {"steps_per_sec": steps_per_sec,
           "eta_sec": (self.total_steps - step) / steps_per_sec if steps_per_sec > 0 else float("inf")}
    if self.flops_per_step and self.peak_flops:
      out["mfu"] = self.flops_per_step * steps_per_sec / self.peak_flops
    return out

  def line(self, step: int, train_metrics: dict, speed: dict) -> str:
    parts = [f"step {step}/{self.total_steps}"]
    parts += [f"{k} {float(v):.4g}" for k, v in train_metrics.items() if np.size(v) == 1]
    parts.append(f"{speed['steps_per_sec']:.2f} steps/s")
    parts.append(f"ETA {format_duration(speed['eta_sec'])}")
    if "mfu" in speed:
      parts.append(f"MFU {100 * speed['mfu']:.1f}%")
    return " | ".join(parts)


def measure_peak_flops(n: int = 1024, repeats: int = 5) -> float:
  """Per-device matmul FLOP/s of the first device, measured on start (float32)."""
  x = jax.numpy.ones((n, n), jax.numpy.float32)
  f = jax.jit(lambda a: a @ a)
  f(x).block_until_ready()
  best = float("inf")
  for _ in range(repeats):
    t = time.perf_counter()
    f(x).block_until_ready()
    best = min(best, time.perf_counter() - t)
  return 2 * n ** 3 / best
