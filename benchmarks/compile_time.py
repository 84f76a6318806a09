"""Compile time of the Transformer LM's training step against depth: unrolled layers vs nn.scan.

  python -m benchmarks.compile_time                       # d_model 256, depths 4, 8, 16, 32
  python -m benchmarks.compile_time --depths 4,32 --preset d512

Each cell lowers and compiles the AdamW training step from abstract shapes (nothing is
allocated or run) and reports the wall time of `jit(...).lower(...).compile()`, one fresh
compile per cell (jax's compilation cache is off). The unrolled stack compiles every layer;
the scanned one compiles one layer body, so its time should stay flat as depth grows.
"""
from __future__ import annotations

import argparse
import sys
import time

from benchmarks import harness
from benchmarks.transformer_lm import PRESETS, lm_train_step

MODES = {"unrolled": dict(scan_layers=False, remat=False),
         "scan": dict(scan_layers=True, remat=False),
         "scan+remat": dict(scan_layers=True, remat=True)}


def compile_seconds(dims, dtype: str, mode: str) -> float:
  lm = lm_train_step(dims, dtype, **MODES[mode])
  t = time.perf_counter()
  lm.train_step.lower(lm.abstract_params, lm.abstract_opt_state, lm.tokens).compile()
  return time.perf_counter() - t


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--preset", default="d256", choices=sorted(PRESETS))
  parser.add_argument("--depths", default="4,8,16,32")
  parser.add_argument("--modes", default=",".join(MODES), help=f"comma list of {', '.join(MODES)}")
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  parser.add_argument("--out", default="")
  args = parser.parse_args(argv)
  try:
    depths = [int(d) for d in args.depths.split(",")]
  except ValueError:
    parser.error(f"--depths takes a comma list of integers, got {args.depths!r}")
  if not depths or min(depths) < 1:
    parser.error(f"--depths must be positive, got {args.depths!r}")
  modes = [m for m in args.modes.split(",") if m]
  if not modes or any(m not in MODES for m in modes):
    parser.error(f"--modes takes a comma list of {', '.join(MODES)}, got {args.modes!r}")

  import jax  # pylint: disable=g-import-not-at-top
  jax.config.update("jax_enable_compilation_cache", False)
  base = PRESETS[args.preset]
  rows = []
  for depth in depths:
    row = {"depth": depth}
    for mode in modes:
      row[mode] = compile_seconds((depth,) + base[1:], args.dtype, mode)
    rows.append(row)
    print(f"depth {depth}: " + ", ".join(f"{m} {row[m]:.1f} s" for m in modes), flush=True)
  growth = {m: rows[-1][m] / rows[0][m] for m in modes}
  rows.append({"depth": f"x{depths[-1] // depths[0]} depth: time ratio", **growth})
  print(f"compile time of the LM training step ({args.preset}, {args.dtype}), {harness.machine()}, "
        f"jax {jax.__version__} on {jax.devices()[0].device_kind}")
  harness.print_table(rows, [("depth", "layers", "{}")] + [(m, m, "{:.2f}") for m in modes])
  harness.write_json(args.out, {"preset": args.preset, "dtype": args.dtype, "machine": harness.machine(),
                                "seconds": rows[:-1], "growth": growth})
  return 0


if __name__ == "__main__":
  sys.exit(main())
