"""Does a config's training step compute the same gradient sharded as on one device?

  python -m launch.check_sharding [--configs transformer,ntm:copy-ntm_ff,...] \\
      [--mesh data=2,fsdp=2,tensor=2] [--tolerance 1e-3] [--out report.json]

For each config (default: every configs/*.py, default variant): one initial state, the batch
of step 0, and plain SGD at learning rate 1 without clipping or decay, so that one step's
parameter change is minus the gradient. The step runs on one device and on the mesh; the
report gives, per config, the largest relative difference of any parameter leaf's gradient
(max |g_1 - g_mesh| / max |g_1|, the denominator floored at 1e-3 of the largest gradient
entry of the model), which leaf, and the two losses. Float32 sums in another order differ by
~1e-6; a leaf far above the tolerance is a sharding bug (the model's or the compiler's, as in
tests/test_xla_sharding_bug.py). On a machine without 8 accelerators it asks XLA for 8 host
devices (set before jax starts).
"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SGD = ("--config.optimizer.name=sgd", "--config.optimizer.learning_rate=1.0",
       "--config.optimizer.schedule=constant", "--config.optimizer.warmup_steps=0",
       "--config.optimizer.clip_norm=0.0", "--config.optimizer.clip_value=0.0",
       "--config.optimizer.weight_decay=0.0")


def default_configs() -> list[str]:
  return sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, "configs", "*.py"))
                if not os.path.basename(p).startswith(("_", "common")))


def parse_mesh(text: str) -> dict[str, int]:
  mesh = {}
  for part in text.split(","):
    axis, _, size = part.partition("=")
    if not size.isdigit() or int(size) < 1:
      raise SystemExit(f"error: --mesh {text!r}: write axis=size pairs, e.g. data=2,fsdp=2,tensor=2")
    mesh[axis.strip()] = int(size)
  return mesh


def check_config(spec: str, mesh: dict[str, int]) -> dict:
  """One config's gradients on one device and on `mesh`."""
  import jax  # pylint: disable=g-import-not-at-top
  import numpy as np  # pylint: disable=g-import-not-at-top
  from core.config import load_config  # pylint: disable=g-import-not-at-top
  from core.task import DataMissingError, load_task  # pylint: disable=g-import-not-at-top
  from core.train import Trainer  # pylint: disable=g-import-not-at-top

  path, _, variant = spec.partition(":")
  if not path.endswith(".py"):  # a name in configs/
    path = os.path.join(ROOT, "configs", f"{path}.py")
  config_path = path + (f":{variant}" if variant else "")
  def config_for(axes):
    flags = [f"--config.mesh.{a}={axes.get(a, 1)}" for a in ("data", "fsdp", "tensor", "stage")]
    return load_config(config_path, [*SGD, *flags])
  one_config = config_for({})
  try:
    load_task(one_config).check_data()
  except DataMissingError as e:
    return {"config": spec, "skipped": str(e)}
  started = time.time()
  one = Trainer(one_config, devices=jax.devices()[:1])
  sharded = Trainer(config_for(mesh), devices=jax.devices()[:int(np.prod(list(mesh.values())))])
  initial = jax.device_get(one.init_state())
  after_one, (metrics_one,) = one.run_steps(jax.device_put(initial, one.state_shardings), [0])
  after_mesh, (metrics_mesh,) = sharded.run_steps(jax.device_put(initial, sharded.state_shardings), [0])
  grad_one = jax.tree.map(lambda a, b: np.asarray(b, np.float64) - np.asarray(a, np.float64),
                          jax.device_get(after_one.params), initial.params)
  grad_mesh = jax.tree.map(lambda a, b: np.asarray(b, np.float64) - np.asarray(a, np.float64),
                           jax.device_get(after_mesh.params), initial.params)
  worst, worst_leaf = 0.0, ""
  # A leaf whose gradient is zero in exact arithmetic (a key bias: softmax ignores it) holds
  # rounding noise only; its scale is floored at 1e-3 of the largest gradient entry.
  floor = 1e-3 * max(float(np.abs(g).max()) for g in jax.tree.leaves(grad_one))
  for (key, g1), gm in zip(jax.tree_util.tree_leaves_with_path(grad_one), jax.tree.leaves(grad_mesh)):
    scale = max(float(np.abs(g1).max()), floor)
    error = float(np.abs(g1 - gm).max() / scale) if scale > 0 else float(np.abs(gm).max() > 0)
    if error > worst:
      worst, worst_leaf = error, jax.tree_util.keystr(key)
  return {"config": spec, "mesh": mesh, "relative_error": worst, "leaf": worst_leaf,
          "loss_one_device": float(metrics_one["loss"]), "loss_mesh": float(metrics_mesh["loss"]),
          "seconds": round(time.time() - started, 1)}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(prog="python -m launch.check_sharding", description=__doc__.split("\n")[0])
  parser.add_argument("--configs", default="",
                      help="comma-separated configs/<name>[:variant] or paths to .py configs (default: all)")
  parser.add_argument("--mesh", default="data=2,fsdp=2,tensor=2")
  parser.add_argument("--tolerance", type=float, default=1e-3)
  parser.add_argument("--out", default="", help="write the report as JSON here")
  args = parser.parse_args(sys.argv[1:] if argv is None else argv)
  mesh = parse_mesh(args.mesh)
  devices = 1
  for size in mesh.values():
    devices *= size
  if "jax" not in sys.modules and "xla_force_host_platform_device_count" not in os.environ.get("XLA_FLAGS", ""):
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               f" --xla_force_host_platform_device_count={devices}").strip()
  import jax  # pylint: disable=g-import-not-at-top
  if jax.device_count() < devices:
    raise SystemExit(f"error: --mesh {args.mesh} needs {devices} devices; this process has "
                     f"{jax.device_count()} (set XLA_FLAGS=--xla_force_host_platform_device_count={devices} "
                     f"before jax starts, or a smaller mesh)")
  specs = [s.strip() for s in args.configs.split(",") if s.strip()] or default_configs()
  rows, failed = [], []
  for spec in specs:
    row = check_config(spec, mesh)
    rows.append(row)
    if "skipped" in row:
      print(f"{spec:32s} skipped: {row['skipped']}", flush=True)
      continue
    ok = row["relative_error"] <= args.tolerance
    if not ok:
      failed.append(spec)
    print(f"{spec:32s} {'ok  ' if ok else 'DIFF'} gradient relative error {row['relative_error']:.2e} "
          f"(worst leaf {row['leaf']}); loss {row['loss_one_device']:.6g} on one device, "
          f"{row['loss_mesh']:.6g} on the mesh; {row['seconds']:.0f} s", flush=True)
  if args.out:
    with open(args.out, "w", encoding="utf-8") as f:
      json.dump({"mesh": mesh, "tolerance": args.tolerance, "rows": rows}, f, indent=1)
  if failed:
    print(f"{len(failed)} configs differ beyond {args.tolerance:g}: {', '.join(failed)}", file=sys.stderr)
  return 1 if failed else 0


if __name__ == "__main__":
  sys.exit(main())
