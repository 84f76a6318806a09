"""Compile a config's train step for a TPU slice ahead of time, on a machine with no TPU.

  python -m launch.compile --config configs/transformer.py:big --topology v5p-128 \\
      [--num_slices 2] [--config.mesh.fsdp=16 ...]

Builds the same train step as launch.train (model, optimizer, shardings, pipeline stages)
from abstract inputs, so no parameter is materialised, compiles it with libtpu for the
named slice (`pip install -e ".[aot]"`), and prints per-device memory against the chip's
HBM, FLOPs per step and a roofline estimate of step time and MFU. Exits with status 4 and
a one-line reason when the step does not fit in HBM. Topologies: v4-N and v5p-N (N counts
TensorCores, 2 per chip), v5e-N and v6e-N (N counts chips), or an explicit shape such as
v5p:4x4x8; with --num_slices the slices are joined over the data-centre network along
the `data` mesh axis (else `fsdp`). GPUs (a100-N, h100-N, h200-N): XLA cannot compile for a GPU
it cannot see, so a v5p slice with as many chips stands in; its parameter and optimizer memory,
FLOPs and collective bytes hold for the GPUs (they depend on the mesh), the roofline uses the
GPU's figures, and its temporaries are only indicative.
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import re
import sys
import time

USAGE = ("python -m launch.compile --config configs/<name>.py[:variant] --topology v5p-128 "
         "[--num_slices N] [--config.key=value ...]")
EXIT_DOES_NOT_FIT = 4


class DoesNotFit(RuntimeError):
  """The step needs more memory per device than the chip has."""


@dataclasses.dataclass
class Report:
  config_name: str
  topology: object               # core.hardware.Topology
  mesh_shape: dict
  num_params: int
  state_bytes: float             # parameters + optimizer state, per device
  argument_bytes: float
  output_bytes: float
  alias_bytes: float
  temp_bytes: float
  code_bytes: float
  cost: object                   # core.hardware.StepCost, per device
  model_flops: float             # per step, whole slice: 3 x forward matmul FLOPs
  roofline: object               # core.hardware.Roofline
  compile_s: float
  cost_source: str = "compiled"  # where FLOPs and bytes come from

  @property
  def total_bytes(self) -> float:
    return self.argument_bytes + self.output_bytes - self.alias_bytes + self.temp_bytes + self.code_bytes

  @property
  def mfu(self) -> float:
    chip = self.topology.chip
    return self.model_flops / (self.roofline.step_s * chip.peak_flops * self.topology.num_devices)


def _per_device_bytes(tree) -> float:
  import jax  # pylint: disable=g-import-not-at-top
  return sum(math.prod(x.sharding.shard_shape(x.shape)) * x.dtype.itemsize for x in jax.tree.leaves(tree))


def _oom_message(error_text: str, report_stub: dict, topology) -> str:
  m = re.search(r"\(([\d.]+)([KMGT])\) exceeds available HBM \(([\d.]+)([KMGT])\)", error_text)
  scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
  if m:
    need, have = float(m.group(1)) * scale[m.group(2)], float(m.group(3)) * scale[m.group(4)]
  else:
    need, have = float("nan"), topology.chip.hbm_bytes
  return fit_advice(need, have, **report_stub, topology=topology)


def fit_advice(need, have, *, config_name, mesh_shape, state_bytes, topology) -> str:
  """One line: how far over HBM the step is and which mesh axes would shrink what."""
  other = need - state_bytes
  hints = []
  if state_bytes > 0.25 * have:
    hints.append(f"a larger mesh.fsdp (now {mesh_shape['fsdp']}) divides parameters, gradients and "
                 f"optimizer state ({state_bytes / 2**30:.2f} GiB per device now)")
  hints.append(f"a larger mesh.tensor (now {mesh_shape['tensor']}) divides each layer's weights and activations")
  if mesh_shape["stage"] == 1:
    hints.append("mesh.stage (with pipeline.microbatches) splits a pipelined model's layers into stages")
  hints.append(f"a smaller batch_size or more data/fsdp shards shrink the activations "
               f"({max(other, 0) / 2**30:.2f} GiB per device now)")
  return (f"{config_name} does not fit {topology}: it needs {need / 2**30:.2f} GiB per device, "
          f"a {topology.chip.name} chip has {have / 2**30:.2f} GiB ({(need - have) / 2**30:.2f} GiB over) "
          f"with mesh {mesh_shape}. What would help: " + "; ".join(hints) + ".")


def compile_for(config, topology, config_name: str = "config", hlo_out: str | None = None) -> Report:
  """Compiles `config`'s train step for `topology`; raises DoesNotFit with the advice line."""
  # pylint: disable=g-import-not-at-top
  import jax
  from core import hardware
  from core import sharding as sharding_lib
  from core.train import Trainer

  devices = hardware.compile_only_devices(topology)
  mesh = sharding_lib.make_mesh(config.mesh, devices, topology.num_slices)
  trainer = Trainer(config, mesh=mesh)
  state, batch = trainer.abstract_state(), trainer.abstract_batch()
  stub = dict(config_name=config_name, mesh_shape=dict(mesh.shape), state_bytes=_per_device_bytes(state))
  start = time.time()
  with trainer.context():
    lowered = trainer.train_step.lower(state, batch)
    try:
      compiled = lowered.compile()
    except jax.errors.JaxRuntimeError as e:
      if "RESOURCE_EXHAUSTED" in str(e) or "Ran out of memory" in str(e):
        raise DoesNotFit(_oom_message(str(e), stub, topology)) from None
      raise
  compile_s = time.time() - start
  memory = compiled.memory_analysis()
  cost_source = "compiled"
  try:
    hlo = compiled.as_text()
  except jax.errors.JaxRuntimeError as e:
    # Some compiled programs (seen: the gpt LM on v5p with libtpu 0.0.52) fail to print
    # ("async-update instruction should have 1 operands"); XLA's own cost analysis still works,
    # though it counts each loop body once and gives no collective bytes.
    hlo, cost_source = None, f"XLA cost analysis (the compiled HLO could not be printed: {str(e)[:80]}...)"
  if hlo is not None:
    if hlo_out:  # the optimised per-device program, to read or to re-cost without recompiling
      with open(hlo_out, "w") as f:
        f.write(hlo)
    cost = hardware.step_cost(hlo, topology.num_devices)
  else:
    analysis = compiled.cost_analysis()
    analysis = (analysis[0] if isinstance(analysis, (list, tuple)) else analysis) or {}
    cost = hardware.StepCost(flops=float(analysis.get("flops", 0.0)),
                             hbm_bytes=float(analysis.get("bytes accessed", 0.0)))
  report = Report(
      config_name=config_name, topology=topology, mesh_shape=dict(mesh.shape),
      num_params=sum(math.prod(x.shape) for x in jax.tree.leaves(state.params)),
      state_bytes=stub["state_bytes"], argument_bytes=memory.argument_size_in_bytes,
      output_bytes=memory.output_size_in_bytes, alias_bytes=memory.alias_size_in_bytes,
      temp_bytes=memory.temp_size_in_bytes, code_bytes=memory.generated_code_size_in_bytes,
      cost=cost, model_flops=trainer.model_flops(),
      roofline=hardware.roofline(topology.chip, cost.flops, cost.hbm_bytes, cost.network_bytes),
      compile_s=compile_s, cost_source=cost_source)
  if report.total_bytes > topology.chip.hbm_bytes:
    raise DoesNotFit(fit_advice(report.total_bytes, topology.chip.hbm_bytes, topology=topology, **stub))
  return report


def format_report(r: Report) -> str:
  gib = lambda b: f"{b / 2**30:8.2f} GiB"  # pylint: disable=unnecessary-lambda-assignment
  chip, roof, cost = r.topology.chip, r.roofline, r.cost
  loops = f" ({cost.unknown_loops} loops of unknown length counted once)" if cost.unknown_loops else ""
  lines = [
      f"{r.config_name} on {r.topology}, mesh {r.mesh_shape}, {r.num_params:,} parameters, "
      f"compiled in {r.compile_s:.1f} s",
      "memory per device:",
      f"  arguments     {gib(r.argument_bytes)}   (parameters + optimizer state {gib(r.state_bytes).strip()}, batch)",
      f"  outputs       {gib(r.output_bytes)}   ({gib(r.alias_bytes).strip()} reuse donated arguments)",
      f"  temporaries   {gib(r.temp_bytes)}",
      f"  code          {gib(r.code_bytes)}",
      f"  total         {gib(r.total_bytes)}   of {gib(chip.hbm_bytes).strip()} HBM "
      f"({100 * r.total_bytes / chip.hbm_bytes:.1f}%)",
  ]
  if r.topology.stand_in:
    lines.append(f"  (temporaries and code are the {r.topology.compile_chip.name} compiler's; a GPU's differ)")
  lines += [
      "per step:" + ("" if r.cost_source == "compiled" else f" (from {r.cost_source})"),
      f"  FLOPs         {cost.flops:.3e} per device (compiled, with rematerialisation), "
      f"{cost.flops * r.topology.num_devices:.3e} in all{loops}",
      f"  model FLOPs   {r.model_flops:.3e} (3 x forward matmuls)",
      f"  HBM traffic   {gib(cost.hbm_bytes).strip()} per device",
      f"  collectives   {gib(cost.network_bytes).strip()} sent per device",
      f"roofline on {chip.name} ({chip.peak_flops / 1e12:.0f} TFLOP/s, {chip.hbm_bandwidth / 1e9:.0f} GB/s HBM, "
      f"{chip.ici_bandwidth / 1e9:.0f} GB/s interconnect):",
      f"  compute {1e3 * roof.compute_s:.3f} ms, HBM {1e3 * roof.memory_s:.3f} ms, "
      f"interconnect {1e3 * roof.network_s:.3f} ms",
      f"  step >= {1e3 * roof.step_s:.3f} ms ({roof.bound}-bound), MFU <= {100 * r.mfu:.1f}%",
  ]
  return "\n".join(lines)


def parse_args(argv):
  parser = argparse.ArgumentParser(prog="python -m launch.compile", usage=USAGE)
  parser.add_argument("--config", required=True, help="config file, optionally with :variant")
  parser.add_argument("--topology", required=True, help="e.g. v5p-128, v5e-256, v6e-64, v5p:4x4x8, h100-64")
  parser.add_argument("--num_slices", type=int, default=1, help="identical slices joined over DCN")
  parser.add_argument("--hlo_out", default=None, help="write the compiled per-device HLO text here")
  return parser.parse_known_args(argv)


def main(argv=None) -> int:
  args, overrides = parse_args(sys.argv[1:] if argv is None else argv)
  # Several compiles (or a test run) may load libtpu at once; none of them drives a TPU.
  os.environ.setdefault("ALLOW_MULTIPLE_LIBTPU_LOAD", "1")
  # pylint: disable=g-import-not-at-top
  from core import hardware
  from core.config import load_config
  from core.task import ConfigError, DataMissingError
  try:
    topology = hardware.parse_topology(args.topology, args.num_slices)
  except ValueError as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  # Without a TPU host to ask, libtpu logs a page of warnings unless told what it runs on.
  os.environ.setdefault("TPU_ACCELERATOR_TYPE", topology.accelerator_type)
  os.environ.setdefault("TPU_WORKER_HOSTNAMES", "localhost")
  os.environ.setdefault("TPU_SKIP_MDS_QUERY", "1")
  if not hardware.libtpu_installed():
    print('error: compiling for a TPU needs libtpu: pip install -e ".[aot]"', file=sys.stderr)
    return 2
  try:
    config = load_config(args.config, overrides)
    report = compile_for(config, topology, args.config, args.hlo_out)
  except (ConfigError, DataMissingError) as e:
    print(f"error: {e}", file=sys.stderr)
    return 2
  except DoesNotFit as e:
    print(f"error: {e}", file=sys.stderr)
    return EXIT_DOES_NOT_FIT
  print(format_report(report))
  return 0


if __name__ == "__main__":
  sys.exit(main())
