"""The coffee automaton (Aaronson, Carroll & Ouellette 2014), in JAX.

State: an N x N grid, row 0 at the top; cream (1) fills the top N/2 rows, coffee (0) the rest.

- Interacting model: one particle per cell; neighbouring cream and coffee swap places. The
  paper swaps one random differing pair per time step. Here one time step is a *sweep* of four
  sub-steps (horizontal pairs whose left cell has an even column, then odd, then vertical pairs
  whose upper cell has an even row, then odd); the pairs of a sub-step are disjoint, so all of
  them are updated at once without conflicts, and each pair swaps with probability 1/2. That is
  the symmetric exclusion process in discrete time: the same moves, the same equilibrium
  (every arrangement of the cream equally likely), time counted in sweeps instead of swaps.
- Non-interacting model: N^2/2 cream particles, any number to a cell; at each step every
  particle moves one cell in a random direction (a move through a wall is refused).
  `WALK_STEPS_PER_SWEEP` = 4 walk steps take as long as one sweep: both models then have the
  same diffusion constant (1 cell^2 per sweep, measured from the decay of the density profile's
  slowest mode, exp(-pi^2 t / N^2)), so their curves share one time axis.

Randomness is counter-based: a pair's coin is a hash of (seed, sub-step counter, the pair's
global index), so an update does not depend on how the grid is split over devices, and
`run_interacting_sharded` (rows over a mesh axis, halo rows exchanged with `lax.ppermute`)
equals `run_interacting` bit for bit.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

CREAM, COFFEE = 1, 0
_SALT_NONINTERACTING = 0x5BD1E995  # keeps the two models' coin streams apart for one seed


def initial_grid(n: int) -> np.ndarray:
  """Cream on the top half, coffee on the bottom half (uint8)."""
  if n < 2 or n % 2:
    raise ValueError(f"the grid side N must be an even number >= 2, got {n}")
  grid = np.zeros((n, n), np.uint8)
  grid[: n // 2] = CREAM
  return grid


def mix32(x):
  """A bijective avalanche hash of uint32 (Wellons' lowbias32); works on numpy and jax arrays."""
  xp = jnp if isinstance(x, jax.Array) else np
  x = x ^ (x >> xp.uint32(16))
  x = x * xp.uint32(0x7FEB352D)
  x = x ^ (x >> xp.uint32(15))
  x = x * xp.uint32(0x846CA68B)
  return x ^ (x >> xp.uint32(16))


def hash_bits(seed, counter, index):
  """32 random bits for (seed, counter, index): the counter-based generator of both models."""
  xp = jnp if any(isinstance(a, jax.Array) for a in (seed, counter, index)) else np
  u32 = lambda a: xp.asarray(a).astype(xp.uint32)
  key = mix32(u32(counter) ^ mix32(u32(seed) ^ xp.uint32(0x9E3779B9)))
  return mix32(u32(index) ^ key)


# ---- interacting model ---------------------------------------------------------------------

def _substep(block, row0, n, seed, counter, vertical: bool, parity: int, halo):
  """One conflict-free sub-step on rows [row0, row0 + R) of the grid (`block`, R x N).

  Each cell finds its pair partner, both cells of a pair draw the same coin (it is keyed by
  the pair's global index), and a swap is a copy of the partner's value: nothing is written
  twice. `halo(block)` gives the rows just above and below the block (any value off the grid).
  """
  r_local, width = block.shape
  rows = (row0 + jnp.arange(r_local, dtype=jnp.int32))[:, None]
  cols = jnp.arange(width, dtype=jnp.int32)[None, :]
  if vertical:
    above, below = halo(block)
    first = (rows % 2) == parity                      # the upper cell of its pair
    other = jnp.where(first, rows + 1, rows - 1)
    partner = jnp.where(first, jnp.concatenate([block[1:], below[None]], 0),
                        jnp.concatenate([above[None], block[:-1]], 0))
    valid = (other >= 0) & (other < n)
    pair = jnp.minimum(rows, other) * width + cols
  else:
    first = (cols % 2) == parity                      # the left cell of its pair
    other = jnp.where(first, cols + 1, cols - 1)
    partner = jnp.where(first, jnp.roll(block, -1, axis=1), jnp.roll(block, 1, axis=1))
    valid = (other >= 0) & (other < width)
    pair = rows * width + jnp.minimum(cols, other)
  coin = (hash_bits(seed, counter, pair) >> 31) == 1  # the top bit: probability 1/2
  return jnp.where(valid & coin, partner, block)


SUBSTEPS = ((False, 0), (False, 1), (True, 0), (True, 1))  # (vertical, parity), in sweep order


def _sweeps(block, row0, n, seed, t0, num, halo):
  """`num` sweeps starting at sweep index t0 (the counter of sweep t, sub-step s is 4t + s)."""
  def body(t, b):
    for s, (vertical, parity) in enumerate(SUBSTEPS):
      b = _substep(b, row0, n, seed, 4 * t + s, vertical, parity, halo)
    return b
  return jax.lax.fori_loop(t0, t0 + num, body, block)


def _no_halo(block):
  zeros = jnp.zeros_like(block[0])
  return zeros, zeros


@jax.jit
def run_interacting(grid, seed, t0, num):
  """`num` sweeps of the whole grid on one device, starting at sweep t0."""
  return _sweeps(grid, jnp.int32(0), grid.shape[0], seed, t0, num, _no_halo)


@functools.lru_cache(maxsize=None)
def _sharded_fn(mesh, axis: str):
  devices = mesh.shape[axis]

  def halo(block):
    # Row-wise shards: the row above a block is the last row of the previous shard, the row
    # below it the first row of the next; the grid's top and bottom shards get zeros (walls).
    above = jax.lax.ppermute(block[-1], axis, [(i, i + 1) for i in range(devices - 1)])
    below = jax.lax.ppermute(block[0], axis, [(i + 1, i) for i in range(devices - 1)])
    return above, below

  def local(block, seed, t0, num):
    row0 = jax.lax.axis_index(axis).astype(jnp.int32) * block.shape[0]
    return _sweeps(block, row0, block.shape[0] * devices, seed, t0, num, halo)

  return jax.jit(jax.shard_map(local, mesh=mesh, in_specs=(P(axis, None), P(), P(), P()),
                               out_specs=P(axis, None)))


def make_mesh(devices: int | None = None, axis: str = "rows"):
  """A 1-D mesh over the first `devices` devices (all by default)."""
  devs = jax.devices()
  devices = devices or len(devs)
  if devices > len(devs):
    raise ValueError(f"asked for {devices} devices, jax sees {len(devs)}")
  return jax.sharding.Mesh(np.array(devs[:devices]), (axis,),
                           axis_types=(jax.sharding.AxisType.Auto,))


def shard_grid(grid, mesh, axis: str = "rows"):
  n = grid.shape[0]
  if n % mesh.shape[axis]:
    raise ValueError(f"N={n} rows do not split evenly over {mesh.shape[axis]} devices")
  return jax.device_put(grid, jax.sharding.NamedSharding(mesh, P(axis, None)))


def run_interacting_sharded(grid, seed, t0, num, mesh, axis: str = "rows"):
  """`num` sweeps with the rows of `grid` split over `mesh`'s axis (each device R = N/D rows)."""
  return _sharded_fn(mesh, axis)(shard_grid(grid, mesh, axis), jnp.uint32(seed), jnp.int32(t0),
                                 jnp.int32(num))


# ---- non-interacting model -----------------------------------------------------------------

def initial_particles(n: int) -> np.ndarray:
  """One cream particle on each cell of the top half: int32 [N^2/2, 2] (row, column)."""
  initial_grid(n)  # validates n
  rows, cols = np.nonzero(np.ones((n // 2, n), bool))
  return np.stack([rows, cols], 1).astype(np.int32)


WALK_STEPS_PER_SWEEP = 4
_MOVES = np.array([[-1, 0], [1, 0], [0, -1], [0, 1]], np.int32)


@functools.partial(jax.jit, static_argnums=(1,))
def run_noninteracting(particles, n: int, seed, t0, num):
  """`num` steps of independent random walks; a particle's move is a hash of (seed, t, index)."""
  index = jnp.arange(particles.shape[0], dtype=jnp.uint32)

  def body(t, pos):
    direction = hash_bits(jnp.asarray(seed, jnp.uint32) ^ jnp.uint32(_SALT_NONINTERACTING), t,
                          index) >> 30
    moved = pos + jnp.asarray(_MOVES)[direction]
    inside = jnp.all((moved >= 0) & (moved < n), axis=1, keepdims=True)
    return jnp.where(inside, moved, pos)

  return jax.lax.fori_loop(t0, t0 + num, body, particles)


def occupancy(particles, n: int) -> np.ndarray:
  """Cream particles per cell (int32 N x N): the non-interacting model's fine-grained state."""
  p = np.asarray(particles)
  counts = np.zeros((n, n), np.int32)
  np.add.at(counts, (p[:, 0], p[:, 1]), 1)
  return counts
