"""Where the Transformer LM's CPU training step goes: its parts, jax against PyTorch.

  python -m benchmarks.lm_cpu_profile [--preset d256] [--out benchmarks/results/cpu_lm_profile.json]

Each part runs forward + backward (a vector-Jacobian product with a fixed random cotangent,
gradients of its inputs and parameters) at the shapes of `benchmarks.transformer_lm --preset`,
one compute thread each side, in CPU milliseconds of the process per call (median of --steps
after one untimed call). The jax parts are the project's own modules and functions (model.py), each
jitted alone; the PyTorch parts are the blocks of `benchmarks.transformer_lm`'s PyTorch model.
The parts of a layer (2 layer norms, the q/k/v projections, attention, the output projection,
the feed-forward, 2 residual adds) add up to a layer, and embedding + layers + final norm, head
and loss + AdamW to the step; both sums are printed next to the measured layer and step, and
for the whole step its system (kernel) CPU time and page faults per call: XLA allocates its
temporary buffers afresh every call, and unless glibc keeps freed memory in the process
(GLIBC_TUNABLES, see benchmarks/README.md) each step faults them in again.
"""
from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import sys

import numpy as np

from benchmarks import harness
from benchmarks import transformer_lm

# The parts that add up to one layer, with their count per layer.
LAYER_PARTS = (("layer norm", 2), ("q, k, v projections", 1), ("causal attention", 1),
               ("output projection", 1), ("feed-forward", 1), ("residual add", 2))
STEP_PARTS = ("embedding + positions", "final norm + tied head + cross-entropy", "AdamW update")


def jax_parts(dims, attentions) -> dict:
  """name -> no-argument call of the jitted forward + backward."""
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from papers.transformer import model as m  # pylint: disable=g-import-not-at-top

  layers, d_model, heads, d_ff, seq, batch, vocab = dims
  lm = transformer_lm.lm_train_step(dims, "float32", attentions[0])
  cfg = lm.cfg
  rng = np.random.default_rng(0)
  normal = lambda shape: jnp.asarray(rng.standard_normal(shape), jnp.float32)
  x = normal((batch, seq, d_model))
  tokens = lm.tokens

  def vjp_call(fn, params, *inputs):
    """jit(params, inputs -> grads of <fn(params, *inputs), cotangent>), called on these values."""
    out = jax.eval_shape(fn, params, *inputs)
    cotangent = jax.tree.map(lambda s: normal(s.shape), out)
    differentiable = tuple(i for i, a in enumerate(inputs) if jnp.issubdtype(a.dtype, jnp.floating))

    def loss(params, *inputs):
      return sum(jnp.vdot(a, b) for a, b in zip(jax.tree.leaves(fn(params, *inputs)),
                                                  jax.tree.leaves(cotangent)))

    grad = jax.jit(jax.grad(loss, argnums=(0,) + tuple(1 + i for i in differentiable)))
    return lambda: jax.block_until_ready(grad(params, *inputs))

  def module_call(module, *inputs, **static):
    params = nn.meta.unbox(module.init(jax.random.PRNGKey(0), *inputs, **static))
    return vjp_call(lambda p, *a: module.apply(p, *a, **static), params, *inputs)

  class QKV(nn.Module):  # the three projections as MultiHeadAttention makes them

    @nn.compact
    def __call__(self, h):
      return tuple(m.HeadProjection(cfg, name=n)(h) for n in ("query", "key", "value"))

  class HeadAndLoss(nn.Module):  # TransformerLM after the layers, and the benchmark's loss

    @nn.compact
    def __call__(self, h, tokens):
      logits = m.vocab_logits(m.Embed(cfg, name="embed").attend(m._final_norm(cfg, "final_norm")(h)), cfg)  # pylint: disable=protected-access
      return optax.softmax_cross_entropy_with_integer_labels(logits, tokens).mean()

  q, k, v = (normal((batch, seq, heads, d_model // heads)) for _ in range(3))
  layer_norm = nn.LayerNorm(dtype=cfg.dtype)
  parts = {"embedding + positions": module_call(m.Embed(cfg), tokens[:, :-1]),
           "layer norm": module_call(layer_norm, x),
           "q, k, v projections": module_call(QKV(), x)}
  for attention in attentions:
    if attention == "blocked":
      fn = lambda _, q, k, v: m.blocked_causal_attention(q, k, v, None, cfg.query_block)
    elif attention == "einsum":
      fn = lambda _, q, k, v: m.einsum_attention(q, k, v, m.causal_mask(seq))
    else:
      fn = lambda _, q, k, v, a=attention: jax.nn.dot_product_attention(q, k, v, is_causal=True, implementation=a)
    parts[f"causal attention ({attention})"] = vjp_call(fn, {}, q, k, v)
  class FeedForward3D(nn.Module):  # the feed-forward as it was: nn.Dense on [batch, length, d]

    @nn.compact
    def __call__(self, h):
      return nn.Dense(d_model, name="wo")(nn.relu(nn.Dense(d_ff, name="wi")(h)))

  parts.update({
      "output projection": module_call(m.HeadProjection(cfg, inverse=True), q),
      "feed-forward": module_call(m.FeedForward(cfg), x, deterministic=True),
      "feed-forward, nn.Dense on 3-D activations (before)": module_call(FeedForward3D(), x),
      "residual add": vjp_call(lambda _, a, b: a + b, {}, x, x),
      "final norm + tied head + cross-entropy": module_call(HeadAndLoss(), x, tokens[:, 1:]),
  })
  for attention in attentions:
    parts[f"one layer ({attention})"] = module_call(m.LMLayer(dataclasses.replace(cfg, attention=attention)), x)

  params = lm.init()
  opt_state = lm.optimizer.init(params)
  update = jax.jit(lambda p, s, g: optax.apply_updates(p, lm.optimizer.update(g, s, p)[0]))
  parts["AdamW update"] = lambda: jax.block_until_ready(update(params, opt_state, params))
  for attention in attentions:
    step_fn = transformer_lm.lm_train_step(dims, "float32", attention).train_step
    parts[f"whole step ({attention})"] = (
        lambda step_fn=step_fn: jax.block_until_ready(step_fn(params, opt_state, tokens)))
  return parts


def torch_parts(dims) -> dict:
  import torch  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top

  layers, d_model, heads, d_ff, seq, batch, vocab = dims
  torch.manual_seed(0)
  model = transformer_lm.torch_model(dims, "cpu")
  block = model.blocks[0]
  head_dim = d_model // heads
  leaf = lambda *shape: torch.randn(*shape, requires_grad=True)
  x = leaf(batch, seq, d_model)
  q, k, v = (leaf(batch, heads, seq, head_dim) for _ in range(3))
  tokens = torch.randint(0, vocab, (batch, seq + 1))
  visible = torch.tril(torch.ones(seq, seq, dtype=torch.bool))
  leaves = [x, q, k, v] + list(model.parameters())

  def vjp(fn):
    """Backward of fn() with fixed random cotangents; .grad cleared first, as zero_grad does."""
    outs = fn()
    outs = outs if isinstance(outs, tuple) else (outs,)
    cotangents = [torch.randn_like(o) for o in outs]

    def call():
      for t in leaves:
        t.grad = None
      torch.autograd.backward(fn(), cotangents)
    return call

  def qkv():
    return tuple(block.qkv(x).view(batch, seq, 3, heads, head_dim).permute(2, 0, 3, 1, 4).unbind(0))

  def plain():
    s = (q @ k.transpose(-1, -2)) / np.sqrt(head_dim)
    return s.masked_fill(~visible, -1e30).softmax(-1) @ v

  def head_and_loss():
    logits = model.norm(x) @ model.embed.weight.T
    return F.cross_entropy(logits.reshape(-1, vocab), tokens[:, 1:].reshape(-1))

  def embedding():
    return model.embed(tokens[:, :-1]) * np.sqrt(d_model) + model.positions[:seq]

  optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
  for p in model.parameters():
    p.grad = torch.randn_like(p)
  step = harness.torch_stepper(lambda: F.cross_entropy(model(tokens[:, :-1]).reshape(-1, vocab),
                                                       tokens[:, 1:].reshape(-1)), optimizer)

  def adamw():  # the step leaves fresh gradients for the next update
    for p in model.parameters():
      if p.grad is None:
        p.grad = torch.randn_like(p)
    optimizer.step()

  return {
      "embedding + positions": vjp(embedding),
      "layer norm": vjp(lambda: block.norm1(x)),
      "q, k, v projections": vjp(qkv),
      "causal attention": vjp(
          lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True)),
      "causal attention (matmul-softmax-matmul)": vjp(plain),
      "output projection": vjp(lambda: block.out(q.transpose(1, 2).reshape(batch, seq, d_model))),
      "feed-forward": vjp(lambda: block.wo(F.relu(block.wi(x)))),
      "residual add": vjp(lambda: x + x.detach().clone().requires_grad_()),
      "final norm + tied head + cross-entropy": vjp(head_and_loss),
      "one layer": vjp(lambda: block(x)),
      "AdamW update": adamw,
      "whole step": step,
  }


def kernel_share(call, calls: int = 3) -> dict:
  """System (kernel) CPU ms and minor page faults per call: memory the allocator hands back to
  the OS after each step and takes again on the next is faulted in, page by page, every step."""
  before = resource.getrusage(resource.RUSAGE_SELF)
  for _ in range(calls):
    call()
  after = resource.getrusage(resource.RUSAGE_SELF)
  return {"system_ms": (after.ru_stime - before.ru_stime) / calls * 1e3,
          "page_faults": (after.ru_minflt - before.ru_minflt) / calls}


def add_up(times: dict, layers: int, attention: str) -> tuple[float, float]:
  """(sum of a layer's parts, sum of the step's parts) from part -> CPU ms."""
  layer = sum(count * times[f"{name} ({attention})" if f"{name} ({attention})" in times else name]
              for name, count in LAYER_PARTS)
  return layer, layers * layer + sum(times[name] for name in STEP_PARTS)


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--preset", default="d256", choices=("tiny", "d256", "d512"))
  parser.add_argument("--attention", default="einsum,blocked",
                      help="comma list of the project's attention implementations to profile")
  parser.add_argument("--steps", type=int, default=5, help="timed calls per part")
  parser.add_argument("--only", default="", help="comma list of substrings: time only parts whose name has one")
  parser.add_argument("--no_torch", action="store_true")
  parser.add_argument("--out", default="", help="write the report as JSON here")
  args = parser.parse_args(argv)
  harness.single_thread()
  dims = transformer_lm.PRESETS[args.preset]
  attentions = [a for a in args.attention.split(",") if a]
  sides = [("jax", jax_parts(dims, attentions))]
  if not args.no_torch:
    sides.append(("torch", torch_parts(dims)))
  times = {side: {} for side, _ in sides}
  system = {side: {} for side, _ in sides}
  for side, parts in sides:
    for name, call in parts.items():
      if args.only and not any(s in name for s in args.only.split(",")):
        continue
      times[side][name] = harness.time_steps(call, lambda r: None, steps=args.steps, warmup=1)["step_cpu_s"] * 1e3
      if name.startswith("whole step"):
        system[side][name] = kernel_share(call)
      print(f"{side}: {name}: {times[side][name]:.1f} CPU ms", system[side].get(name, ""), flush=True)

  # A jax row "part (implementation)" sits next to PyTorch's "part".
  torch_times = times.get("torch", {})
  torch_system = system.get("torch", {}).get("whole step", {})
  rows = [{"part": name, "jax_ms": ms, "torch_ms": torch_times.get(name, torch_times.get(name.split(" (")[0])),
           "jax_system_ms": system["jax"].get(name, {}).get("system_ms"),
           "jax_page_faults": system["jax"].get(name, {}).get("page_faults"),
           "torch_system_ms": torch_system.get("system_ms") if name in system["jax"] else None,
           "torch_page_faults": torch_system.get("page_faults") if name in system["jax"] else None}
          for name, ms in times["jax"].items()]
  rows += [{"part": f"{name} (PyTorch)", "torch_ms": ms} for name, ms in torch_times.items()
           if name.startswith("causal attention (")]
  sums = {}
  if not args.only:
    for attention in attentions:
      sums[f"jax ({attention})"] = add_up(times["jax"], dims[0], attention)
    if "torch" in times:
      sums["torch"] = add_up(times["torch"], dims[0], "")
  harness.print_table(rows, [("part", "part (forward + backward)", "{}"), ("jax_ms", "jax CPU ms", "{:.1f}"),
                             ("torch_ms", "PyTorch CPU ms", "{:.1f}"),
                             ("jax_system_ms", "of which kernel (jax)", "{:.0f}"),
                             ("jax_page_faults", "page faults (jax)", "{:,.0f}"),
                             ("torch_system_ms", "of which kernel (PyTorch)", "{:.0f}"),
                             ("torch_page_faults", "page faults (PyTorch)", "{:,.0f}")])
  for side, (layer, step) in sums.items():
    print(f"{side}: the parts of a layer add up to {layer:.1f} CPU ms, of the step to {step:.1f}")
  harness.write_json(args.out, {"preset": args.preset, "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""),
                                "dims": dict(zip(
      ("layers", "d_model", "heads", "d_ff", "seq", "batch", "vocab"), dims)), "machine": harness.machine(),
      "rows": rows, "sums_ms": {k: {"layer": v[0], "step": v[1]} for k, v in sums.items()}})
  return 0


if __name__ == "__main__":
  sys.exit(main())
