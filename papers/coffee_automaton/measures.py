"""Entropy and apparent complexity as compressed sizes, on the host.

- Entropy: the gzip size (bytes) of the fine-grained state, one byte a cell.
- Coarse-graining: each cell becomes the average of the g x g square centred on it (the part
  of the square inside the grid at the edges; g odd), so the coarse-grained array is N x N.
- Naive thresholding (the paper's first coarse-graining): 3 buckets, the nearest of {0, 1/2, 1} (mostly coffee, mixed,
  mostly cream). Its artefact: where the true cream density of a row sits near a threshold,
  sampling noise flips cells between two buckets at random, and the compressor is charged for
  that noise as if it were structure; even the non-interacting model, whose state is (up to noise)
  a function of the row, then shows "complexity" along its border rows.
- Adjusted coarse-graining (the authors' fix for border pixels): 7 buckets (the nearest of {0, 1/6, ...,
  1}), then in each row every cell within one bucket of the row's most common bucket is set to
  it. Differences of one bucket, the noise, vanish; real structure, which differs by more,
  survives.
- Apparent complexity: the gzip size of the thresholded (and adjusted) coarse-grained array.

gzip is Python's `gzip.compress` at level 9 with mtime 0 (so the size is a pure function of the
state): DEFLATE, as the paper's gzip, plus an 18-byte header and trailer counted in every size.
"""
from __future__ import annotations

import gzip

import numpy as np

NAIVE_BUCKETS = 3
ADJUSTED_BUCKETS = 7


def compressed_size(array: np.ndarray) -> int:
  """gzip size in bytes of a uint8 array's raw bytes."""
  return len(gzip.compress(np.ascontiguousarray(array, np.uint8).tobytes(), compresslevel=9, mtime=0))


def box_sums(state: np.ndarray, g: int) -> tuple[np.ndarray, np.ndarray]:
  """(sum over the g x g square centred on each cell, number of its cells inside the grid)."""
  if g < 1 or g % 2 == 0:
    raise ValueError(f"the coarse-graining square g must be odd and >= 1, got {g}")
  r = g // 2
  n_rows, n_cols = state.shape
  table = np.zeros((n_rows + 1, n_cols + 1), np.int64)  # summed-area table
  table[1:, 1:] = np.cumsum(np.cumsum(state.astype(np.int64), 0), 1)
  top = np.clip(np.arange(n_rows) - r, 0, n_rows)
  bottom = np.clip(np.arange(n_rows) + r + 1, 0, n_rows)
  left = np.clip(np.arange(n_cols) - r, 0, n_cols)
  right = np.clip(np.arange(n_cols) + r + 1, 0, n_cols)
  sums = (table[bottom][:, right] - table[top][:, right] - table[bottom][:, left]
          + table[top][:, left])
  counts = np.outer(bottom - top, right - left)
  return sums, counts


def coarse_grain(state: np.ndarray, g: int) -> np.ndarray:
  """The g x g centred box average of each cell (float64, N x N)."""
  sums, counts = box_sums(state, g)
  return sums / counts


def threshold(state: np.ndarray, g: int, buckets: int) -> np.ndarray:
  """Bucket of each cell's box average: the nearest of 0, 1/(k-1), ..., 1 (averages above 1,
  possible in the non-interacting model, go to the top bucket). Exact integer arithmetic, with
  a tie going up, so the result does not depend on float rounding."""
  sums, counts = box_sums(state, g)
  k = buckets - 1
  return np.minimum((2 * sums * k + counts) // (2 * counts), k).astype(np.uint8)


def row_majority_adjust(buckets: np.ndarray) -> np.ndarray:
  """Sets each cell within one bucket of its row's most common bucket to that bucket (the
  smallest bucket wins a tie)."""
  out = buckets.copy()
  for i, row in enumerate(buckets):
    mode = np.bincount(row).argmax()
    out[i, np.abs(row.astype(np.int16) - int(mode)) <= 1] = mode
  return out


def coarse_grained(state: np.ndarray, g: int, adjusted: bool) -> np.ndarray:
  if adjusted:
    return row_majority_adjust(threshold(state, g, ADJUSTED_BUCKETS))
  return threshold(state, g, NAIVE_BUCKETS)


def measure(state: np.ndarray, g: int) -> dict[str, int]:
  """Entropy and both complexities of one fine-grained state (cells: 0/1 or particle counts)."""
  fine = np.minimum(state, 255).astype(np.uint8)
  return {"entropy": compressed_size(fine),
          "complexity": compressed_size(coarse_grained(state, g, adjusted=True)),
          "complexity_naive": compressed_size(coarse_grained(state, g, adjusted=False))}


def default_grain(n: int) -> int:
  """g for an N x N grid: the odd number nearest N/8 (at least 3), so the coarse-grained
  picture is the same picture at every N, at N times the resolution."""
  return max(3, 2 * round((n / 8 - 1) / 2) + 1)
