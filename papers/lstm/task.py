"""Long-lag tasks: the adding problem and copy memory, generated per step (nothing to install).

Adding problem (Hochreiter & Schmidhuber 1997, experiment 4; in the form of Le et al. 2015):
T = `data.lag` steps of two inputs, a value from U(0, 1) and a marker that is 1 at exactly
two steps, one in each half of the sequence; the target is the sum of the two marked
values. Always answering 1 (the mean) costs the variance of that sum, 2/12 ~ 0.167 MSE.

Copy memory (Arjovsky, Shah & Bengio 2016): 10 symbols drawn from 8, then T - 1 blanks,
a delimiter, and 10 more blanks (T + 20 steps in all); the target is blank for T + 10
steps, then the 10 symbols. A memoryless model that outputs blanks and then guesses
uniformly scores the cross entropy 10 ln 8 / (T + 20) per step.

Both draw fresh sequences every step (`train_batch(step)`, a pure function of (seed, step));
the test set is a fixed sample of the held-out stream (core.task.heldout_rng).
"""
from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np
import optax

from core.task import ConfigError, Task, heldout_rng, ratio, spec, step_rng
from core.validate import check_choice
from papers.lstm.model import SequenceModel
from papers.lstm.rnn import CELLS

COPY_LENGTH = 10   # symbols to remember (Arjovsky et al.)
BLANK = 0          # copy-memory alphabet: 0 blank, 1..num_symbols data, num_symbols + 1 delimiter


def adding_batch(rng: np.random.Generator, batch_size: int, length: int):
  """(inputs [B, T, 2] float32: value, marker; targets [B] float32: the sum of the marked values)."""
  values = rng.uniform(0.0, 1.0, (batch_size, length))
  half = length // 2
  first = rng.integers(0, half, batch_size)
  second = rng.integers(half, length, batch_size)
  markers = np.zeros((batch_size, length))
  rows = np.arange(batch_size)
  markers[rows, first] = 1.0
  markers[rows, second] = 1.0
  targets = values[rows, first] + values[rows, second]
  return np.stack([values, markers], -1).astype(np.float32), targets.astype(np.float32)


def copy_batch(rng: np.random.Generator, batch_size: int, lag: int, num_symbols: int = 8):
  """(inputs [B, T + 20] int32 tokens, targets [B, T + 20] int32 tokens)."""
  length = lag + 2 * COPY_LENGTH
  symbols = rng.integers(1, num_symbols + 1, (batch_size, COPY_LENGTH))
  inputs = np.full((batch_size, length), BLANK, np.int32)
  inputs[:, :COPY_LENGTH] = symbols
  inputs[:, lag + COPY_LENGTH - 1] = num_symbols + 1  # the delimiter: "now reproduce them"
  targets = np.full((batch_size, length), BLANK, np.int32)
  targets[:, -COPY_LENGTH:] = symbols
  return inputs, targets


def copy_baseline(lag: int, num_symbols: int = 8) -> float:
  """The memoryless cross entropy per step: 10 ln(num_symbols) / (T + 20)."""
  return COPY_LENGTH * np.log(num_symbols) / (lag + 2 * COPY_LENGTH)


class _LongLagTask(Task):
  """Shared: the model from config.model, config checks, the fixed held-out test set."""
  num_outputs: int
  readout: str

  def __init__(self, config):
    super().__init__(config)
    d, m = config.data, config.model
    check_choice(config, "model.cell", tuple(CELLS))
    for name in ("hidden_size", "num_layers", "unroll"):
      if int(m[name]) < 1:
        raise ConfigError(f"config.model.{name} must be >= 1, got {m[name]}")
    if m.init_scale < 0:
      raise ConfigError(f"config.model.init_scale must be >= 0 (0: default init), got {m.init_scale}")
    if d.test_examples < 1 or d.test_examples % d.eval_batch_size:
      raise ConfigError(f"config.data.test_examples ({d.test_examples}) must be a positive multiple "
                        f"of config.data.eval_batch_size ({d.eval_batch_size})")
    self.check_lag(int(d.lag))
    self.model = SequenceModel(
        num_outputs=self.num_outputs, hidden_size=m.hidden_size, cell=m.cell,
        num_layers=m.num_layers, readout=self.readout, init_scale=m.init_scale,
        forget_bias=m.forget_bias, unroll=m.unroll, dtype=self.dtype)

  def check_lag(self, lag: int) -> None:
    raise NotImplementedError

  def examples(self, rng, size):
    raise NotImplementedError

  def train_batch(self, step):
    return self.examples(step_rng(self.config.seed, step), self.config.batch_size)

  @functools.cached_property
  def test_set(self):
    """`data.test_examples` sequences from the held-out stream of the seed."""
    return self.examples(heldout_rng(self.config.seed), self.config.data.test_examples)

  def eval_batches(self):
    test, size = self.test_set, self.config.data.eval_batch_size
    return [{k: v[i:i + size] for k, v in test.items()}
            for i in range(0, self.config.data.test_examples, size)]


class AddingTask(_LongLagTask):
  """Regress the sum of the two marked values from the last step's output (MSE)."""
  num_outputs = 1
  readout = "last"

  def check_lag(self, lag):
    if lag < 2:
      raise ConfigError(f"config.data.lag is the adding problem's length T and must be >= 2 "
                        f"(one marker per half), got {lag}")

  def examples(self, rng, size):
    inputs, targets = adding_batch(rng, size, self.config.data.lag)
    return {"inputs": inputs, "targets": targets}

  def init(self, rng):
    return self.model.init(rng, jnp.zeros((1, self.config.data.lag, 2), jnp.float32))

  def batch_spec(self):
    b, t = self.config.batch_size, self.config.data.lag
    return {"inputs": spec((b, t, 2), np.float32), "targets": spec((b,), np.float32)}

  def loss(self, variables, batch, rng, *, train):
    pred, state = self.apply(variables, batch["inputs"], train=train, rng=rng)
    errors = pred[:, 0] - batch["targets"]
    mse = jnp.mean(errors ** 2)
    # Hochreiter & Schmidhuber count a sequence as solved when its absolute error is < 0.04.
    return mse, {"mse": mse, "solved": jnp.mean(jnp.abs(errors) < 0.04)}, state


class CopyTask(_LongLagTask):
  """Predict every step's token (cross entropy); accuracy on the 10 symbols to reproduce."""
  readout = "all"

  def __init__(self, config):
    if config.data.num_symbols < 2:
      raise ConfigError(f"config.data.num_symbols must be >= 2, got {config.data.num_symbols}")
    self.num_outputs = config.data.num_symbols + 2  # blank, the symbols, the delimiter
    super().__init__(config)

  def check_lag(self, lag):
    if lag < 1:
      raise ConfigError(f"config.data.lag is the number of blanks T and must be >= 1, got {lag}")

  def examples(self, rng, size):
    inputs, targets = copy_batch(rng, size, self.config.data.lag, self.config.data.num_symbols)
    return {"inputs": inputs, "targets": targets}

  def _length(self):
    return self.config.data.lag + 2 * COPY_LENGTH

  def init(self, rng):
    return self.model.init(rng, jnp.zeros((1, self._length(), self.num_outputs), jnp.float32))

  def batch_spec(self):
    b = self.config.batch_size
    return {"inputs": spec((b, self._length()), np.int32), "targets": spec((b, self._length()), np.int32)}

  def _scores(self, variables, batch, rng, train):
    one_hot = jnp.eye(self.num_outputs, dtype=jnp.float32)[batch["inputs"]]
    logits, state = self.apply(variables, one_hot, train=train, rng=rng)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets"])
    recalled = jnp.argmax(logits[:, -COPY_LENGTH:], -1) == batch["targets"][:, -COPY_LENGTH:]
    return losses, recalled.astype(jnp.float32), state

  def loss(self, variables, batch, rng, *, train):
    losses, recalled, state = self._scores(variables, batch, rng, train)
    return losses.mean(), {"accuracy": recalled.mean()}, state

  def eval_metrics(self, variables, batch):
    """Cross entropy per step over all T + 20 steps; accuracy per symbol over the 10 recalled."""
    losses, recalled, _ = self._scores(variables, batch, None, False)
    return {"loss": ratio(losses.sum(), losses.size), "accuracy": ratio(recalled.sum(), recalled.size)}
