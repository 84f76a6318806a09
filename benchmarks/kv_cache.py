"""Incremental decoding with the key-value cache against re-running the decoder on the prefix.

  python -m benchmarks.kv_cache                                   # lengths 32, 64, 128
  python -m benchmarks.kv_cache --lengths 128 --decoders greedy --out benchmarks/results/kv.json

The encoder-decoder Transformer of `configs/transformer.py:translate` (3 + 3 layers, d_model
128, 4,000-piece vocabularies; random weights) translates a batch of random sources with greedy
decoding and with beam search (beam 4), each decoder jitted twice in the same process:
`use_cache=True` feeds one token a step and reads earlier keys and values from the "cache"
collection; `use_cache=False` runs the decoder over the whole prefix every step. No row ever
emits EOS (eos=-1), so every call decodes exactly `length` positions. Reported: median seconds
per call over the timed calls (after one untimed call that compiles), wall clock and CPU time
of the process (all threads: the work done, on a machine shared with other jobs), and ratios.
"""
from __future__ import annotations

import argparse
import sys

from benchmarks import harness

DECODERS = ("greedy", "beam")


def decode_fns(length: int, batch: int, src_len: int, dims: dict):
  """{(decoder, cached): jitted fn()} for one output length, on one random model and batch."""
  import flax.linen as nn  # pylint: disable=g-import-not-at-top
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  from papers.transformer import model as model_lib  # pylint: disable=g-import-not-at-top

  cfg = model_lib.TransformerConfig(dropout=0.0, max_len=max(length + 1, src_len),
                                    share_embeddings=False, tie_output=True, **dims)
  model = model_lib.Transformer(cfg)
  src = jax.random.randint(jax.random.key(1), (batch, src_len), 3, cfg.vocab_size, jnp.int32)
  params = nn.meta.unbox(jax.jit(model.init)(jax.random.key(0), src, src))["params"]
  fns = {}
  for cached in (True, False):
    greedy = jax.jit(lambda p, s, c=cached: model_lib.greedy_decode(
        model, p, s, length, bos=1, eos=-1, use_cache=c))
    beam = jax.jit(lambda p, s, c=cached: model_lib.beam_search(
        model, p, s, length, bos=1, eos=-1, beam_size=4, alpha=0.6, use_cache=c)[0])
    fns[("greedy", cached)] = lambda f=greedy: f(params, src)
    fns[("beam", cached)] = lambda f=beam: f(params, src)
  return fns


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--lengths", default="32,64,128", help="output lengths (decoded positions)")
  parser.add_argument("--decoders", default="greedy,beam", help=f"comma list of {', '.join(DECODERS)}")
  parser.add_argument("--batch", type=int, default=4, help="source sentences (beam search: x4 rows)")
  parser.add_argument("--src_len", type=int, default=32)
  parser.add_argument("--steps", type=int, default=2, help="timed calls per cell")
  parser.add_argument("--out", default="")
  args = parser.parse_args(argv)
  try:
    lengths = [int(n) for n in args.lengths.split(",")]
  except ValueError:
    parser.error(f"--lengths takes a comma list of integers, got {args.lengths!r}")
  if not lengths or min(lengths) < 1:
    parser.error(f"--lengths must be positive, got {args.lengths!r}")
  decoders = [d for d in args.decoders.split(",") if d]
  if not decoders or any(d not in DECODERS for d in decoders):
    parser.error(f"--decoders takes a comma list of {', '.join(DECODERS)}, got {args.decoders!r}")
  if args.batch < 1 or args.src_len < 1 or args.steps < 1:
    parser.error("--batch, --src_len and --steps must be positive")

  import jax  # pylint: disable=g-import-not-at-top
  dims = dict(vocab_size=4000, d_model=128, num_heads=4, d_ff=512, num_encoder_layers=3,
              num_decoder_layers=3)
  sync = lambda x: jax.block_until_ready(x)
  rows = []
  for length in lengths:
    fns = decode_fns(length, args.batch, args.src_len, dims)
    for decoder in decoders:
      timings = {cached: harness.time_steps(fns[(decoder, cached)], sync, steps=args.steps, warmup=1)
                 for cached in (True, False)}
      row = {"decoder": decoder, "length": length, "cached_s": timings[True]["step_s"],
             "recompute_s": timings[False]["step_s"], "cached_cpu_s": timings[True]["step_cpu_s"],
             "recompute_cpu_s": timings[False]["step_cpu_s"],
             "cached_first_call_s": timings[True]["first_call_s"],
             "recompute_first_call_s": timings[False]["first_call_s"]}
      row["speedup"] = row["recompute_s"] / row["cached_s"]
      # CPU seconds measure the work done whatever share of a busy machine each call got.
      row["cpu_speedup"] = row["recompute_cpu_s"] / row["cached_cpu_s"]
      rows.append(row)
      print(f"{decoder} length {length}: cached {row['cached_s']:.3f} s, recomputed "
            f"{row['recompute_s']:.3f} s, x{row['speedup']:.1f} (CPU time x{row['cpu_speedup']:.1f})",
            flush=True)
  print(f"decoding {args.batch} sources of {args.src_len} tokens (beam 4: {4 * args.batch} rows), "
        f"{harness.machine()}, jax {jax.__version__} on {jax.devices()[0].device_kind}")
  harness.print_table(rows, [("decoder", "decoder", "{}"), ("length", "output length", "{}"),
                             ("cached_s", "with cache (s)", "{:.3f}"),
                             ("recompute_s", "recomputing the prefix (s)", "{:.3f}"),
                             ("speedup", "speed-up", "x{:.1f}"),
                             ("cached_cpu_s", "with cache (CPU s)", "{:.3f}"),
                             ("recompute_cpu_s", "recomputing (CPU s)", "{:.3f}"),
                             ("cpu_speedup", "speed-up in CPU time", "x{:.1f}")])
  harness.write_json(args.out, {"model": dims, "batch": args.batch, "src_len": args.src_len,
                                "machine": harness.machine(), "jax": jax.__version__,
                                "device": jax.devices()[0].device_kind, "rows": rows})
  return 0


if __name__ == "__main__":
  sys.exit(main())
