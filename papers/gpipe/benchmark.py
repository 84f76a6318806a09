"""What the GPipe schedule costs: bubble, FLOPs, step time and memory per device.

  python -m papers.gpipe.benchmark               # K=4, M in 1..32, depth sweep; ~10 min on 2 CPU cores
  python -m papers.gpipe.benchmark --quick       # a smaller grid, for a smoke run

One training step (forward + backward of a squared-error loss) of a stack of
ResNet-style blocks (papers.gpipe.model.ResidualBlock), pipelined over a
'stage' mesh axis of K devices, against the same stack run as a plain layer
loop on one device. Loops are unrolled so that XLA's cost analysis counts every
tick (it counts a while-loop body once); memory and time come from the scanned
program that training runs. Reported per configuration:
  bubble      idle fraction of the schedule's stage-ticks, vs GPipe's (K-1)/(M+K-1)
  FLOPs       K x per-device FLOPs of the pipelined step / FLOPs of the plain step;
              GPipe computes every stage on every tick, so this tracks (M+K-1)/M
              (x 4/3 with re-materialisation, which recomputes the forward pass)
  memory      per-device peak from XLA memory analysis (arguments + outputs + temporaries)
  step time   median wall time of two steps on fake CPU devices: they share the host's
              cores, so this shows the schedule's overheads, not a pipelining speed-up
"""
from __future__ import annotations

import argparse
import json
import os
import time

if "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
  os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "")
                             + " --xla_force_host_platform_device_count=8").strip()

import flax.linen as nn  # noqa: E402
import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
from jax.sharding import NamedSharding, PartitionSpec as P  # noqa: E402

from core import pipeline as pl  # noqa: E402
from papers.gpipe.model import ResidualBlock  # noqa: E402

RULES = (("batch", None), ("embed", None), ("mlp", None), ("layers", None), ("stage", "stage"))


def _cost(compiled):
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  mem = compiled.memory_analysis()
  peak = (mem.argument_size_in_bytes + mem.output_size_in_bytes + mem.temp_size_in_bytes
          - mem.alias_size_in_bytes)
  return float(cost["flops"]), peak, mem.temp_size_in_bytes


def _time(fn, *args, repeats=2):
  """Median of `repeats` runs of an AOT-compiled step (nothing left to compile)."""
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(fn(*args))
    times.append(time.perf_counter() - start)
  return float(np.median(times))


def _loss(y):
  return jnp.mean(y ** 2)


def plain_step(layers, channels, batch, size, time_it):
  """The unpipelined reference on one device: a Python loop of the blocks."""
  block = ResidualBlock(channels)
  x = jnp.ones((batch, size, size, channels))
  params = [block.init(jax.random.key(i), x[:1])["params"] for i in range(layers)]
  params = nn.unbox(params)
  step = jax.jit(jax.grad(lambda p, x: _loss(pl.apply_layers(block, p, x))))
  compiled = step.lower(params, x).compile()
  flops, peak, temp = _cost(compiled)
  return dict(flops=flops, peak=peak, temp=temp,
              step_s=_time(compiled, params, x) if time_it else None)


def pipelined_step(layers, stages, microbatches, remat, channels, batch, size, time_it,
                   unroll=True):
  """One device per stage; FLOPs, peak memory (bytes) per device, and step time."""
  module = pl.Pipeline(ResidualBlock, dict(channels=channels), num_layers=layers,
                       num_stages=stages, microbatches=microbatches, remat=remat, unroll=unroll)
  mesh = jax.make_mesh((stages,), ("stage",), axis_types=(jax.sharding.AxisType.Auto,),
                       devices=jax.devices()[:stages])
  x = jnp.ones((batch, size, size, channels))
  with jax.set_mesh(mesh), nn.logical_axis_rules(RULES):
    init = lambda: module.init(jax.random.key(0), x)
    shardings = nn.logical_to_mesh_sharding(nn.get_partition_spec(jax.eval_shape(init)),
                                            mesh, RULES)
    params = jax.jit(lambda: nn.unbox(init()), out_shardings=shardings)()
    replicated = NamedSharding(mesh, P())
    step = jax.jit(jax.grad(lambda p, x: _loss(module.apply(p, x))),
                   in_shardings=(shardings, replicated), out_shardings=shardings)
    compiled = step.lower(params, x).compile()
    x = jax.device_put(x, replicated)
    flops, peak, temp = _cost(compiled)
    step_s = _time(compiled, params, x) if time_it else None
  return dict(flops=flops, peak=peak, temp=temp, step_s=step_s)


def microbatch_table(stages, microbatch_list, layers, channels, batch, size):
  base = plain_step(layers, channels, batch, size, time_it=True)
  rows = []
  for m in microbatch_list:
    busy = pl.scheduled_stage_ticks(stages, m)
    row = dict(M=m, bubble_schedule=float(1 - busy.mean()),
               bubble_formula=pl.bubble_fraction(stages, m),
               flops_formula=(m + stages - 1) / m)
    for remat in (False, True):
      tag = "remat" if remat else "no_remat"
      # FLOPs from the unrolled program; memory and time from the scanned one that
      # training runs (unrolled, XLA reschedules the recomputation and the memory saving is lost)
      unrolled = pipelined_step(layers, stages, m, remat, channels, batch, size, time_it=False)
      scanned = pipelined_step(layers, stages, m, remat, channels, batch, size, time_it=True,
                               unroll=False)
      row[f"flops_ratio_{tag}"] = unrolled["flops"] * stages / base["flops"]
      row[f"peak_mib_{tag}"] = scanned["peak"] / 2**20
      row[f"step_s_{tag}"] = scanned["step_s"]
    rows.append(row)
    print(json.dumps(row), flush=True)
  return base, rows


def depth_table(stages, microbatches, depths, channels, batch, size):
  rows = []
  for layers in depths:
    row = dict(layers=layers)
    for remat in (False, True):
      r = pipelined_step(layers, stages, microbatches, remat, channels, batch, size,
                         time_it=False, unroll=False)
      tag = "remat" if remat else "no_remat"
      row[f"peak_mib_{tag}"] = r["peak"] / 2**20
      row[f"temp_mib_{tag}"] = r["temp"] / 2**20
    rows.append(row)
    print(json.dumps(row), flush=True)
  return rows


def markdown(args, base, mb_rows, depth_rows) -> str:
  k = args.stages
  lines = [f"K = {k} stages, {args.layers} blocks of {args.channels} channels, batch {args.batch} "
           f"of {args.size}x{args.size}; unpipelined step on one device: "
           f"{base['flops'] / 1e9:.3f} GFLOP, {base['peak'] / 2**20:.1f} MiB peak, "
           f"{base['step_s'] * 1e3:.0f} ms.", "",
           "| M | bubble, schedule | (K-1)/(M+K-1) | FLOPs / unpipelined | (M+K-1)/M | "
           "FLOPs, remat | peak MiB/device | peak MiB, remat | step ms | step ms, remat |",
           "|---|---|---|---|---|---|---|---|---|---|"]
  for r in mb_rows:
    lines.append(
        f"| {r['M']} | {r['bubble_schedule']:.3f} | {r['bubble_formula']:.3f} | "
        f"{r['flops_ratio_no_remat']:.3f} | {r['flops_formula']:.3f} | {r['flops_ratio_remat']:.3f} | "
        f"{r['peak_mib_no_remat']:.1f} | {r['peak_mib_remat']:.1f} | "
        f"{r['step_s_no_remat'] * 1e3:.0f} | {r['step_s_remat'] * 1e3:.0f} |")
  lines += ["", f"Depth sweep, K = {k}, M = {args.depth_microbatches} (per-device peak / temporaries, MiB):",
            "", "| blocks | peak | temp | peak, remat | temp, remat |", "|---|---|---|---|---|"]
  for r in depth_rows:
    lines.append(f"| {r['layers']} | {r['peak_mib_no_remat']:.1f} | {r['temp_mib_no_remat']:.1f} | "
                 f"{r['peak_mib_remat']:.1f} | {r['temp_mib_remat']:.1f} |")
  return "\n".join(lines)


def main(argv=None):
  parser = argparse.ArgumentParser(prog="python -m papers.gpipe.benchmark")
  parser.add_argument("--stages", type=int, default=4)
  parser.add_argument("--microbatches", type=int, nargs="+", default=[1, 2, 4, 8, 16, 32])
  parser.add_argument("--layers", type=int, default=8)
  parser.add_argument("--channels", type=int, default=16)
  parser.add_argument("--batch", type=int, default=64)
  parser.add_argument("--size", type=int, default=16)
  parser.add_argument("--depths", type=int, nargs="+", default=[4, 8, 16, 32, 64])
  parser.add_argument("--depth_microbatches", type=int, default=8)
  parser.add_argument("--quick", action="store_true", help="M in {1, 4}, depths {4, 8}")
  parser.add_argument("--out", default=None, help="also write the rows as JSON here")
  args = parser.parse_args(argv)
  if args.quick:
    args.microbatches, args.depths, args.batch = [1, 4], [4, 8], 8
  print(f"{jax.device_count()} {jax.devices()[0].platform} devices", flush=True)
  base, mb_rows = microbatch_table(args.stages, args.microbatches, args.layers, args.channels,
                                   args.batch, args.size)
  depth_rows = depth_table(args.stages, args.depth_microbatches, args.depths, args.channels,
                           args.batch, args.size)
  table = markdown(args, base, mb_rows, depth_rows)
  print(table)
  if args.out:
    with open(args.out, "w") as f:
      json.dump(dict(args=vars(args), base=base, microbatches=mb_rows, depth=depth_rows), f, indent=1)


if __name__ == "__main__":
  main()
