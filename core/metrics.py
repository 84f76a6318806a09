"""Metrics to metrics.jsonl and TensorBoard, and the progress line.

Only process 0 writes. On resume, rows past the restored step are dropped so
that a resumed run's metrics.jsonl equals an uninterrupted run's.
"""
from __future__ import annotations

import json
import math
import os
import time

import numpy as np
from etils import epath


def _scalar(value):
  value = np.asarray(value)
  return value.item() if value.size == 1 else value.tolist()


def is_local(path) -> bool:
  return "://" not in os.fspath(path)


class _EpathRecordWriter:
  """TensorBoard event records to any etils path (gs://, s3://, ...): object stores cannot
  append, so the file is rewritten whole on each flush (event files are small)."""

  def __init__(self, path: str):
    self.path, self._data = epath.Path(path), bytearray()

  def write(self, data: bytes) -> None:
    self._data += data

  def flush(self) -> None:
    self.path.write_bytes(bytes(self._data))

  def close(self) -> None:
    self.flush()


class _EpathRecordWriterFactory:
  def open(self, path):
    return _EpathRecordWriter(path)

  def directory_check(self, path):
    epath.Path(path).mkdir(parents=True, exist_ok=True)


def _register_tensorboard_paths():
  from tensorboardX import record_writer  # pylint: disable=g-import-not-at-top
  for prefix in ("gs", "s3"):
    record_writer.register_writer_factory(prefix, _EpathRecordWriterFactory())


class MetricWriter:
  """metrics.jsonl and TensorBoard events in `workdir`: a local path or any etils path (gs://...)."""

  def __init__(self, workdir, enabled: bool = True):
    self.enabled = enabled
    self.path = epath.Path(workdir) / "metrics.jsonl"
    self._tb = None
    if enabled:
      from tensorboardX import SummaryWriter  # pylint: disable=g-import-not-at-top
      _register_tensorboard_paths()
      self._tb = SummaryWriter(os.fspath(epath.Path(workdir) / "tensorboard"))

  def _rows(self) -> list[str]:
    if not self.path.exists():
      return []
    return [line + "\n" for line in self.path.read_text().splitlines() if line.strip()]

  def truncate_after(self, step: int) -> None:
    """Drops rows logged after `step` (by a run that was killed before its next checkpoint)."""
    if not self.enabled or not self.path.exists():
      return
    rows = [line for line in self._rows() if json.loads(line)["step"] <= step]
    tmp = self.path.parent / (self.path.name + ".tmp")
    tmp.write_text("".join(rows))
    tmp.replace(self.path)

  def write(self, step: int, split: str, metrics: dict) -> None:
    if not self.enabled:
      return
    row = {"step": int(step), "split": split}
    row.update({k: _scalar(v) for k, v in metrics.items()})
    line = json.dumps(row) + "\n"
    if is_local(self.path):
      with open(self.path, "a") as f:
        f.write(line)
    else:  # object stores cannot append
      self.path.write_text("".join(self._rows()) + line)
    for k, v in row.items():
      if k not in ("step", "split") and isinstance(v, (int, float)):
        self._tb.add_scalar(f"{split}/{k}", v, step)
    self._tb.flush()

  def close(self):
    if self._tb is not None:
      self._tb.close()


def read_metrics(workdir, split: str | None = None) -> list[dict]:
  path = epath.Path(workdir) / "metrics.jsonl"
  if not path.exists():
    return []
  rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
  return [r for r in rows if split is None or r["split"] == split]


def eval_rows_or_exit(workdir, train_command: str) -> list[dict]:
  """A run's eval rows for a figure or a comparison; exits with a one-line error that says
  which command trains the run when it has none."""
  rows = read_metrics(workdir, "eval")
  if not rows:
    raise SystemExit(f"error: no eval rows in {workdir}/metrics.jsonl; train it first ({train_command})")
  return rows


def format_duration(seconds: float) -> str:
  if not math.isfinite(seconds):
    return "?"
  seconds = int(seconds)
  h, rem = divmod(seconds, 3600)
  m, s = divmod(rem, 60)
  return f"{h}h{m:02d}m" if h else f"{m}m{s:02d}s"


class Progress:
  """Step rate, ETA and MFU over the window since the last report."""

  def __init__(self, start_step: int, total_steps: int, model_flops_per_step: float, peak_flops: float,
               peak_source: str = ""):
    self.total_steps = total_steps
    self.flops_per_step = model_flops_per_step
    self.peak_flops = peak_flops  # summed over all devices
    self.peak_source = peak_source
    self._last_step, self._last_time, self._last_wait = start_step, time.perf_counter(), 0.0

  def update(self, step: int, input_wait_seconds: float = 0.0) -> dict:
    """Speed since the last update; `input_wait_seconds` is the loop's running total wait for data."""
    now = time.perf_counter()
    elapsed = max(now - self._last_time, 1e-9)
    steps_per_sec = (step - self._last_step) / elapsed
    waited = input_wait_seconds - self._last_wait
    self._last_step, self._last_time, self._last_wait = step, now, input_wait_seconds
    out = {"steps_per_sec": steps_per_sec, "input_wait_fraction": min(waited / elapsed, 1.0),
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
      parts.append(f"MFU {100 * speed['mfu']:.1f}% ({self.peak_source})" if self.peak_source
                   else f"MFU {100 * speed['mfu']:.1f}%")
    if speed.get("input_wait_fraction", 0) >= 0.05:
      parts.append(f"input wait {100 * speed['input_wait_fraction']:.0f}%")
    return " | ".join(parts)
