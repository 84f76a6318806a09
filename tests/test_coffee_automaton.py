"""papers/coffee_automaton: conservation, determinism, numpy references, sharded == unsharded, CLI."""
import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import fractions  # pylint: disable=g-import-not-at-top,wrong-import-position
import json  # pylint: disable=wrong-import-position
import subprocess  # pylint: disable=wrong-import-position
import sys  # pylint: disable=wrong-import-position

import jax  # pylint: disable=wrong-import-position
import jax.numpy as jnp  # pylint: disable=wrong-import-position
import numpy as np  # pylint: disable=wrong-import-position
import pytest  # pylint: disable=wrong-import-position

from papers.coffee_automaton import automaton, experiment, measures  # pylint: disable=wrong-import-position

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
M32 = 0xFFFFFFFF


# ---- independent references: plain Python over cells and pairs ---------------------------

def _mix(x):
  x ^= x >> 16
  x = (x * 0x7FEB352D) & M32
  x ^= x >> 15
  x = (x * 0x846CA68B) & M32
  return x ^ (x >> 16)


def _coin(seed, counter, index):
  key = _mix(counter ^ _mix(seed ^ 0x9E3779B9))
  return _mix(index ^ key) >> 31


def reference_sweep(grid, seed, t):
  """One sweep, pair by pair: H even, H odd, V even, V odd; a pair swaps on its coin."""
  g = grid.copy()
  n_rows, n_cols = g.shape
  for s, (vertical, parity) in enumerate(((False, 0), (False, 1), (True, 0), (True, 1))):
    counter = 4 * t + s
    if vertical:
      pairs = [((r, c), (r + 1, c)) for r in range(parity, n_rows - 1, 2) for c in range(n_cols)]
    else:
      pairs = [((r, c), (r, c + 1)) for r in range(n_rows) for c in range(parity, n_cols - 1, 2)]
    for a, b in pairs:
      if _coin(seed, counter, a[0] * n_cols + a[1]):
        g[a], g[b] = g[b], g[a]
  return g


def reference_buckets(state, g, buckets):
  """Box average over the part of the centred g x g square inside the grid, nearest level."""
  n_rows, n_cols = state.shape
  r = g // 2
  out = np.zeros(state.shape, np.uint8)
  for i in range(n_rows):
    for j in range(n_cols):
      cells = [int(state[a, b]) for a in range(max(0, i - r), min(n_rows, i + r + 1))
               for b in range(max(0, j - r), min(n_cols, j + r + 1))]
      x = fractions.Fraction(sum(cells), len(cells)) * (buckets - 1)
      out[i, j] = min(int(x + fractions.Fraction(1, 2)), buckets - 1)  # nearest, ties up
  return out


def reference_adjust(buckets):
  out = buckets.copy()
  for i, row in enumerate(buckets):
    values = sorted(set(row.tolist()))
    mode = max(values, key=lambda v: (list(row).count(v), -v))
    for j, v in enumerate(row):
      if abs(int(v) - mode) <= 1:
        out[i, j] = mode
  return out


# ---- the automaton -------------------------------------------------------------------------

def test_one_sweep_matches_the_reference():
  grid = automaton.initial_grid(8)
  expected = grid
  for t in range(3):
    expected = reference_sweep(expected, 7, t)
  got = np.asarray(automaton.run_interacting(jnp.asarray(grid), 7, 0, 3))
  np.testing.assert_array_equal(got, expected)
  rng = np.random.default_rng(0)
  mixed = rng.integers(0, 2, (10, 6)).astype(np.uint8)  # not square, not a half/half start
  got = np.asarray(automaton.run_interacting(jnp.asarray(mixed), 3, 11, 1))
  np.testing.assert_array_equal(got, reference_sweep(mixed, 3, 11))


def test_cream_is_conserved_and_the_start_is_half_and_half():
  grid = automaton.initial_grid(16)
  assert grid[:8].all() and not grid[8:].any()
  out = np.asarray(automaton.run_interacting(jnp.asarray(grid), 0, 0, 40))
  assert out.sum() == 128 and set(np.unique(out)) <= {0, 1} and (out != grid).any()
  particles = automaton.initial_particles(16)
  moved = np.asarray(automaton.run_noninteracting(jnp.asarray(particles), 16, 0, 0, 160))
  counts = automaton.occupancy(moved, 16)
  assert counts.sum() == 128 and moved.min() >= 0 and moved.max() < 16
  np.testing.assert_array_equal(automaton.occupancy(particles, 16), grid)


def test_updates_are_deterministic_and_resume_exactly():
  grid = jnp.asarray(automaton.initial_grid(16))
  once = np.asarray(automaton.run_interacting(grid, 5, 0, 30))
  np.testing.assert_array_equal(once, np.asarray(automaton.run_interacting(grid, 5, 0, 30)))
  split = automaton.run_interacting(automaton.run_interacting(grid, 5, 0, 12), 5, 12, 18)
  np.testing.assert_array_equal(once, np.asarray(split))
  assert (once != np.asarray(automaton.run_interacting(grid, 6, 0, 30))).any()
  p = jnp.asarray(automaton.initial_particles(16))
  walk = automaton.run_noninteracting(p, 16, 5, 0, 20)
  again = automaton.run_noninteracting(automaton.run_noninteracting(p, 16, 5, 0, 8), 16, 5, 8, 12)
  np.testing.assert_array_equal(np.asarray(walk), np.asarray(again))


@pytest.mark.parametrize("n, devices", [(32, 8), (16, 8), (16, 2)])
def test_sharded_equals_unsharded_bit_for_bit(n, devices):
  assert jax.device_count() >= 8
  grid = automaton.initial_grid(n)
  single = np.asarray(automaton.run_interacting(jnp.asarray(grid), 9, 4, 25))
  mesh = automaton.make_mesh(devices)
  sharded = automaton.run_interacting_sharded(grid, 9, 4, 25, mesh)
  assert len(sharded.sharding.device_set) == devices
  np.testing.assert_array_equal(np.asarray(sharded), single)


def test_bad_sizes_are_refused():
  with pytest.raises(ValueError, match="even"):
    automaton.initial_grid(7)
  with pytest.raises(ValueError, match="split evenly"):
    automaton.shard_grid(np.zeros((12, 12), np.uint8), automaton.make_mesh(8))
  with pytest.raises(ValueError, match="odd"):
    measures.coarse_grain(np.zeros((4, 4)), 4)


# ---- the measures --------------------------------------------------------------------------

@pytest.mark.parametrize("g", [1, 3, 5])
def test_coarse_graining_matches_the_reference(g):
  rng = np.random.default_rng(g)
  binary = rng.integers(0, 2, (12, 9))
  counts = rng.poisson(0.7, (9, 12))  # the non-interacting model's cells hold counts
  for state in (binary, counts):
    for k in (measures.NAIVE_BUCKETS, measures.ADJUSTED_BUCKETS):
      np.testing.assert_array_equal(measures.threshold(state, g, k), reference_buckets(state, g, k))
    np.testing.assert_array_equal(measures.coarse_grained(state, g, adjusted=True),
                                  reference_adjust(reference_buckets(state, g, 7)))
  avg = measures.coarse_grain(binary, g)
  assert avg[5, 4] == pytest.approx(binary[5 - g // 2:5 + g // 2 + 1, 4 - g // 2:4 + g // 2 + 1].mean())


def test_adjustment_removes_border_noise_but_keeps_structure():
  rng = np.random.default_rng(0)
  # a row-only density profile sampled with noise: the non-interacting model's kind of state
  density = np.repeat(np.linspace(1, 0, 64)[:, None], 64, 1)
  state = (rng.random((64, 64)) < density).astype(np.uint8)
  naive = measures.compressed_size(measures.coarse_grained(state, 5, adjusted=False))
  adjusted = measures.compressed_size(measures.coarse_grained(state, 5, adjusted=True))
  assert naive > 2 * adjusted
  blob = np.zeros((64, 64), np.uint8)
  blob[20:40, 10:30] = 1  # a real 2-D structure survives the adjustment
  assert measures.coarse_grained(blob, 5, adjusted=True)[30, 20] == 6
  assert measures.coarse_grained(blob, 5, adjusted=True)[30, 50] == 0


def test_compressed_size_is_deterministic():
  a = np.arange(256, dtype=np.uint8).reshape(16, 16)
  assert measures.compressed_size(a) == measures.compressed_size(a.copy())
  assert measures.compressed_size(np.zeros((64, 64))) < measures.compressed_size(
      np.random.default_rng(0).integers(0, 2, (64, 64)))


# ---- the experiment ------------------------------------------------------------------------

def test_experiment_writes_what_the_claims_read(tmp_path):
  from launch import reproduce  # pylint: disable=g-import-not-at-top
  out = tmp_path / "run"
  assert experiment.main(["--out", str(out), "--sizes", "8,16", "--points", "4"]) == 0
  result = json.loads((out / "results.json").read_text())
  assert set(result["sizes"]) == {"8", "16"} and len(result["series"]["16"]["interacting"]["t"]) == 5
  assert result["series"]["16"]["interacting"]["t"][-1] == 128  # 0.5 N^2 sweeps
  for name in ("entropy_complexity.png", "scaling.png", "border_artefact.png", "snapshots.png"):
    assert (out / name).stat().st_size > 1000
  runs, claims = reproduce.load_claims("coffee_automaton")
  assert runs and claims
  for claim in claims:
    assert claim.file == "results.json"
    assert isinstance(reproduce.read_value(claim, str(out)), float), claim.metric
  sharded = tmp_path / "sharded"
  assert experiment.main(["--out", str(sharded), "--sizes", "16", "--points", "4", "--devices", "8",
                          "--no_plots"]) == 0
  again = json.loads((sharded / "results.json").read_text())
  assert again["series"]["16"] == result["series"]["16"]  # rows over 8 devices: the same numbers


@pytest.mark.parametrize("flags, message", [
    (["--sizes", "7"], "even number"),
    (["--sizes", "a,b"], "comma-separated integers"),
    (["--points", "1"], "--points must be >= 2"),
    (["--sweeps_per_n2", "nan"], "positive number"),
    (["--grain", "4"], "odd number"),
    (["--sizes", "12", "--devices", "8"], "do not split evenly"),
    (["--seed", "-1"], "--seed"),
])
def test_bad_flags_give_one_line(tmp_path, capsys, flags, message):
  with pytest.raises(SystemExit) as e:
    experiment.parse_args(["--out", str(tmp_path), *flags])
  lines = capsys.readouterr().err.strip().splitlines()
  assert e.value.code == 2 and len(lines) == 1 and lines[0].startswith("error: "), lines
  assert message in lines[0]


def test_the_command_line_refuses_in_one_line(tmp_path):
  result = subprocess.run([sys.executable, "-m", "papers.coffee_automaton.experiment",
                           "--out", str(tmp_path), "--points", "0"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
  lines = result.stderr.strip().splitlines()
  assert result.returncode == 2 and lines == ["error: --points must be >= 2, got 0"], result.stderr
