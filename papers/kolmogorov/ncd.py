"""Normalised compression distance (Li, Chen, Li, Ma & Vitanyi 2004; Cilibrasi & Vitanyi 2005).

  NCD(x, y) = (C(xy) - min(C(x), C(y))) / max(C(x), C(y))

the computable stand-in for the normalised information distance, in which C is Kolmogorov
complexity. C(xy) - C(x) approximates C(y | x), what is left of y once x is known; a real
compressor only finds what x and y share if it still sees x while coding y, so the inputs
must fit its window (lzma: 64 MiB at -9, bz2: 900 kB blocks; not gzip: 32 kB).
"""
from __future__ import annotations

import bz2
import gzip
import lzma
from typing import Callable, Sequence

import numpy as np

COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "gzip": lambda data: gzip.compress(data, compresslevel=9, mtime=0),
    "bz2": lambda data: bz2.compress(data, compresslevel=9),
    "lzma": lambda data: lzma.compress(data, preset=9 | lzma.PRESET_EXTREME),
}
# For the many NCD compressions: lzma's default preset (8 MiB window, ~5x faster than -9e on
# 40 kB inputs, which fit either window).
FAST = {"lzma": lambda data: lzma.compress(data, preset=6), "bz2": COMPRESSORS["bz2"]}


def ncd(x: bytes, y: bytes, compress: Callable[[bytes], bytes]) -> float:
  cx, cy, cxy = len(compress(x)), len(compress(y)), len(compress(x + y))
  return (cxy - min(cx, cy)) / max(cx, cy)


def ncd_matrix(texts: Sequence[bytes], compress: Callable[[bytes], bytes]) -> np.ndarray:
  """[n, n] NCD(texts[i], texts[j]); not exactly symmetric (C(xy) != C(yx)), diagonal included."""
  sizes = [len(compress(t)) for t in texts]
  n = len(texts)
  out = np.zeros((n, n))
  for i in range(n):
    for j in range(n):
      cxy = len(compress(texts[i] + texts[j]))
      out[i, j] = (cxy - min(sizes[i], sizes[j])) / max(sizes[i], sizes[j])
  return out


def distances(matrix: np.ndarray) -> np.ndarray:
  """A distance matrix for clustering: symmetrised, zero diagonal."""
  d = (matrix + matrix.T) / 2
  np.fill_diagonal(d, 0.0)
  return d


def linkage(matrix: np.ndarray):
  """Average-linkage (UPGMA) hierarchical clustering of an NCD matrix."""
  from scipy.cluster import hierarchy  # pylint: disable=g-import-not-at-top
  from scipy.spatial.distance import squareform  # pylint: disable=g-import-not-at-top
  return hierarchy.linkage(squareform(distances(matrix), checks=False), method="average")


def nearest_is_same_group(matrix: np.ndarray, groups: Sequence[str]) -> float:
  """Fraction of items whose nearest other item (by NCD) is in their own group."""
  d = distances(matrix)
  np.fill_diagonal(d, np.inf)
  nearest = d.argmin(axis=1)
  return float(np.mean([groups[i] == groups[j] for i, j in enumerate(nearest)]))
