"""Step time of the relational RNN paper's Nth-farthest training at the paper's batch (1600).

  python -m benchmarks.nth_farthest                      # RMC and LSTM of configs/relational_rnn.py:*_paper
  python -m benchmarks.nth_farthest --batch 64 --cores rmc

Times the jitted training step (forward, backward, Adam 1e-4, no clipping, as `rmc_paper`)
of papers/relational_rnn's SequenceClassifier on batches from the task's own generator, and the
host time to generate one batch (the input pipeline's share). Prints ms/step, sequences/s,
model TFLOP/s and the wall time of 100k steps at that speed: how long a paper-scale run takes.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

from benchmarks import harness
from configs import relational_rnn as rrnn_config


def time_core(core: str, batch: int, steps: int, warmup: int, dtype: str) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from core import hardware  # pylint: disable=g-import-not-at-top
  from papers.relational_rnn.model import SequenceClassifier  # pylint: disable=g-import-not-at-top
  from papers.relational_rnn.task import core_kwargs, nth_farthest_batch  # pylint: disable=g-import-not-at-top

  c = rrnn_config.get_config(f"{core}_paper")
  m, d = c.model, c.data
  model = SequenceClassifier(num_classes=d.num_objects, core=core, core_kwargs=core_kwargs(m),
                             mlp_sizes=tuple(m.mlp_sizes), unroll=m.unroll, dtype=jnp.dtype(dtype))
  rng = np.random.default_rng(0)
  t = time.perf_counter()
  inputs, targets, _ = nth_farthest_batch(rng, batch, d.num_objects, d.num_features)
  host_batch_s = time.perf_counter() - t
  inputs, targets = jnp.asarray(inputs), jnp.asarray(targets)
  params = model.init(jax.random.PRNGKey(0), inputs[:1])["params"]
  optimizer = optax.adam(c.optimizer.learning_rate)
  opt_state = optimizer.init(params)

  def loss_fn(params, inputs, targets):
    logits = model.apply({"params": params}, inputs).astype(jnp.float32)
    return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()

  step = harness.stepper(harness.optax_train_step(loss_fn, optimizer), params, opt_state, inputs, targets)

  flops = 3 * hardware.jaxpr_flops(loss_fn, params, inputs, targets)
  result = harness.time_steps(step, lambda r: r.block_until_ready(), steps, warmup)
  result.update(core=core, batch=batch, dtype=dtype, host_batch_ms=host_batch_s * 1e3,
                params=sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(params)),
                flops_per_step=flops, device=jax.devices()[0].device_kind)
  result["step_ms"] = result["step_s"] * 1e3
  result["sequences_per_s"] = batch / result["step_s"]
  result["tflops"] = flops / result["step_s"] / 1e12
  result["hours_per_100k_steps"] = result["step_s"] * 1e5 / 3600
  return result


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--cores", default="rmc,lstm", help="comma list: rmc, lstm")
  parser.add_argument("--batch", type=int, default=1600, help="the paper's batch is 1600")
  parser.add_argument("--dtype", default="float32", choices=("float32", "bfloat16"))
  parser.add_argument("--steps", type=int, default=20)
  parser.add_argument("--warmup", type=int, default=3)
  parser.add_argument("--out", default="")
  args = parser.parse_args(argv)
  cores = [c for c in args.cores.split(",") if c]
  if not cores or any(c not in ("rmc", "lstm") for c in cores):
    parser.error(f"--cores takes rmc and/or lstm, got {args.cores!r}")
  if args.batch < 1 or args.steps < 1 or args.warmup < 1:
    parser.error("--batch, --steps and --warmup must be >= 1")
  rows = [time_core(core, args.batch, args.steps, args.warmup, args.dtype) for core in cores]
  print(f"Nth-farthest, paper-scale models, batch {args.batch}, {args.dtype}, {harness.machine()}, "
        f"jax device {rows[0]['device']}")
  harness.print_table(rows, [
      ("core", "core", "{}"), ("params", "parameters", "{:,}"), ("step_ms", "step (ms)", "{:.2f}"),
      ("sequences_per_s", "sequences/s", "{:,.0f}"), ("tflops", "model TFLOP/s", "{:.2f}"),
      ("host_batch_ms", "host batch (ms)", "{:.1f}"), ("first_call_s", "first step (s)", "{:.1f}"),
      ("hours_per_100k_steps", "h per 100k steps", "{:.2f}")])
  harness.write_json(args.out, {"batch": args.batch, "dtype": args.dtype, "machine": harness.machine(),
                                "rows": rows})
  return 0


if __name__ == "__main__":
  sys.exit(main())
