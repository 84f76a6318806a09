"""Seconds to trace, lower and compile one training step of a ResNet, unrolled or scanned.

  python -m papers.resnet.compile_time --variant preact_resnet1001 --scan_blocks [--remat nothing_saveable]

The step is that of training (He 2015's SGD with momentum 0.9 and weight decay, batch-norm
statistics updated), built from abstract shapes, so nothing is materialised; it is compiled for
this machine's default backend. Prints one JSON line: variant, scan_blocks, remat, batch, the
wall seconds of lowering (trace + StableHLO) and of XLA's compile, the process CPU seconds, XLA's
cost analysis (flops, bytes accessed) and, with --steps N, the median milliseconds of N steps.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from papers.resnet.model import Model


def train_step_fn(model, tx):
  def step(params, batch_stats, opt_state, images, labels):
    def loss_fn(p):
      logits, updates = model.apply({"params": p, "batch_stats": batch_stats}, images, train=True,
                                    mutable=["batch_stats"])
      return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean(), updates
    (loss, updates), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    steps, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, steps), updates["batch_stats"], opt_state, loss
  return step


def time_compile(variant: str, scan_blocks: bool, remat: str = "", batch: int = 8, size: int = 32,
                 channels: int = 3, steps: int = 0) -> dict:
  model = Model(variant, scan_blocks=scan_blocks, remat=remat)
  tx = optax.chain(optax.add_decayed_weights(1e-4), optax.sgd(0.1, momentum=0.9))
  images = jax.ShapeDtypeStruct((batch, size, size, channels), jnp.float32)
  labels = jax.ShapeDtypeStruct((batch,), jnp.int32)
  variables = jax.eval_shape(lambda: nn.meta.unbox(model.init(jax.random.key(0), jnp.zeros(images.shape))))
  opt_state = jax.eval_shape(tx.init, variables["params"])
  cpu0, wall0 = time.process_time(), time.perf_counter()
  lowered = jax.jit(train_step_fn(model, tx), donate_argnums=(0, 1, 2)).lower(
      variables["params"], variables["batch_stats"], opt_state, images, labels)
  lowered_s = time.perf_counter() - wall0
  compiled = lowered.compile()
  result = {"variant": variant, "scan_blocks": scan_blocks, "remat": remat, "batch": batch,
            "image": [size, size, channels], "backend": jax.default_backend(),
            "lower_s": round(lowered_s, 2), "compile_s": round(time.perf_counter() - wall0 - lowered_s, 2),
            "cpu_s": round(time.process_time() - cpu0, 2)}
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  result["flops"] = float(cost.get("flops", 0.0))
  result["bytes_accessed_gib"] = round(float(cost.get("bytes accessed", 0.0)) / 2**30, 3)
  if steps:
    result["step_ms"] = round(1e3 * time_steps(compiled, variables, opt_state, images, labels, steps), 1)
  return result


def time_steps(compiled, variables, opt_state, images, labels, steps: int) -> float:
  """Median seconds per step over `steps` runs after one warm-up run, on zeros and random images."""
  zeros = lambda tree: jax.tree.map(lambda s: jnp.zeros(s.shape, s.dtype), tree)  # pylint: disable=unnecessary-lambda-assignment
  state = (zeros(variables["params"]), zeros(variables["batch_stats"]), zeros(opt_state))
  x = jax.random.normal(jax.random.key(0), images.shape)
  y = jnp.zeros(labels.shape, jnp.int32)
  times = []
  for _ in range(steps + 1):
    start = time.perf_counter()
    *state, loss = compiled(*state, x, y)
    loss.block_until_ready()
    times.append(time.perf_counter() - start)
  return float(np.median(times[1:]))


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--variant", default="preact_resnet1001")
  parser.add_argument("--scan_blocks", action="store_true")
  parser.add_argument("--remat", default="", help="a jax.checkpoint_policies name (with --scan_blocks)")
  parser.add_argument("--batch", type=int, default=8)
  parser.add_argument("--size", type=int, default=32)
  parser.add_argument("--steps", type=int, default=0, help="then time this many steps (median)")
  args = parser.parse_args(argv)
  print(json.dumps(time_compile(args.variant, args.scan_blocks, args.remat, args.batch, args.size,
                                steps=args.steps)))
  return 0


if __name__ == "__main__":
  sys.exit(main())
