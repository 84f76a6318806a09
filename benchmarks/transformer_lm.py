"""Training throughput of the decoder-only Transformer LM: the project's model vs plain PyTorch.

  python -m benchmarks.transformer_lm --preset d256                 # issue-sized CPU check
  python -m benchmarks.transformer_lm --preset 300m --dtype bfloat16  # one GPU/TPU

Both sides train the same network (pre-norm blocks, biases in every projection, ReLU
feed-forward, tied embedding, sinusoidal positions) with AdamW on random tokens, one step
= forward + backward + update. Reported: tokens/s, model FLOPs per step (3 x the forward
matmuls, counted on the jaxpr: the same number divides both sides), MFU against the matmul
peak measured in this process and, in bf16 on a known chip, against the datasheet peak,
peak device memory, first-call (compile) time, and each PyTorch variant's tokens/s as a
ratio of the project's. PyTorch uses F.scaled_dot_product_attention, which may pick a fused
(flash) kernel; the project's model writes attention as einsums and a softmax ("einsum"), the
same in query blocks that skip the masked keys ("blocked"), or a fused kernel ("xla", "cudnn").

On the CPU, XLA's step allocates its large temporary buffers afresh every call and glibc hands
them back to the OS on free, so each step faults its memory in again (system CPU time);
GLIBC_TUNABLES=glibc.malloc.arena_max=1:glibc.malloc.mmap_max=0:glibc.malloc.trim_threshold=4000000000
in the environment keeps freed memory in the process for the next step (recorded in the JSON).
"""
from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import types

import numpy as np

from benchmarks import harness

# (layers, d_model, heads, d_ff, seq, batch, vocab)
PRESETS = {
    "tiny": (2, 64, 4, 256, 64, 4, 128),            # tests
    "d256": (4, 256, 4, 1024, 256, 16, 128),        # the performance issue's CPU rows
    "d512": (4, 512, 8, 2048, 256, 16, 128),
    "300m": (24, 1024, 16, 4096, 1024, 16, 32768),  # ~300M parameters (GPT-2 medium shape)
}


def lm_train_step(dims, dtype: str, attention: str = "einsum", scan_layers: bool = False,
                  remat: bool = False, seed: int = 0):
  """The LM's AdamW training step: a namespace of cfg, train_step (jitted), init (-> params),
  optimizer, abstract_params, abstract_opt_state (shapes only: compiling allocates nothing), tokens."""
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from papers.transformer.model import TransformerConfig, TransformerLM  # pylint: disable=g-import-not-at-top

  layers, d_model, heads, d_ff, seq, batch, vocab = dims
  cfg = TransformerConfig(vocab_size=vocab, d_model=d_model, num_heads=heads, d_ff=d_ff,
                          num_encoder_layers=0, num_decoder_layers=layers, dropout=0.0,
                          max_len=seq, share_embeddings=True, pre_norm=True,
                          dtype=jnp.dtype(dtype), attention=attention, scan_layers=scan_layers,
                          remat=remat)
  model = TransformerLM(cfg)
  tokens = jax.random.randint(jax.random.PRNGKey(seed), (batch, seq + 1), 0, vocab)
  optimizer = optax.adamw(1e-4, weight_decay=0.01)
  init = lambda: model.init(jax.random.PRNGKey(seed), tokens[:, :-1])["params"]
  abstract_params = jax.eval_shape(init)
  abstract_opt = jax.eval_shape(optimizer.init, abstract_params)

  def loss_fn(params, tokens):
    logits = model.apply({"params": params}, tokens[:, :-1]).astype(jnp.float32)
    return optax.softmax_cross_entropy_with_integer_labels(logits, tokens[:, 1:]).mean()

  train_step = harness.optax_train_step(loss_fn, optimizer)
  return types.SimpleNamespace(cfg=cfg, train_step=train_step, init=jax.jit(init), optimizer=optimizer,
                               abstract_params=abstract_params, abstract_opt_state=abstract_opt,
                               tokens=tokens)


def jax_side(dims, dtype: str, steps: int, warmup: int, attention: str, scan_layers: bool = False,
             seed: int = 0) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from core import hardware  # pylint: disable=g-import-not-at-top
  from papers.transformer.model import TransformerLM  # pylint: disable=g-import-not-at-top

  lm = lm_train_step(dims, dtype, attention, scan_layers=scan_layers, seed=seed)
  cfg, train_step, tokens = lm.cfg, lm.train_step, lm.tokens
  params = lm.init()
  opt_state = lm.optimizer.init(params)

  step = harness.stepper(train_step, params, opt_state, tokens)

  n_params = sum(int(np.prod(x.shape)) for x in jax.tree_util.tree_leaves(params))
  # Counted on the einsum form (same parameters): a fused attention kernel is one opaque call
  # in the jaxpr, and every row must divide by the same model FLOPs.
  einsum_model = TransformerLM(dataclasses.replace(cfg, attention="einsum"))
  flops = 3 * hardware.jaxpr_flops(
      lambda p, t: optax.softmax_cross_entropy_with_integer_labels(
          einsum_model.apply({"params": p}, t[:, :-1]).astype(jnp.float32), t[:, 1:]).mean(),
      params, tokens)
  result = harness.time_steps(step, lambda r: r.block_until_ready(), steps, warmup)
  layout = ", layers under nn.scan" if scan_layers else ""
  result.update(framework=f"jax (project), {attention} attention{layout}", params=n_params, flops_per_step=flops,
                peak_memory=harness.jax_peak_memory(), device=jax.devices()[0].device_kind)
  return result


def torch_model(dims, device: str):
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  layers, d_model, heads, d_ff, seq, _, vocab = dims

  class Block(nn.Module):

    def __init__(self):
      super().__init__()
      self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
      self.qkv, self.out = nn.Linear(d_model, 3 * d_model), nn.Linear(d_model, d_model)
      self.wi, self.wo = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)

    def forward(self, x):
      b, l, _ = x.shape
      q, k, v = self.qkv(self.norm1(x)).view(b, l, 3, heads, d_model // heads).permute(2, 0, 3, 1, 4)
      a = F.scaled_dot_product_attention(q, k, v, is_causal=True)
      x = x + self.out(a.transpose(1, 2).reshape(b, l, d_model))
      return x + self.wo(F.relu(self.wi(self.norm2(x))))

  class LM(nn.Module):

    def __init__(self):
      super().__init__()
      self.embed = nn.Embedding(vocab, d_model)
      position = np.arange(seq)[:, None] / 10000 ** (np.arange(0, d_model, 2) / d_model)
      table = np.zeros((seq, d_model), np.float32)
      table[:, 0::2], table[:, 1::2] = np.sin(position), np.cos(position)
      self.register_buffer("positions", torch.tensor(table))
      self.blocks = nn.ModuleList(Block() for _ in range(layers))
      self.norm = nn.LayerNorm(d_model)

    def forward(self, tokens):
      x = self.embed(tokens) * math.sqrt(d_model) + self.positions[:tokens.shape[1]]
      for block in self.blocks:
        x = block(x)
      return self.norm(x) @ self.embed.weight.T

  return LM().to(device)


def torch_side(dims, dtype: str, steps: int, warmup: int, device: str, compiled: bool) -> dict:
  import torch  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  _, _, _, _, seq, batch, vocab = dims
  model = torch_model(dims, device)
  optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=0.01)
  tokens = torch.randint(0, vocab, (batch, seq + 1), device=device)
  autocast = torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=dtype == "bfloat16")

  def loss_fn(tokens):
    with autocast:
      logits = model(tokens[:, :-1])
    return F.cross_entropy(logits.float().reshape(-1, vocab), tokens[:, 1:].reshape(-1))

  forward = torch.compile(loss_fn) if compiled else loss_fn

  step = harness.torch_stepper(lambda: forward(tokens), optimizer)

  if device.startswith("cuda"):
    torch.cuda.reset_peak_memory_stats()
  result = harness.time_steps(step, lambda r: harness.torch_sync(device), steps, warmup)
  result.update(framework="torch.compile" if compiled else "torch eager",
                params=sum(p.numel() for p in model.parameters()),
                peak_memory=torch.cuda.max_memory_allocated() if device.startswith("cuda") else None)
  return result


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--preset", default="d256", choices=sorted(PRESETS))
  harness.add_comparison_flags(parser, steps=10, warmup=2)
  parser.add_argument("--attention", default="einsum",
                      help="comma list of the project's attention implementations to time, in order: "
                           "einsum, blocked, xla, cudnn (NVIDIA GPUs); the first row is the baseline of the ratios")
  parser.add_argument("--scan_layers", action="store_true",
                      help="the project's layers under one nn.scan (model.scan_layers), no remat")
  parser.add_argument("--peak_n", type=int, default=0,
                      help="matmul size for the measured peak (default: 8192 on an accelerator, 2048 on CPU)")
  parser.add_argument("--batch", type=int, default=0, help="sequences per step (default: the preset's)")
  args = parser.parse_args(argv)
  variants = harness.checked_torch_variants(parser, args)
  from papers.transformer.model import ATTENTION_IMPLEMENTATIONS  # pylint: disable=g-import-not-at-top
  attentions = [a for a in args.attention.split(",") if a]
  if not attentions or any(a not in ATTENTION_IMPLEMENTATIONS for a in attentions):
    parser.error(f"--attention takes a comma list of {', '.join(ATTENTION_IMPLEMENTATIONS)}, got {args.attention!r}")

  if args.single_thread:
    harness.single_thread()
  import jax  # pylint: disable=g-import-not-at-top
  on_accelerator = jax.devices()[0].platform != "cpu"
  peak_n = args.peak_n or (8192 if on_accelerator else 2048)
  dims = PRESETS[args.preset]
  if args.batch:
    dims = dims[:5] + (args.batch,) + dims[6:]
  layers, d_model, heads, d_ff, seq, batch, vocab = dims
  print(f"preset {args.preset}: {layers} layers, d_model {d_model}, {heads} heads, d_ff {d_ff}, "
        f"seq {seq}, batch {batch}, vocab {vocab}, {args.dtype}; {harness.machine()}, "
        f"jax device {jax.devices()[0].device_kind}", flush=True)

  measured_peak = harness.jax_matmul_peak(args.dtype, peak_n)
  datasheet, device_kind = harness.datasheet_peak(args.dtype)
  # Peak memory is the device's peak since the process began: list the leanest variant first.
  rows = [jax_side(dims, args.dtype, args.steps, args.warmup, a, args.scan_layers) for a in attentions]
  flops = rows[0]["flops_per_step"]
  if variants:
    device = harness.torch_device(on_accelerator)
    if device is None:
      return 2
    for variant in variants:
      rows.append(torch_side(dims, args.dtype, args.steps, args.warmup, device, variant == "compile"))
  for row in rows:
    row["tokens_per_s"] = batch * seq / row["step_s"]
    row["step_ms"] = row["step_s"] * 1e3
    row["tokens_per_cpu_s"] = batch * seq / row["step_cpu_s"]
    row["cpu_ratio_to_project"] = row["tokens_per_cpu_s"] / (batch * seq / rows[0]["step_cpu_s"])
    row["tflops"] = flops / row["step_s"] / 1e12
    row["mfu_measured"] = flops / row["step_s"] / measured_peak
    row["mfu_datasheet"] = flops / row["step_s"] / datasheet if datasheet else None
    row["ratio_to_project"] = row["tokens_per_s"] / rows[0]["tokens_per_s"]
    row["peak_memory_gib"] = row["peak_memory"] / 2 ** 30 if row.get("peak_memory") else None
  print(f"matmul peak measured here: {measured_peak / 1e12:.2f} TFLOP/s ({args.dtype}, n={peak_n}); "
        f"datasheet: {datasheet / 1e12:.0f} TFLOP/s ({device_kind})" if datasheet else
        f"matmul peak measured here: {measured_peak / 1e12:.3f} TFLOP/s ({args.dtype}, n={peak_n}); "
        f"no datasheet peak for {device_kind} in {args.dtype}")
  print(f"model FLOPs per step: {flops:.3e} ({rows[0]['params']:,} parameters)")
  harness.print_table(rows, [
      ("framework", "framework", "{}"), ("tokens_per_s", "tokens/s", "{:,.0f}"),
      ("step_ms", "step (ms)", "{:.2f}"), ("tflops", "TFLOP/s", "{:.2f}"),
      ("mfu_measured", "MFU vs measured matmul", "{:.1%}"), ("mfu_datasheet", "MFU vs datasheet", "{:.1%}"),
      ("peak_memory_gib", "peak memory (GiB)", "{:.1f}"), ("first_call_s", "first step (s)", "{:.1f}"),
      ("ratio_to_project", "tokens/s vs first row", "{:.2f}x"),
      ("tokens_per_cpu_s", "tokens per CPU s", "{:,.0f}"),
      ("cpu_ratio_to_project", "tokens per CPU s vs first row", "{:.2f}x")])
  harness.write_json(args.out, {"preset": args.preset, "dims": dict(zip(
      ("layers", "d_model", "heads", "d_ff", "seq", "batch", "vocab"), dims)), "dtype": args.dtype,
      "measured_peak_flops": measured_peak, "datasheet_peak_flops": datasheet, "device": device_kind,
      "machine": harness.machine(), "xla_flags": os.environ.get("XLA_FLAGS", ""),
      "glibc_tunables": os.environ.get("GLIBC_TUNABLES", ""), "rows": rows,
      "ratio": (rows[0]["tokens_per_s"] / max(r["tokens_per_s"] for r in rows[len(attentions):])
                if len(rows) > len(attentions) else None)})
  return 0


if __name__ == "__main__":
  sys.exit(main())
