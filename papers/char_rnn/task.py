"""char-rnn as a Task: a byte-level LSTM LM trained with truncated BPTT over carried state.

Training: `train_batch(step)` gives the next `data.unroll` bytes of each of `batch_size`
contiguous streams of the training text (papers.char_rnn.data.tbptt_batch); the model starts
each batch from the state the previous batch ended in, kept in the model-state collection
"carry" ([batch, hidden] per layer), which the trainer checkpoints and restores with the
parameters. Gradients stop at the batch boundary (truncated BPTT).

Evaluation never reads that training state: `data.eval_windows` windows spread evenly over the
validation text each start from zeros, read `data.eval_warmup` bytes unscored, then score the
next `data.eval_len` predictions; the metric is bits per byte (`bits_per_char`: the corpora are
ASCII but for a handful of bytes).
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from core.task import ConfigError, Task, spec
from core.validate import check_choice
from papers.char_rnn import data
from papers.char_rnn.model import CARRY, CharRNN, TruncatedBPTT
from papers.char_rnn.sample import Sampler
from papers.lstm.rnn import CELLS


def nll(logits, targets):
  """Per-position negative log-likelihood in nats."""
  log_probs = jax.nn.log_softmax(logits.astype(jnp.float32))
  return -jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]


class CharRNNTask(Task):
  model_state = (CARRY,)

  def __init__(self, config):
    super().__init__(config)
    m, d = config.model, config.data
    if int(config.optimizer.grad_accum_steps) != 1:
      raise ConfigError("char-rnn carries each batch row's state into the next step; gradient "
                        "accumulation would split the rows: set optimizer.grad_accum_steps=1 and "
                        "change batch_size instead")
    check_choice(config, "model.cell", tuple(CELLS))
    for name in ("hidden_size", "num_layers", "embed_dim", "scan_unroll"):
      if m[name] < 1:
        raise ConfigError(f"model.{name} must be >= 1, got {m[name]}")
    if not 0.0 <= m.dropout < 1.0:
      raise ConfigError(f"model.dropout must be in [0, 1), got {m.dropout}")
    if d.unroll < 1 or d.eval_len < 1 or d.eval_warmup < 0:
      raise ConfigError(f"data.unroll and data.eval_len must be >= 1 and data.eval_warmup >= 0, got "
                        f"{d.unroll}, {d.eval_len}, {d.eval_warmup}")
    if not 0.0 < d.val_fraction < 1.0:
      raise ConfigError(f"data.val_fraction must be in (0, 1), got {d.val_fraction}")
    if d.eval_windows < 1 or d.eval_windows % d.eval_batch_size:
      raise ConfigError(f"data.eval_windows ({d.eval_windows}) must be a positive multiple of "
                        f"data.eval_batch_size ({d.eval_batch_size})")
    self.lm = CharRNN(vocab_size=data.VOCAB_SIZE, hidden_size=m.hidden_size, num_layers=m.num_layers,
                      cell=m.cell, embed_dim=m.embed_dim, dropout=m.dropout, unroll=m.scan_unroll,
                      dtype=self.dtype)
    self.model = TruncatedBPTT(self.lm)
    self.sampler = Sampler(self.lm)

  # ---- data -----------------------------------------------------------------------------------
  @functools.cached_property
  def splits(self) -> tuple[np.ndarray, np.ndarray]:
    """(train bytes, validation bytes)."""
    return data.split(data.load_corpus(self.config.data), self.config.data.val_fraction)

  def check_data(self):
    train, _ = self.splits  # reads (and caches) the corpus before the input threads start
    if data.windows_per_pass(len(train), self.config.batch_size, self.config.data.unroll) < 1:
      raise ConfigError(f"the training text ({len(train):,} bytes) is too short for batch_size "
                        f"{self.config.batch_size} streams of data.unroll {self.config.data.unroll}")
    self.eval_set  # pylint: disable=pointless-statement  # validation long enough

  def batch_spec(self):
    b, t = self.config.batch_size, self.config.data.unroll
    return {"inputs": spec((b, t), np.int32), "targets": spec((b, t), np.int32),
            "reset": spec((b,), np.bool_)}

  def train_batch(self, step):
    return data.tbptt_batch(self.splits[0], self.config.batch_size, self.config.data.unroll,
                            self.config.seed, step)

  @functools.cached_property
  def eval_set(self):
    d = self.config.data
    return data.eval_windows(self.splits[1], d.eval_windows, d.eval_len, d.eval_warmup)

  def eval_batches(self):
    size = self.config.data.eval_batch_size
    return [{k: v[i:i + size] for k, v in self.eval_set.items()}
            for i in range(0, self.config.data.eval_windows, size)]

  # ---- model ----------------------------------------------------------------------------------
  def init(self, rng):
    b, t = self.config.batch_size, self.config.data.unroll
    return self.model.init(rng, jnp.zeros((b, t), jnp.int32), jnp.ones((b,), bool))

  def loss(self, variables, batch, rng, *, train):
    # Training continues the carried state; evaluation (train=False) starts from zeros.
    reset = batch["reset"] if train else None
    logits, updates = self.apply(variables, batch["inputs"], reset, train=train, rng=rng)
    loss = nll(logits, batch["targets"]).mean()
    return loss, {"bits_per_char": loss / math.log(2)}, updates

  def eval_metrics(self, variables, batch):
    logits, _ = self.apply(variables, batch["inputs"], train=False)
    w = batch["weights"]
    total = jnp.sum(nll(logits, batch["targets"]) * w)
    return {"loss": (total, w.sum()), "bits_per_char": (total / math.log(2), w.sum())}

  def evaluate(self, variables, step):
    d = self.config.data
    if not d.sample_length:
      return {}
    return {"sample": self.sampler.generate(variables["params"]["lm"], d.sample_prime,
                                            d.sample_length, d.sample_temperature)}
