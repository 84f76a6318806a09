"""Where the d_model 256 Transformer LM's CPU time goes: one layer's parts, jax against PyTorch.

  python -m benchmarks.lm_cpu_profile [--out benchmarks/results/cpu_lm_profile.json]

Each part is timed forward + backward (the gradient of a sum) at the shapes of
`benchmarks.transformer_lm --preset d256` (batch 16, length 256, 4 heads of 64, d_ff 1024), one
compute thread each side, in CPU milliseconds of the process per call (median of 5 after one
untimed call): causal attention in the project's layout ([batch, length, heads, head_dim], the
einsum form), the same with heads first, the same split into query blocks that skip the masked
keys, PyTorch's `scaled_dot_product_attention` and its plain matmul-softmax-matmul; the ReLU
feed-forward; and the AdamW update of the model's 3.2M parameters.
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

from benchmarks import harness

BATCH, LENGTH, HEADS, HEAD_DIM, D_FF = 16, 256, 4, 64, 1024
D_MODEL = HEADS * HEAD_DIM


def jax_parts() -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(0)
  q, k, v = (jnp.asarray(rng.standard_normal((BATCH, LENGTH, HEADS, HEAD_DIM)), jnp.float32)
             for _ in range(3))
  scale = 1 / np.sqrt(HEAD_DIM)

  def causal(q, k, v, first_query=0):  # q: a block of queries starting at first_query
    s = jnp.einsum("bqhd,bkhd->bhqk", q, k) * scale
    visible = jnp.arange(k.shape[1])[None, :] <= first_query + jnp.arange(q.shape[1])[:, None]
    w = jax.nn.softmax(jnp.where(visible, s, -1e30), axis=-1)
    return jnp.einsum("bhqk,bkhd->bqhd", w, v)

  def heads_first(q, k, v):
    q, k, v = (jnp.swapaxes(a, 1, 2) for a in (q, k, v))
    s = jnp.einsum("bhqd,bhkd->bhqk", q, k) * scale
    w = jax.nn.softmax(jnp.where(jnp.tril(jnp.ones((LENGTH, LENGTH), bool)), s, -1e30), axis=-1)
    return jnp.swapaxes(jnp.einsum("bhqk,bhkd->bhqd", w, v), 1, 2)

  def blocks(n):
    size = LENGTH // n
    return lambda q, k, v: jnp.concatenate(
        [causal(q[:, i * size:(i + 1) * size], k[:, :(i + 1) * size], v[:, :(i + 1) * size], i * size)
         for i in range(n)], axis=1)

  reference = causal(q, k, v)
  parts = {}
  for name, fn in (("attention, einsum [b, l, h, d] (the project's)", causal),
                   ("attention, heads first [b, h, l, d]", heads_first),
                   ("attention, 2 query blocks skipping masked keys", blocks(2)),
                   ("attention, 4 query blocks", blocks(4))):
    np.testing.assert_allclose(fn(q, k, v), reference, atol=1e-4)  # same function, other schedule
    grad = jax.jit(jax.grad(lambda q, k, v, fn=fn: fn(q, k, v).sum(), argnums=(0, 1, 2)))
    parts[name] = lambda grad=grad: jax.block_until_ready(grad(q, k, v))

  x = jnp.asarray(rng.standard_normal((BATCH * LENGTH, D_MODEL)), jnp.float32)
  w1 = jnp.asarray(rng.standard_normal((D_MODEL, D_FF)), jnp.float32) * 0.05
  w2 = jnp.asarray(rng.standard_normal((D_FF, D_MODEL)), jnp.float32) * 0.05
  ffn = jax.jit(jax.grad(lambda x, w1, w2: (jax.nn.relu(x @ w1) @ w2).sum(), argnums=(0, 1, 2)))
  parts["feed-forward"] = lambda: jax.block_until_ready(ffn(x, w1, w2))

  params = {f"w{i}": jnp.zeros((D_MODEL, D_FF)) for i in range(12)}
  optimizer = optax.adamw(1e-4, weight_decay=0.01)
  state = optimizer.init(params)
  update = jax.jit(lambda p, s, g: optax.apply_updates(p, optimizer.update(g, s, p)[0]))
  parts["AdamW update, 3.1M parameters"] = lambda: jax.block_until_ready(update(params, state, params))
  return parts


def torch_parts() -> dict:
  import torch  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top

  rng = np.random.default_rng(0)
  q, k, v = (torch.tensor(rng.standard_normal((BATCH, HEADS, LENGTH, HEAD_DIM)), dtype=torch.float32,
                          requires_grad=True) for _ in range(3))
  visible = torch.tril(torch.ones(LENGTH, LENGTH, dtype=torch.bool))

  def sdpa():
    F.scaled_dot_product_attention(q, k, v, is_causal=True).sum().backward()

  def plain():
    s = (q @ k.transpose(-1, -2)) / np.sqrt(HEAD_DIM)
    (s.masked_fill(~visible, -1e30).softmax(-1) @ v).sum().backward()

  x = torch.tensor(rng.standard_normal((BATCH * LENGTH, D_MODEL)), dtype=torch.float32, requires_grad=True)
  w1 = torch.zeros(D_MODEL, D_FF, requires_grad=True)
  w2 = torch.zeros(D_FF, D_MODEL, requires_grad=True)
  params = [torch.zeros(D_MODEL, D_FF, requires_grad=True) for _ in range(12)]
  for p in params:
    p.grad = torch.ones_like(p)
  optimizer = torch.optim.AdamW(params, 1e-4, weight_decay=0.01)
  return {"attention, F.scaled_dot_product_attention (PyTorch)": sdpa,
          "attention, matmul-softmax-matmul (PyTorch)": plain,
          "feed-forward (PyTorch)": lambda: (torch.relu(x @ w1) @ w2).sum().backward(),
          "AdamW update, 3.1M parameters (PyTorch)": optimizer.step}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--out", default="", help="write the report as JSON here")
  args = parser.parse_args(argv)
  harness.single_thread()
  parts = {**jax_parts(), **torch_parts()}
  rows = []
  for name, call in parts.items():
    timed = harness.time_steps(call, lambda r: None, steps=5, warmup=1)
    rows.append({"part": name, "cpu_ms": timed["step_cpu_s"] * 1e3})
    print(f"{name}: {rows[-1]['cpu_ms']:.1f} CPU ms", flush=True)
  harness.print_table(rows, [("part", "part (forward + backward)", "{}"), ("cpu_ms", "CPU ms", "{:.1f}")])
  harness.write_json(args.out, {"machine": harness.machine(), "rows": rows})
  return 0


if __name__ == "__main__":
  sys.exit(main())
