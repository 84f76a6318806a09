"""Which jax platforms a run starts, decided before jax is imported (no jax import here).

With libtpu installed (`pip install -e ".[aot]"`, for launch.compile), jax tries a TPU first on
every machine; without one, libtpu prints half a page of errors ("unexpected worker hostname
...") before jax falls back. So the entry points that train (launch.train) choose for it:

- `JAX_PLATFORMS` set in the environment (even to ""): left alone, the user decides;
- a TPU present: left alone, jax starts it. A TPU is any of: a Google TPU PCI device
  (vendor 0x1ae0, the check jax itself makes), `/dev/accel*` (v2-v5p), `/dev/vfio/<n>`
  (v5e, v6e), or TPU metadata in the environment (`TPU_ACCELERATOR_TYPE`,
  `TPU_WORKER_HOSTNAMES`, `TPU_WORKER_ID`, `TPU_NAME`, `CLOUD_TPU_TASK_ID`);
- otherwise `JAX_PLATFORMS=cuda,cpu` when an NVIDIA GPU is visible (`/dev/nvidia0`,
  `/dev/nvidiactl`, WSL2's `/dev/dxg`) and jax's CUDA plugin is installed, `rocm,cpu` for an
  AMD GPU (`/dev/kfd`) with jax's ROCm plugin, else `cpu`.

Set `JAX_PLATFORMS` yourself to override the rule (e.g. `JAX_PLATFORMS=` for jax's own choice).

On an NVIDIA GPU the XLA flags of `GPU_XLA_FLAGS` are added to `XLA_FLAGS` (a flag the user
already set keeps the user's value): on one H200 they took the 300M LM's bf16 training step from
156,575 to 163,917 tokens/s at batch 16 (benchmarks/README.md, "XLA flags and batch size").

On the CPU, `keep_freed_memory` has glibc keep freed memory in the process: XLA allocates a
step's temporary buffers afresh every call, and by default glibc returns them to the OS and
the next step page-faults them in again (a fifth of a Transformer LM step's CPU time,
benchmarks/README.md). launch.train applies it when the run is on the CPU and GLIBC_TUNABLES
is not set (set it, even to "", to keep glibc's defaults).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import glob
import importlib.metadata
import importlib.util
import os
import pkgutil
from typing import Mapping

TPU_ENV = ("TPU_ACCELERATOR_TYPE", "TPU_WORKER_HOSTNAMES", "TPU_WORKER_ID", "TPU_NAME",
           "CLOUD_TPU_TASK_ID")
_GOOGLE_PCI_VENDOR = "0x1ae0"
_NVIDIA_DEVICES = ("/dev/nvidia0", "/dev/nvidiactl", "/dev/dxg")


def tpu_present(environ: Mapping[str, str] = os.environ, root: str = "/") -> bool:
  if any(environ.get(name) for name in TPU_ENV):
    return True
  if glob.glob(os.path.join(root, "dev/accel*")):
    return True
  if any(os.path.basename(p).isdigit() for p in glob.glob(os.path.join(root, "dev/vfio/*"))):
    return True
  for vendor in glob.glob(os.path.join(root, "sys/bus/pci/devices/*/vendor")):
    try:
      with open(vendor) as f:
        if f.read().strip() == _GOOGLE_PCI_VENDOR:
          return True
    except OSError:
      continue
  return False


# cuDNN's fused layer norm, the latency-hiding scheduler, and cuBLAS rather than Triton for GEMMs.
GPU_XLA_FLAGS = ("--xla_gpu_enable_cudnn_layer_norm=true",
                 "--xla_gpu_enable_latency_hiding_scheduler=true",
                 "--xla_gpu_enable_triton_gemm=false")


def nvidia_gpu_visible(root: str = "/") -> bool:
  return any(os.path.exists(os.path.join(root, d.lstrip("/"))) for d in _NVIDIA_DEVICES)


def with_gpu_xla_flags(xla_flags: str) -> str:
  """`xla_flags` plus each of GPU_XLA_FLAGS whose name it does not already set."""
  flags = xla_flags.split()
  have = {f.split("=")[0] for f in flags}
  return " ".join(flags + [f for f in GPU_XLA_FLAGS if f.split("=")[0] not in have])


def _jax_plugins() -> set[str]:
  """Names of installed jax PJRT plugins (e.g. xla_cuda12), found without importing jax."""
  names = set()
  try:
    spec = importlib.util.find_spec("jax_plugins")
  except (ImportError, ValueError):
    spec = None
  if spec is not None and spec.submodule_search_locations:
    names.update(m.name for m in pkgutil.iter_modules(list(spec.submodule_search_locations)))
  try:
    names.update(ep.name for ep in importlib.metadata.entry_points(group="jax_plugins"))
  except Exception:  # pylint: disable=broad-except
    pass
  return names


def choose_platforms(environ: Mapping[str, str] = os.environ, root: str = "/") -> tuple[str | None, str]:
  """(the JAX_PLATFORMS value to set or None to leave jax's own choice, a note for the user or "")."""
  if "JAX_PLATFORMS" in environ or tpu_present(environ, root):
    return None, ""
  plugins = _jax_plugins()
  if nvidia_gpu_visible(root):
    if any("cuda" in name for name in plugins):
      return "cuda,cpu", ""
    return "cpu", ("note: an NVIDIA GPU is visible but jax's CUDA plugin is not installed, so this "
                   "runs on the CPU (pip install -r requirements-gpu.txt)")
  if os.path.exists(os.path.join(root, "dev/kfd")) and any("rocm" in name for name in plugins):
    return "rocm,cpu", ""
  return "cpu", ""


def set_default_platforms(environ=os.environ) -> tuple[str | None, str]:
  """Sets JAX_PLATFORMS by the rule above (call it before jax is imported); returns what
  `choose_platforms` returned, the value set (or None) and a note to print (or "")."""
  value, note = choose_platforms(environ)
  if value is not None:
    environ["JAX_PLATFORMS"] = value
  chosen = environ.get("JAX_PLATFORMS")
  if nvidia_gpu_visible() and (not chosen or "cuda" in chosen):
    environ["XLA_FLAGS"] = with_gpu_xla_flags(environ.get("XLA_FLAGS", ""))
  return value, note


def keep_freed_memory() -> bool:
  """Has glibc keep freed memory for reuse in this process; False where it is not glibc.

  One malloc arena (threads other than the main one otherwise get arenas that cannot hold a
  large block, so they always mmap it), no mmap (blocks above the threshold would be unmapped
  on free) and no trimming of the heap's top. Call it before the big allocations start.
  """
  try:
    mallopt = ctypes.CDLL(ctypes.util.find_library("c")).mallopt
  except (OSError, AttributeError, TypeError):
    return False
  m_trim_threshold, m_mmap_max, m_arena_max = -1, -4, -8  # glibc's malloc.h
  return bool(mallopt(m_arena_max, 1) and mallopt(m_mmap_max, 0) and mallopt(m_trim_threshold, 1 << 30))


def describe_machine(environ: Mapping[str, str] = os.environ, root: str = "/") -> str:
  """A short name of this machine's accelerator (or CPU) for results tables, without
  starting jax (a process that opened the TPU would keep it from the run it launches)."""
  import platform  # pylint: disable=g-import-not-at-top
  import subprocess  # pylint: disable=g-import-not-at-top
  if tpu_present(environ, root):
    kind = environ.get("TPU_ACCELERATOR_TYPE", "")
    return f"TPU {kind}".strip()
  if nvidia_gpu_visible(root):
    try:
      names = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=20, check=True).stdout.split("\n")
      names = [n.strip() for n in names if n.strip()]
      if names:
        return f"{len(names)} x {names[0]}"
    except (OSError, subprocess.SubprocessError):
      pass
  return f"{os.cpu_count()}-core CPU ({platform.machine()})"
