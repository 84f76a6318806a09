"""LSTM and its variants (Olah 2015, "Understanding LSTM Networks") on long-lag problems.

Variants (after ':'): <task>_<cell>, task in {adding, copy}, cell in {rnn, lstm, peephole,
cifg, gru}; e.g. adding_lstm (the default), adding_rnn, copy_gru. The lag is an override:
--config.data.lag=T (adding: the sequence length T; copy: T blanks between the 10 symbols
and the delimiter). One layer of 128 units, Adam 1e-3, global-norm clipping at 1.

Commands (measured 2026-11-26 on the 2-core CPU shared with other jobs, load average 7-25;
papers/lstm/README.md has every run):
  python -m launch.train --config configs/lstm.py:adding_lstm --workdir runs/lstm/adding_lstm_T100 --config.data.lag=100
  python -m launch.train --config configs/lstm.py:copy_gru --workdir runs/lstm/copy_gru_T50 --config.data.lag=50

Expected result (held-out, after the default 2,000 steps x 64): adding problem at T=100, MSE
LSTM 0.0024 (22 min), peephole 0.0006, CIFG 0.0002, GRU 0.0007; the tanh RNN 0.165 (4 min), on
the 0.167 baseline of always answering 1. Copy memory at T=50: cross entropy per step GRU 0.222
(38% of the recalled symbols right; 12 min), LSTM 0.290 (17%), the memoryless baseline 0.297.
"""
from configs.common import base_config

VARIANTS = ("adding_lstm", "adding_rnn", "adding_peephole", "adding_cifg", "adding_gru",
            "copy_lstm", "copy_rnn", "copy_peephole", "copy_cifg", "copy_gru")


def get_config(arg=None):
  variant = arg or "adding_lstm"
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
  task, cell = variant.split("_")
  c = base_config()
  c.task = "papers.lstm.task:AddingTask" if task == "adding" else "papers.lstm.task:CopyTask"
  c.seed = 0
  c.total_steps = 2000
  c.batch_size = 64
  c.log_every = 50
  c.eval_every = 200
  c.checkpoint_every = 500

  c.data.lag = 100
  c.data.num_symbols = 8        # copy memory: symbols drawn from 8
  c.data.test_examples = 1024   # from core.task.heldout_rng(seed)
  c.data.eval_batch_size = 512

  c.model.cell = cell
  c.model.hidden_size = 128
  c.model.num_layers = 1
  c.model.init_scale = 0.0      # > 0: every parameter U(-s, s); 0: the cells' default init
  c.model.forget_bias = 1.0     # initial forget-gate bias of lstm, peephole, cifg
  c.model.unroll = 1

  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 1e-3
  c.optimizer.clip_norm = 1.0
  return c
