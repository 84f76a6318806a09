"""Training throughput of the encoder-decoder Transformer: the project's model vs plain PyTorch.

  python -m benchmarks.seq2seq --preset copy --single_thread      # configs/transformer.py (copy)
  python -m benchmarks.seq2seq --preset translate --single_thread # configs/transformer.py:translate
  python -m benchmarks.seq2seq --preset base --dtype bfloat16     # the paper's base model, one GPU

Both sides train the same network (pre-norm encoder and decoder layers, biases in every
projection, ReLU feed-forward, final layer norms, one embedding shared by source, target and
output, sinusoidal positions) with Adam on random source and target tokens, teacher forcing,
one step = forward + backward + update. The project's side is `papers.transformer.model.
Transformer`, with its masks (source padding, causal and padding in the decoder); the tokens
hold no padding, so PyTorch's side needs only the causal mask. Its embedding is not padded
(`vocab_multiple=1`) so that both sides compute the same logits. Reported: target tokens/s,
model FLOPs per step (3 x the forward matmuls, counted on the project's jaxpr), MFU against the
matmul peak measured in this process, first-call (compile) time, and PyTorch's tokens/s and
tokens per CPU second as ratios of the project's (`--single_thread` on a shared CPU).
"""
from __future__ import annotations

import argparse
import math
import os
import sys

import numpy as np

from benchmarks import harness

# (encoder layers, decoder layers, d_model, heads, d_ff, source length, target length, batch, vocab)
PRESETS = {
    "tiny": (1, 1, 32, 2, 64, 8, 9, 4, 16),                 # tests
    "copy": (2, 2, 128, 4, 256, 10, 11, 64, 11),            # configs/transformer.py (copy task)
    "translate": (3, 3, 128, 4, 512, 48, 48, 32, 4000),     # configs/transformer.py:translate
    "base": (6, 6, 512, 8, 2048, 64, 64, 64, 8000),         # Vaswani et al. 2017 base, one GPU
}
FIELDS = ("encoder_layers", "decoder_layers", "d_model", "heads", "d_ff", "source_length",
          "target_length", "batch", "vocab")


def batch_tokens(dims, seed: int = 0):
  """Random (source, target input, target output) tokens in [1, vocab): no padding (0)."""
  *_, src_len, tgt_len, batch, vocab = dims
  rng = np.random.default_rng(seed)
  src = rng.integers(1, vocab, (batch, src_len), dtype=np.int32)
  tgt = rng.integers(1, vocab, (batch, tgt_len + 1), dtype=np.int32)
  return src, tgt[:, :-1], tgt[:, 1:]


def jax_side(dims, dtype: str, steps: int, warmup: int) -> dict:
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import optax  # pylint: disable=g-import-not-at-top
  from core import hardware  # pylint: disable=g-import-not-at-top
  from papers.transformer.model import Transformer, TransformerConfig  # pylint: disable=g-import-not-at-top

  enc, dec, d_model, heads, d_ff, src_len, tgt_len, _, vocab = dims
  cfg = TransformerConfig(vocab_size=vocab, d_model=d_model, num_heads=heads, d_ff=d_ff,
                          num_encoder_layers=enc, num_decoder_layers=dec, dropout=0.0,
                          max_len=max(src_len, tgt_len), share_embeddings=True, pre_norm=True,
                          vocab_multiple=1, dtype=jnp.dtype(dtype))
  model = Transformer(cfg)
  src, tgt_in, tgt_out = (jnp.asarray(x) for x in batch_tokens(dims))
  params = jax.jit(lambda: model.init(jax.random.PRNGKey(0), src, tgt_in)["params"])()
  optimizer = optax.adam(1e-4, b1=0.9, b2=0.999, eps=1e-9)

  def loss_fn(params, src, tgt_in, tgt_out):
    logits = model.apply({"params": params}, src, tgt_in)
    return optax.softmax_cross_entropy_with_integer_labels(logits, tgt_out).mean()

  train_step = harness.optax_train_step(loss_fn, optimizer)
  step = harness.stepper(train_step, params, optimizer.init(params), src, tgt_in, tgt_out)
  flops = 3 * hardware.jaxpr_flops(loss_fn, params, src, tgt_in, tgt_out)
  result = harness.time_steps(step, lambda r: r.block_until_ready(), steps, warmup)
  result.update(framework="jax (project)", flops_per_step=flops,
                params=sum(int(np.prod(x.shape)) for x in jax.tree.leaves(params)))
  return result


def torch_model(dims, device: str):
  import torch  # pylint: disable=g-import-not-at-top
  from torch import nn  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  enc, dec, d_model, heads, d_ff, src_len, tgt_len, _, vocab = dims

  class Attention(nn.Module):

    def __init__(self):
      super().__init__()
      self.q, self.k, self.v, self.out = (nn.Linear(d_model, d_model) for _ in range(4))

    def forward(self, x, memory, causal: bool):
      b, lq, _ = x.shape
      split = lambda h: h.view(b, h.shape[1], heads, d_model // heads).transpose(1, 2)
      a = F.scaled_dot_product_attention(split(self.q(x)), split(self.k(memory)),
                                         split(self.v(memory)), is_causal=causal)
      return self.out(a.transpose(1, 2).reshape(b, lq, d_model))

  class FeedForward(nn.Module):

    def __init__(self):
      super().__init__()
      self.wi, self.wo = nn.Linear(d_model, d_ff), nn.Linear(d_ff, d_model)

    def forward(self, x):
      return self.wo(F.relu(self.wi(x)))

  class EncoderLayer(nn.Module):

    def __init__(self):
      super().__init__()
      self.norm1, self.norm2 = nn.LayerNorm(d_model), nn.LayerNorm(d_model)
      self.attention, self.ffn = Attention(), FeedForward()

    def forward(self, x):
      h = self.norm1(x)
      x = x + self.attention(h, h, causal=False)
      return x + self.ffn(self.norm2(x))

  class DecoderLayer(nn.Module):

    def __init__(self):
      super().__init__()
      self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(3))
      self.self_attention, self.cross_attention, self.ffn = Attention(), Attention(), FeedForward()

    def forward(self, x, memory):
      h = self.norms[0](x)
      x = x + self.self_attention(h, h, causal=True)
      x = x + self.cross_attention(self.norms[1](x), memory, causal=False)
      return x + self.ffn(self.norms[2](x))

  class Seq2Seq(nn.Module):

    def __init__(self):
      super().__init__()
      self.embed = nn.Embedding(vocab, d_model)
      length = max(src_len, tgt_len)
      position = np.arange(length)[:, None] / 10000 ** (np.arange(0, d_model, 2) / d_model)
      table = np.zeros((length, d_model), np.float32)
      table[:, 0::2], table[:, 1::2] = np.sin(position), np.cos(position)
      self.register_buffer("positions", torch.tensor(table))
      self.encoder = nn.ModuleList(EncoderLayer() for _ in range(enc))
      self.decoder = nn.ModuleList(DecoderLayer() for _ in range(dec))
      self.encoder_norm, self.decoder_norm = nn.LayerNorm(d_model), nn.LayerNorm(d_model)

    def embed_tokens(self, tokens):
      return self.embed(tokens) * math.sqrt(d_model) + self.positions[:tokens.shape[1]]

    def forward(self, src, tgt_in):
      memory = self.embed_tokens(src)
      for layer in self.encoder:
        memory = layer(memory)
      memory = self.encoder_norm(memory)
      x = self.embed_tokens(tgt_in)
      for layer in self.decoder:
        x = layer(x, memory)
      return self.decoder_norm(x) @ self.embed.weight.T

  return Seq2Seq().to(device)


def torch_side(dims, dtype: str, steps: int, warmup: int, device: str, compiled: bool) -> dict:
  import torch  # pylint: disable=g-import-not-at-top
  import torch.nn.functional as F  # pylint: disable=g-import-not-at-top
  torch.manual_seed(0)
  vocab = dims[-1]
  model = torch_model(dims, device)
  optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, betas=(0.9, 0.999), eps=1e-9)
  src, tgt_in, tgt_out = (torch.tensor(x, dtype=torch.long, device=device) for x in batch_tokens(dims))
  autocast = torch.autocast(device.split(":")[0], dtype=torch.bfloat16, enabled=dtype == "bfloat16")

  def loss_fn():
    with autocast:
      logits = model(src, tgt_in)
    return F.cross_entropy(logits.float().reshape(-1, vocab), tgt_out.reshape(-1))

  step = harness.torch_stepper(torch.compile(loss_fn) if compiled else loss_fn, optimizer)
  result = harness.time_steps(step, lambda r: harness.torch_sync(device), steps, warmup)
  result.update(framework="torch.compile" if compiled else "torch eager",
                params=sum(p.numel() for p in model.parameters()))
  return result


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--preset", default="copy", choices=sorted(PRESETS))
  harness.add_comparison_flags(parser, steps=20, warmup=3)
  args = parser.parse_args(argv)
  variants = harness.checked_torch_variants(parser, args)
  if args.single_thread:
    harness.single_thread()
  import jax  # pylint: disable=g-import-not-at-top
  on_accelerator = jax.devices()[0].platform != "cpu"
  dims = PRESETS[args.preset]
  target_tokens = dims[6] * dims[7]
  print(f"preset {args.preset}: " + ", ".join(f"{k} {v}" for k, v in zip(FIELDS, dims)) +
        f", {args.dtype}; {harness.machine()}, jax device {jax.devices()[0].device_kind}", flush=True)
  peak = harness.jax_matmul_peak(args.dtype, 8192 if on_accelerator else 1024)
  rows = [jax_side(dims, args.dtype, args.steps, args.warmup)]
  flops = rows[0]["flops_per_step"]
  if variants:
    device = harness.torch_device(on_accelerator)
    if device is None:
      return 2
    rows += [torch_side(dims, args.dtype, args.steps, args.warmup, device, v == "compile") for v in variants]
  for row in rows:
    row["tokens_per_s"] = target_tokens / row["step_s"]
    row["step_ms"] = row["step_s"] * 1e3
    row["tokens_per_cpu_s"] = target_tokens / row["step_cpu_s"]
    row["mfu_measured"] = flops / row["step_s"] / peak
    row["project_vs_this"] = rows[0]["tokens_per_s"] / row["tokens_per_s"]
    row["project_vs_this_cpu"] = rows[0]["tokens_per_cpu_s"] / row["tokens_per_cpu_s"]
  print(f"matmul peak measured here: {peak / 1e9:,.1f} GFLOP/s ({args.dtype}); model FLOPs per step "
        f"{flops:.3e} ({rows[0]['params']:,} parameters); {target_tokens:,} target tokens per step")
  harness.print_table(rows, [
      ("framework", "framework", "{}"), ("tokens_per_s", "target tokens/s", "{:,.0f}"),
      ("step_ms", "step (ms)", "{:.2f}"), ("mfu_measured", "MFU vs measured matmul", "{:.1%}"),
      ("first_call_s", "first step (s)", "{:.1f}"), ("tokens_per_cpu_s", "tokens per CPU s", "{:,.0f}"),
      ("project_vs_this", "project / this row (wall)", "{:.2f}x"),
      ("project_vs_this_cpu", "project / this row (per CPU s)", "{:.2f}x")])
  harness.write_json(args.out, {"preset": args.preset, "dims": dict(zip(FIELDS, dims)), "dtype": args.dtype,
                                "measured_peak_flops": peak, "machine": harness.machine(),
                                "xla_flags": os.environ.get("XLA_FLAGS", ""), "rows": rows})
  return 0


if __name__ == "__main__":
  sys.exit(main())
