"""Entropy and apparent complexity of the coffee automaton over time, for several grid sizes.

  python -m papers.coffee_automaton.experiment --out DIR [--sizes 32,64,128] [--points 60]
      [--sweeps_per_n2 0.5] [--seed 0] [--devices D] [--grain G] [--no_plots]

For each N both models run for T = sweeps_per_n2 * N^2 sweeps (the slowest density mode decays
as exp(-pi^2 t / N^2): to 0.7% at 0.5 N^2) and are measured at `points` evenly spaced times.
DIR/results.json holds the series, a summary per N and model, and the top-level figures that
papers/coffee_automaton/claims.py reads; the figures go to DIR/*.png. `--devices D` runs the
interacting model with its rows split over D devices (on a CPU, make them with
XLA_FLAGS=--xla_force_host_platform_device_count=D); the numbers are identical either way.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time

import numpy as np


class _Parser(argparse.ArgumentParser):
  def error(self, message):  # one line, no usage block
    sys.stderr.write(f"error: {message}\n")
    sys.exit(2)


def parse_args(argv):
  parser = _Parser(prog="python -m papers.coffee_automaton.experiment",
                   description=__doc__.split("\n", maxsplit=1)[0])
  parser.add_argument("--out", required=True, help="directory for results.json and the figures")
  parser.add_argument("--sizes", default="32,64,128", help="comma-separated even grid sides N")
  parser.add_argument("--points", type=int, default=60, help="measurements per run, after t=0")
  parser.add_argument("--sweeps_per_n2", type=float, default=0.5, help="run length T / N^2")
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--devices", type=int, default=0,
                      help="split the interacting model's rows over this many devices (0: one)")
  parser.add_argument("--grain", type=int, default=0, help="coarse-graining square g (0: ~N/8, odd)")
  parser.add_argument("--monotone_tol", type=float, default=0.02,
                      help="entropy counts as non-decreasing if no drop exceeds this fraction of its maximum")
  parser.add_argument("--no_plots", dest="plots", action="store_false")
  args = parser.parse_args(argv)
  try:
    args.sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
  except ValueError:
    parser.error(f"--sizes takes comma-separated integers, got {args.sizes!r}")
  if not args.sizes:
    parser.error("--sizes is empty")
  for n in args.sizes:
    if n < 4 or n % 2:
      parser.error(f"--sizes: each N must be an even number >= 4, got {n}")
    if args.devices > 1 and n % args.devices:
      parser.error(f"--sizes: N={n} rows do not split evenly over --devices {args.devices}")
  if args.points < 2:
    parser.error(f"--points must be >= 2, got {args.points}")
  if not args.sweeps_per_n2 > 0 or not math.isfinite(args.sweeps_per_n2):
    parser.error(f"--sweeps_per_n2 must be a positive number, got {args.sweeps_per_n2}")
  if args.devices < 0:
    parser.error(f"--devices must be >= 0, got {args.devices}")
  if args.grain and (args.grain < 1 or args.grain % 2 == 0):
    parser.error(f"--grain must be an odd number >= 1, got {args.grain}")
  if not 0 <= args.monotone_tol < 1:
    parser.error(f"--monotone_tol must be in [0, 1), got {args.monotone_tol}")
  if not 0 <= args.seed < 2**32:
    parser.error(f"--seed must be in [0, 2^32), got {args.seed}")
  return args


class Progress:
  """A progress line with an ETA; the work is counted in cell updates (N^2 per sweep)."""

  def __init__(self, total: float):
    self.total, self.done, self.start, self.last = total, 0.0, time.time(), 0.0

  def add(self, work: float, label: str, force: bool = False):
    self.done += work
    now = time.time()
    if force or now - self.last >= 5:
      self.last = now
      elapsed = now - self.start
      eta = elapsed / self.done * (self.total - self.done) if self.done else float("nan")
      print(f"{label}: {100 * self.done / self.total:5.1f}% of all runs, {elapsed:6.1f} s elapsed, "
            f"ETA {eta:6.1f} s", flush=True)


def times_for(n: int, args) -> list[int]:
  total = max(1, round(args.sweeps_per_n2 * n * n))
  return sorted({round(total * i / args.points) for i in range(args.points + 1)})


def simulate(n: int, model: str, args, progress: Progress, mesh=None):
  """Measures one run at its times; returns (series, snapshots of the fine-grained state)."""
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from papers.coffee_automaton import automaton, measures  # pylint: disable=g-import-not-at-top
  g = args.grain or measures.default_grain(n)
  times = times_for(n, args)
  series = {"t": [], "entropy": [], "complexity": [], "complexity_naive": []}
  snapshots = []
  if model == "interacting":
    state = jnp.asarray(automaton.initial_grid(n))
    fine = lambda s: np.asarray(s)
  else:
    state = jnp.asarray(automaton.initial_particles(n))
    fine = lambda s: automaton.occupancy(s, n)
  t_prev = 0
  for t in times:
    if t > t_prev:
      if model == "interacting" and mesh is not None:
        state = automaton.run_interacting_sharded(state, args.seed, t_prev, t - t_prev, mesh)
      elif model == "interacting":
        state = automaton.run_interacting(state, args.seed, t_prev, t - t_prev)
      else:
        k = automaton.WALK_STEPS_PER_SWEEP
        state = automaton.run_noninteracting(state, n, args.seed, k * t_prev, k * (t - t_prev))
    grid = fine(state)
    for key, value in measures.measure(grid, g).items():
      series[key].append(value)
    series["t"].append(t)
    snapshots.append(grid)
    progress.add((t - t_prev) * n * n * (1.0 if model == "interacting" else 0.3),
                 f"[N={n} {model}] t={t}/{times[-1]}")
    t_prev = t
  return series, snapshots


def summarize(series: dict, n: int, tol: float) -> dict:
  t = np.array(series["t"], float)
  entropy = np.array(series["entropy"], float)
  drops = np.maximum.accumulate(entropy) - entropy  # how far each point sits below the record so far
  out = {"entropy_initial": entropy[0], "entropy_max": entropy.max(), "entropy_end": entropy[-1],
         "entropy_max_drop_frac": drops.max() / entropy.max(),
         "entropy_monotone": float(drops.max() <= tol * entropy.max())}
  for key in ("complexity", "complexity_naive"):
    c = np.array(series[key], float)
    peak = int(c.argmax())
    rise, fall = c[peak] - c[0], c[peak] - c[-1]
    out.update({f"{key}_initial": c[0], f"{key}_peak": c[peak], f"{key}_peak_time": t[peak],
                f"{key}_peak_time_over_n2": t[peak] / n**2, f"{key}_end": c[-1],
                f"{key}_end_over_peak": c[-1] / c[peak], f"{key}_rise": rise,
                f"{key}_peak_over_initial": c[peak] / c[0],
                # 1: back to where it started; > 1: below it (a uniform picture compresses best)
                f"{key}_fall_over_rise": fall / max(rise, 1.0)})
  return {k: float(v) for k, v in out.items()}


def _slope(xs, ys) -> float | None:
  """Least-squares slope of log y on log x (None: fewer than 2 sizes or a y <= 0)."""
  if len(xs) < 2 or min(ys) <= 0:
    return None
  return float(np.polyfit(np.log(xs), np.log(ys), 1)[0])


def overall(per_n: dict) -> dict:
  """The top-level figures the claims read: the interacting model with the adjusted
  coarse-graining at the largest N, unless the name says otherwise; exponents fit all N."""
  sizes = sorted(per_n, key=int)
  ns = [int(n) for n in sizes]
  inter = [per_n[n]["interacting"] for n in sizes]
  big = per_n[sizes[-1]]
  ratio = lambda a, b: a / max(b, 1.0)  # rises are in bytes; 1 byte is below gzip's resolution
  return {
      "largest_n": ns[-1],
      "entropy_max_drop_frac": max(big[m]["entropy_max_drop_frac"] for m in big),
      "entropy_monotone": min(big[m]["entropy_monotone"] for m in big),
      "peak_over_initial": big["interacting"]["complexity_peak_over_initial"],
      "fall_over_rise": big["interacting"]["complexity_fall_over_rise"],
      "end_over_peak": big["interacting"]["complexity_end_over_peak"],
      "naive_peak_over_initial": big["interacting"]["complexity_naive_peak_over_initial"],
      "naive_fall_over_rise": big["interacting"]["complexity_naive_fall_over_rise"],
      "peak_exponent": _slope(ns, [s["complexity_rise"] for s in inter]),
      "naive_peak_exponent": _slope(ns, [s["complexity_naive_rise"] for s in inter]),
      "peak_time_exponent": _slope(ns, [s["complexity_peak_time"] for s in inter]),
      "noninteracting_rise_ratio": ratio(big["noninteracting"]["complexity_rise"],
                                         big["interacting"]["complexity_rise"]),
      "noninteracting_rise_ratio_naive": ratio(big["noninteracting"]["complexity_naive_rise"],
                                               big["interacting"]["complexity_naive_rise"]),
      "noninteracting_naive_over_adjusted_rise": ratio(big["noninteracting"]["complexity_naive_rise"],
                                                       big["noninteracting"]["complexity_rise"]),
  }


def main(argv=None) -> int:
  args = parse_args(sys.argv[1:] if argv is None else argv)
  import jax  # pylint: disable=g-import-not-at-top  (after the flags: a bad one costs no jax start)
  from papers.coffee_automaton import automaton, measures  # pylint: disable=g-import-not-at-top
  mesh = None
  if args.devices > 1:
    if args.devices > jax.device_count():
      sys.stderr.write(f"error: --devices {args.devices}, but jax sees {jax.device_count()} "
                       f"(on a CPU: XLA_FLAGS=--xla_force_host_platform_device_count={args.devices})\n")
      return 2
    mesh = automaton.make_mesh(args.devices)
  os.makedirs(args.out, exist_ok=True)
  print(f"coffee automaton: N in {args.sizes}, T = {args.sweeps_per_n2:g} N^2 sweeps, "
        f"{args.points} measurements, seed {args.seed}, interacting model on "
        f"{args.devices or 1} {jax.devices()[0].platform} device(s)", flush=True)
  started = time.time()
  progress = Progress(sum(1.3 * times_for(n, args)[-1] * n * n for n in args.sizes))
  per_n, series, snapshots = {}, {}, {}
  for n in args.sizes:
    per_n[str(n)], series[str(n)], snapshots[n] = {}, {}, {}
    for model in ("interacting", "noninteracting"):
      s, snaps = simulate(n, model, args, progress, mesh)
      series[str(n)][model], snapshots[n][model] = s, snaps
      per_n[str(n)][model] = summarize(s, n, args.monotone_tol)
      per_n[str(n)][model]["grain"] = args.grain or measures.default_grain(n)
      summary = per_n[str(n)][model]
      progress.add(0, f"[N={n} {model}] done: entropy max {summary['entropy_max']:.0f} B, complexity "
                   f"peak {summary['complexity_peak']:.0f} B at t={summary['complexity_peak_time']:.0f} "
                   f"(naive {summary['complexity_naive_peak']:.0f} B), end/peak "
                   f"{summary['complexity_end_over_peak']:.2f}", force=True)
  result = {**overall(per_n), "sizes": per_n, "series": series,
            "args": {k: v for k, v in vars(args).items() if k != "out"},
            "wall_s": round(time.time() - started, 1)}
  path = os.path.join(args.out, "results.json")
  with open(path + ".tmp", "w", encoding="utf-8") as f:
    json.dump(result, f, indent=1)
  os.replace(path + ".tmp", path)
  print(json.dumps({k: v for k, v in result.items() if not isinstance(v, dict)}, indent=1))
  if args.plots:
    from papers.coffee_automaton import figures  # pylint: disable=g-import-not-at-top
    for name in figures.write_all(result, snapshots, args.out):
      print(f"wrote {name}")
  print(f"wrote {path}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
