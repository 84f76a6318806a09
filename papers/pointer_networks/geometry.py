"""The three problems of the paper with exact labels: planar convex hull, Delaunay, TSP.

An example is `n` points drawn uniformly from the unit square, as in the paper (section 4.1),
and an output sequence of pointer tokens, 1-based as the paper writes them: token k >= 1
points at input point k - 1 and token 0 is the end-of-sequence symbol. Every example is a
pure function of (seed, split, index), so a data stream can be replayed or resumed.

Output orders (a fixed order per problem removes the ambiguity of a set-valued answer):
  hull      the hull's vertices counter-clockwise, starting from the one with the lowest
            index (the paper's choice, section 4.2), then END.
  delaunay  each triangle as its three indices in increasing order, the triangles in
            lexicographic order, all flattened, then END.
  tsp       the tour starting at point 0, in the direction whose second city has the lower
            index of the two neighbours of point 0, then END (the tour closes back to 0).

Labels come from scipy.spatial.ConvexHull / Delaunay, and for the TSP from Held-Karp dynamic
programming (exact, n <= `HELD_KARP_MAX`) or, above that, a stated heuristic: 2-opt local
search from `restarts` random tours, keeping the shortest (not guaranteed optimal).
"""
from __future__ import annotations

import itertools

import numpy as np
from scipy import spatial

END = 0
PROBLEMS = ("hull", "delaunay", "tsp")
SPLITS = {"train": 0, "test": 1}
HELD_KARP_MAX = 12  # 2^12 x 12 table per instance; above this the heuristic labels the tour


def example_rng(seed: int, split: str, index: int) -> np.random.Generator:
  return np.random.default_rng([int(seed), SPLITS[split], int(index), 7])


def sample_points(seed: int, split: str, index: int, min_points: int, max_points: int) -> np.ndarray:
  """[n, 2] float32 points uniform in [0, 1]^2, n uniform in [min_points, max_points]."""
  rng = example_rng(seed, split, index)
  n = int(rng.integers(min_points, max_points + 1))
  return rng.random((n, 2)).astype(np.float32)


# ---- convex hull --------------------------------------------------------------------------
def hull_order(points: np.ndarray) -> np.ndarray:
  """Hull vertex indices (0-based), counter-clockwise from the lowest index."""
  vertices = spatial.ConvexHull(points.astype(np.float64)).vertices  # 2-D: counter-clockwise
  start = int(np.argmin(vertices))
  return np.roll(vertices, -start).astype(np.int32)


VECTORISED_HULL_MAX = 12  # `hull_batch` is faster than scipy per example up to ~12 points (n^3 crossings)


def hull_orders(points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """`hull_order` of every row of points [batch, n, 2] at once: (orders [batch, n], with each
  row's hull vertices first and -1 after them, and the hull sizes [batch]).

  Edge i -> j is a counter-clockwise hull edge when every other point lies strictly to its
  left; following those edges from the lowest hull index gives the order (points in general
  position: with random coordinates, three collinear points have probability zero).
  """
  p = points.astype(np.float64)
  batch, n, _ = p.shape
  d = p[:, None, :, :] - p[:, :, None, :]                                   # [b, i, j]: p_j - p_i
  cross = d[:, :, :, None, 0] * d[:, :, None, :, 1] - d[:, :, :, None, 1] * d[:, :, None, :, 0]  # [b, i, j, k]
  eye = np.eye(n, dtype=bool)
  others = ~(eye[:, None, :] | eye[None, :, :])                            # [i, j, k]: k not in {i, j}
  is_edge = np.all((cross > 0) | ~others, axis=-1) & ~eye                   # [b, i, j]
  on_hull = is_edge.any(-1)
  successor = np.where(on_hull, is_edge.argmax(-1), -1)
  sizes = on_hull.sum(-1)
  orders = np.full((batch, n), -1, np.int64)
  orders[:, 0] = on_hull.argmax(-1)  # the lowest hull index
  rows = np.arange(batch)
  for t in range(1, n):
    step = successor[rows, orders[:, t - 1]]
    orders[:, t] = np.where(t < sizes, step, -1)
  return orders, sizes


def hull_batch(seed: int, split: str, indices, n: int, max_output: int) -> dict[str, np.ndarray]:
  """The padded convex-hull examples `indices` of n points each, stacked (see `pad_example`)."""
  points = np.stack([sample_points(seed, split, i, n, n) for i in indices])
  orders, sizes = hull_orders(points)
  if sizes.max() + 1 > max_output:
    raise ValueError(f"a label of {sizes.max() + 1} tokens exceeds data.max_output_len={max_output}")
  positions = np.arange(max_output)[None, :]
  body = np.zeros((len(points), max_output), np.int64)
  width = min(n, max_output)
  body[:, :width] = orders[:, :width] + 1
  targets = np.where(positions < sizes[:, None], body, END).astype(np.int32)
  return {"points": points, "point_mask": np.ones(points.shape[:2], bool), "targets": targets,
          "target_mask": positions <= sizes[:, None]}


def polygon_area(points: np.ndarray) -> float:
  """Signed shoelace area: positive for a counter-clockwise polygon."""
  x, y = points[:, 0].astype(np.float64), points[:, 1].astype(np.float64)
  return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _cross(o, a, b) -> float:
  return float((a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]))


def segments_cross(p1, p2, q1, q2) -> bool:
  """Whether two closed segments meet (touching counts)."""
  d1, d2 = _cross(q1, q2, p1), _cross(q1, q2, p2)
  d3, d4 = _cross(p1, p2, q1), _cross(p1, p2, q2)
  if ((d1 > 0) != (d2 > 0)) and ((d3 > 0) != (d4 > 0)) and d1 * d2 != 0 and d3 * d4 != 0:
    return True

  def on(a, b, c, d):  # c collinear with a-b and inside its box
    return d == 0 and min(a[0], b[0]) <= c[0] <= max(a[0], b[0]) and min(a[1], b[1]) <= c[1] <= max(a[1], b[1])
  return on(q1, q2, p1, d1) or on(q1, q2, p2, d2) or on(p1, p2, q1, d3) or on(p1, p2, q2, d4)


def is_simple_polygon(points: np.ndarray, order) -> bool:
  """At least 3 distinct vertices and no two non-adjacent edges meet."""
  order = list(order)
  m = len(order)
  if m < 3 or len(set(order)) != m:
    return False
  corners = points[order].astype(np.float64)
  edges = [(corners[i], corners[(i + 1) % m]) for i in range(m)]
  for i, j in itertools.combinations(range(m), 2):
    if j == i + 1 or (i == 0 and j == m - 1):
      continue
    if segments_cross(*edges[i], *edges[j]):
      return False
  return True


# ---- Delaunay -----------------------------------------------------------------------------
def delaunay_triangles(points: np.ndarray) -> np.ndarray:
  """[T, 3] int32: each triangle's indices increasing, triangles in lexicographic order."""
  simplices = np.sort(spatial.Delaunay(points.astype(np.float64)).simplices, axis=1)
  return simplices[np.lexsort(simplices.T[::-1])].astype(np.int32)


# ---- TSP ----------------------------------------------------------------------------------
def distances(points: np.ndarray) -> np.ndarray:
  p = points.astype(np.float64)
  return np.sqrt(((p[:, None, :] - p[None, :, :]) ** 2).sum(-1))


def tour_length(points: np.ndarray, tour) -> float:
  """Length of the closed tour (back to its first city)."""
  p = points[np.asarray(tour)].astype(np.float64)
  return float(np.sqrt(((p - np.roll(p, -1, axis=0)) ** 2).sum(-1)).sum())


def held_karp(points: np.ndarray) -> np.ndarray:
  """An optimal closed tour from city 0 (Held & Karp 1962), O(2^n n^2) in numpy."""
  return held_karp_batch(points[None])[0]


def held_karp_batch(points: np.ndarray) -> np.ndarray:
  """Optimal closed tours from city 0 of a batch [N, n, 2] of same-size instances -> [N, n].

  cost[:, S, j]: the shortest path from city 0 through the cities of S (a bit set over cities
  1..n-1) ending at j in S. Sets are visited by size so every predecessor is ready; each
  update covers all instances and all sets of one size at once.
  """
  count, n = points.shape[:2]
  if n <= 3:
    return np.tile(np.arange(n, dtype=np.int32), (count, 1))
  p = points.astype(np.float64)
  d = np.sqrt(((p[:, :, None, :] - p[:, None, :, :]) ** 2).sum(-1))      # [N, n, n]
  m = n - 1                                   # cities 1..n-1 are bits 0..m-1
  cost = np.full((count, 1 << m, m), np.inf)
  parent = np.full((count, 1 << m, m), -1, np.int64)
  for j in range(m):
    cost[:, 1 << j, j] = d[:, 0, j + 1]
  masks = np.arange(1 << m)
  sizes = np.array([bin(s).count("1") for s in masks])
  members = (masks[:, None] >> np.arange(m)) & 1  # [2^m, m]
  for size in range(2, m + 1):
    sets = masks[sizes == size]
    for j in range(m):
      with_j = sets[members[sets, j] == 1]
      # candidates i of the set without j: cost[S - j, i] + d[i, j] (inf where i is not in it)
      totals = cost[:, with_j ^ (1 << j)] + d[:, None, 1:, j + 1]          # [N, sets, m]
      best = np.argmin(totals, axis=2)
      cost[:, with_j, j] = np.take_along_axis(totals, best[..., None], 2)[..., 0]
      parent[:, with_j, j] = best
  full = (1 << m) - 1
  tours = np.zeros((count, n), np.int32)
  for r in range(count):
    last = int(np.argmin(cost[r, full] + d[r, 1:, 0]))
    tour, s = [], full
    while last >= 0:
      tour.append(last + 1)
      s, last = s ^ (1 << last), int(parent[r, s, last])
    tours[r] = [0] + tour[::-1]
  return tours


def two_opt(points: np.ndarray, tour: np.ndarray) -> np.ndarray:
  """2-opt local search: reverse the segment that shortens the tour most until none does."""
  d = distances(points)
  tour = np.asarray(tour).copy()
  n = len(tour)
  while True:
    a, b = tour, np.roll(tour, -1)            # edge i: a[i] -> b[i]
    # gain of replacing edges i and j (i < j) by a[i]-a[j] and b[i]-b[j]
    gain = d[a, b][:, None] + d[a, b][None, :] - d[a[:, None], a[None, :]] - d[b[:, None], b[None, :]]
    gain = np.triu(gain, k=2)
    gain[0, n - 1] = 0.0                      # edges 0 and n-1 share a city
    i, j = np.unravel_index(np.argmax(gain), gain.shape)
    if gain[i, j] <= 1e-12:
      return tour
    tour[i + 1:j + 1] = tour[i + 1:j + 1][::-1].copy()


def two_opt_restarts(points: np.ndarray, restarts: int = 8, seed: int = 0) -> np.ndarray:
  """The shortest of `restarts` 2-opt runs from random tours (a heuristic, not exact)."""
  rng = np.random.default_rng(seed)
  best, best_length = None, np.inf
  for _ in range(restarts):
    tour = two_opt(points, np.concatenate([[0], 1 + rng.permutation(len(points) - 1)]))
    length = tour_length(points, tour)
    if length < best_length - 1e-12:
      best, best_length = tour, length
  start = int(np.argmin(best))
  return np.roll(best, -start).astype(np.int32)


def canonical_tour(tour) -> np.ndarray:
  """Starts at city 0; of the two directions, the one whose second city has the lower index."""
  tour = np.asarray(tour)
  tour = np.roll(tour, -int(np.argmin(tour)))
  if len(tour) > 2 and tour[-1] < tour[1]:
    tour = np.concatenate([tour[:1], tour[1:][::-1]])
  return tour.astype(np.int32)


def solve_tsp(points: np.ndarray, restarts: int = 8) -> np.ndarray:
  if len(points) <= HELD_KARP_MAX:
    return canonical_tour(held_karp(points))
  return canonical_tour(two_opt_restarts(points, restarts))


# ---- examples -----------------------------------------------------------------------------
def label(problem: str, points: np.ndarray) -> np.ndarray:
  """The output tokens (1-based pointers, then END) of one example."""
  if problem == "hull":
    body = hull_order(points)
  elif problem == "delaunay":
    body = delaunay_triangles(points).reshape(-1)
  elif problem == "tsp":
    body = solve_tsp(points)
  else:
    raise ValueError(f"unknown problem {problem!r}; use one of {PROBLEMS}")
  return np.concatenate([body + 1, [END]]).astype(np.int32)


def max_output_length(problem: str, max_points: int) -> int:
  """The longest label for up to `max_points` points (END included)."""
  if problem == "delaunay":
    return 3 * (2 * max_points - 5) + 1       # at most 2n - 5 triangles (n >= 3)
  return max_points + 1


def pad_example(points: np.ndarray, tokens: np.ndarray, max_points: int, max_output: int):
  """One padded example: points [max_points, 2], point_mask, targets [max_output], target_mask."""
  if len(tokens) > max_output:
    raise ValueError(f"a label of {len(tokens)} tokens exceeds data.max_output_len={max_output}")
  n = len(points)
  padded = np.zeros((max_points, 2), np.float32)
  padded[:n] = points
  targets = np.zeros(max_output, np.int32)
  targets[:len(tokens)] = tokens
  return {"points": padded, "point_mask": np.arange(max_points) < n,
          "targets": targets, "target_mask": np.arange(max_output) < len(tokens)}


def example(problem: str, seed: int, split: str, index: int, min_points: int, max_points: int,
            max_output: int) -> dict[str, np.ndarray]:
  """Example `index` of a split, padded (see pad_example)."""
  points = sample_points(seed, split, index, min_points, max_points)
  return pad_example(points, label(problem, points), max_points, max_output)


def examples(problem: str, seed: int, split: str, indices, min_points: int, max_points: int,
             max_output: int) -> list[dict[str, np.ndarray]]:
  """The same as `example` for each index; TSP labels of one size solved in one Held-Karp batch."""
  if problem != "tsp" or min_points != max_points or max_points > HELD_KARP_MAX:
    return [example(problem, seed, split, i, min_points, max_points, max_output) for i in indices]
  points = np.stack([sample_points(seed, split, i, min_points, max_points) for i in indices])
  tours = held_karp_batch(points)
  return [pad_example(p, np.concatenate([canonical_tour(t) + 1, [END]]).astype(np.int32),
                      max_points, max_output) for p, t in zip(points, tours)]
