"""Shared timing, peak and report code of the benchmark scripts.

Every figure a benchmark prints is measured in the same process as its baseline (the matmul
peak of the same device, the PyTorch model with the same dimensions), so a ratio stays
meaningful on a shared, noisy machine even where the absolute numbers do not.
"""
from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from typing import Callable

import numpy as np

from core import hardware


def time_steps(step: Callable[[], object], sync: Callable[[object], None], steps: int,
               warmup: int) -> dict:
  """Runs `step` warmup + steps times; seconds of the first call (compile) and per timed step.

  `sync(result)` blocks until the device is done, so asynchronous dispatch does not hide work.
  The step time is the median of `steps` single-step timings: robust to a neighbour's burst.
  """
  t = time.perf_counter()
  sync(step())
  first = time.perf_counter() - t
  for _ in range(max(warmup - 1, 0)):
    sync(step())
  times, cpu_times = [], []
  for _ in range(steps):
    t, cpu = time.perf_counter(), time.process_time()
    sync(step())
    times.append(time.perf_counter() - t)
    cpu_times.append(time.process_time() - cpu)
  # CPU seconds (all of the process's threads) per step: on a CPU shared with other jobs this
  # measures the work done, whatever share of the machine each side got.
  return {"first_call_s": first, "step_s": float(np.median(times)), "step_s_min": float(min(times)),
          "step_cpu_s": float(np.median(cpu_times)), "steps_timed": steps}


def optax_train_step(loss_fn: Callable, optimizer):
  """jit(params, opt_state, *batch) -> (params, opt_state, loss): one optax update of loss_fn."""
  import jax  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top

  @jax.jit
  def train_step(params, opt_state, *batch):
    loss, grads = jax.value_and_grad(loss_fn)(params, *batch)
    updates, opt_state = optimizer.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  return train_step


def stepper(train_step: Callable, params, opt_state, *batch) -> Callable[[], object]:
  """A no-argument step for `time_steps` that carries params and optimizer state along."""
  state = {"params": params, "opt": opt_state}

  def step():
    state["params"], state["opt"], loss = train_step(state["params"], state["opt"], *batch)
    return loss

  return step


def torch_stepper(loss_fn: Callable[[], object], optimizer) -> Callable[[], object]:
  """A no-argument PyTorch train step for `time_steps`: loss_fn(), backward, one optimizer step."""
  def step():
    optimizer.zero_grad(set_to_none=True)
    loss = loss_fn()
    loss.backward()
    optimizer.step()
    return loss

  return step

def add_comparison_flags(parser, steps: int, warmup: int) -> None:
  """The flags of every jax-vs-PyTorch benchmark: --dtype, --steps, --warmup, --torch,
  --single_thread and --out (`checked_torch_variants` reads them back)."""
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  parser.add_argument("--steps", type=int, default=steps, help="timed steps per side")
  parser.add_argument("--warmup", type=int, default=warmup, help="untimed steps (the first compiles)")
  parser.add_argument("--torch", default="eager,compile",
                      help="comma list of PyTorch variants to time: eager, compile ('' for none)")
  parser.add_argument("--single_thread", action="store_true",
                      help="one compute thread each side (CPU): per-CPU-second ratios hold on a busy machine")
  parser.add_argument("--out", default="", help="write the report as JSON here")


def checked_torch_variants(parser, args) -> list[str]:
  """The PyTorch variants of --torch, after checking --steps, --warmup and --torch (a one-line
  usage error otherwise)."""
  if args.steps < 1 or args.warmup < 1:
    parser.error("--steps and --warmup must be >= 1")
  variants = [v for v in args.torch.split(",") if v]
  if any(v not in ("eager", "compile") for v in variants):
    parser.error(f"--torch takes eager and/or compile, got {args.torch!r}")
  return variants


def torch_device(on_accelerator: bool) -> str | None:
  """PyTorch's device for the comparison rows ("cuda" beside an accelerator, else "cpu"), or
  None after a one-line error when PyTorch is not installed."""
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    print("error: PyTorch is not installed; `pip install -e .[bench]` or pass --torch ''", file=sys.stderr)
    return None
  return "cuda" if on_accelerator and torch.cuda.is_available() else "cpu"


def single_thread() -> None:
  """One compute thread for jax (before its CPU client exists) and for PyTorch, if installed."""
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_cpu_multi_thread_eigen=false"
                             " intra_op_parallelism_threads=1").strip()
  try:
    import torch  # pylint: disable=g-import-not-at-top
    torch.set_num_threads(1)
  except ImportError:
    pass


def jax_matmul_peak(dtype: str, n: int) -> float:
  """FLOP/s of an n x n x n matmul in `dtype` on jax's first device (best of 10)."""
  import jax  # pylint: disable=g-import-not-at-top
  # Random values: constant inputs draw less power and run faster than real data on some GPUs.
  x = jax.random.normal(jax.random.PRNGKey(0), (n, n), dtype)
  f = jax.jit(lambda a: a @ a)
  result = time_steps(lambda: f(x), lambda r: r.block_until_ready(), steps=10, warmup=2)
  return 2 * n ** 3 / result["step_s_min"]


def torch_matmul_peak(dtype: str, n: int, device: str) -> float:
  import torch  # pylint: disable=g-import-not-at-top
  x = torch.randn((n, n), dtype=getattr(torch, dtype), device=device)
  result = time_steps(lambda: x @ x, lambda r: torch_sync(device), steps=10, warmup=2)
  return 2 * n ** 3 / result["step_s_min"]


def torch_sync(device: str) -> None:
  import torch  # pylint: disable=g-import-not-at-top
  if device.startswith("cuda"):
    torch.cuda.synchronize()


def datasheet_peak(dtype: str) -> tuple[float | None, str]:
  """The dense peak of jax's first device from core.hardware (bf16 matrix units), or None."""
  import jax  # pylint: disable=g-import-not-at-top
  device = jax.devices()[0]
  chip = hardware.chip_of(device)
  if chip is None:
    return None, device.device_kind
  if dtype != "bfloat16":
    return None, device.device_kind  # the datasheets' fp32 figures are not matrix-unit peaks
  return chip.peak_flops, device.device_kind


def jax_peak_memory() -> float | None:
  """Peak bytes on jax's first device since start, where the backend reports it (GPU/TPU)."""
  import jax  # pylint: disable=g-import-not-at-top
  stats = jax.devices()[0].memory_stats() or {}
  return stats.get("peak_bytes_in_use")


def host_peak_memory() -> float:
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024.0


def machine() -> str:
  return f"{platform.machine()}, {os.cpu_count()} CPUs"


def print_table(rows: list[dict], columns: list[tuple[str, str, str]]) -> None:
  """A markdown table of `rows`; columns are (key, header, format)."""
  print("| " + " | ".join(h for _, h, _ in columns) + " |")
  print("|" + "---|" * len(columns))
  for row in rows:
    cells = []
    for key, _, fmt in columns:
      value = row.get(key)
      cells.append("-" if value is None else fmt.format(value))
    print("| " + " | ".join(cells) + " |")


def write_json(path: str | None, report: dict) -> None:
  if path:
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    with open(path, "w") as f:
      json.dump(report, f, indent=1)
    print(f"wrote {path}")
