"""Word-level language modelling as in Zaremba et al. 2014: truncated BPTT over contiguous streams.

Training: the training tokens are cut into `batch_size` contiguous streams (rows); the batch
of step s is window s mod E of every stream (E windows of `data.unroll` tokens make an epoch),
a pure function of the step. The LSTM state after a window is the initial state of the next:
it lives in the model-state collection "carry" (checkpointed with the parameters) and is
reset to zeros at the first window of every epoch, as the paper's code does. The loss is the
paper's objective: the cross entropy summed over the unrolled steps and averaged over the
batch (so lr 1 and the clipping norms mean what they mean in the paper).

Evaluation: each split is ONE eval batch, the split cut into `batch_size` contiguous streams
that are read to their end in windows of `data.unroll` tokens with the state carried from
window to window (starting from zeros); every token but each stream's first is scored once.
So `<split>_perplexity` = exp(mean cross entropy over the whole split), exact per batch.
Splits: `valid`, `test`, and `train` = the first len(valid) training tokens, scored the same way
(no dropout): the gap between it and `valid` is the overfitting the paper is about.
"""
from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from core.task import ConfigError, Task, spec
from core.validate import check_choice
from papers.rnn_regularization import data as data_lib
from papers.rnn_regularization.model import WordLM

SPLITS = ("train", "valid", "test")  # eval batches' "split" ids, in this order


class WordLMTask(Task):
  model_state = ("carry",)

  def __init__(self, config):
    super().__init__(config)
    m, d = config.model, config.data
    if int(config.optimizer.grad_accum_steps) != 1:
      raise ConfigError("WordLMTask carries the LSTM state from one batch to the next, row by row; "
                        "set optimizer.grad_accum_steps=1 (micro-batches would split the streams)")
    check_choice(config, "data.corpus", tuple(data_lib.CORPORA))
    for key, value in (("model.hidden_size", m.hidden_size), ("model.num_layers", m.num_layers),
                       ("model.vocab_size", m.vocab_size), ("data.unroll", d.unroll)):
      if value < 1:
        raise ConfigError(f"config.{key} must be >= 1, got {value}")
    if not 0.0 <= m.dropout < 1.0:
      raise ConfigError(f"config.model.dropout must be in [0, 1), got {m.dropout}")
    if m.init_scale <= 0:
      raise ConfigError(f"config.model.init_scale must be > 0 (parameters start U(-s, s)), got {m.init_scale}")
    self.unroll = d.unroll
    self._corpus = self._eval_batches = None
    self.model = WordLM(vocab_size=m.vocab_size, hidden_size=m.hidden_size, num_layers=m.num_layers,
                        dropout=m.dropout, init_scale=m.init_scale, dtype=self.dtype)

  # ---- data -----------------------------------------------------------------
  def check_data(self):
    self.corpus()

  def corpus(self) -> data_lib.Corpus:
    if self._corpus is None:
      d = self.config.data
      corpus = data_lib.load_corpus(d.corpus, self.config.model.vocab_size)
      if d.train_tokens and len(corpus.train) != d.train_tokens:
        raise ConfigError(f"the {d.corpus} corpus has {len(corpus.train)} training tokens but "
                          f"config.data.train_tokens is {d.train_tokens} (epochs would be miscounted); "
                          f"set --config.data.train_tokens={len(corpus.train)}")
      self._corpus = corpus
    return self._corpus

  @functools.cached_property
  def train_streams(self) -> np.ndarray:
    return data_lib.streams(self.corpus().train, self.config.batch_size)

  @property
  def epoch_steps(self) -> int:
    steps = (self.train_streams.shape[1] - 1) // self.unroll
    if steps < 1:
      raise ConfigError(f"streams of {self.train_streams.shape[1]} tokens hold no window of "
                        f"data.unroll={self.unroll}")
    return steps

  def batch_spec(self):
    b, t = self.config.batch_size, self.unroll
    return {"inputs": spec((b, t), np.int32), "targets": spec((b, t), np.int32),
            "reset": spec((b,), np.int32)}

  def train_batch(self, step):
    index = step % self.epoch_steps
    batch = data_lib.window(self.train_streams, index, self.unroll)
    batch["reset"] = np.full((self.config.batch_size,), index == 0, np.int32)
    return batch

  def eval_batches(self):
    if self._eval_batches is None:
      corpus, b = self.corpus(), self.config.batch_size
      limit = self.config.data.eval_tokens or None  # 0: the whole split
      parts = {"train": corpus.train[:len(corpus.valid)], "valid": corpus.valid, "test": corpus.test}
      self._eval_batches = []
      for k, name in enumerate(SPLITS):
        batch = data_lib.scored_streams(parts[name][:limit], b, self.unroll)
        batch["split"] = np.full((b,), k, np.int32)
        self._eval_batches.append(batch)
    return self._eval_batches

  # ---- model ------------------------------------------------------------------
  def init(self, rng):
    b, layers, h = self.config.batch_size, self.config.model.num_layers, self.config.model.hidden_size
    variables = self.model.init(rng, jnp.zeros((1, self.unroll), jnp.int32))
    zeros = jnp.zeros((layers, b, h), jnp.float32)
    names = ("layers", "batch", "hidden")
    return {"params": variables["params"],
            "carry": {"c": nn.LogicallyPartitioned(zeros, names), "h": nn.LogicallyPartitioned(zeros, names)}}

  def _forward(self, params, inputs, carry, rng=None, train=False):
    """Logits and the next carry; carries are stacked {"c", "h"} [layers, B, H] arrays."""
    layers = carry["c"].shape[0]
    rnn_carry = tuple((carry["c"][i], carry["h"][i]) for i in range(layers))
    rngs = {"dropout": rng} if train and rng is not None else {}
    logits, rnn_carry = self.model.apply({"params": params}, inputs, rnn_carry, train=train, rngs=rngs)
    stacked = {"c": jnp.stack([c for c, _ in rnn_carry]), "h": jnp.stack([h for _, h in rnn_carry])}
    return logits, jax.lax.stop_gradient(stacked)

  def loss(self, variables, batch, rng, *, train):
    keep = (1 - batch["reset"]).astype(jnp.float32)[None, :, None]  # zeros at an epoch's start
    carry = jax.tree.map(lambda x: x * keep, variables["carry"])
    logits, carry = self._forward(variables["params"], batch["inputs"], carry, rng, train)
    nll = optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets"])  # [B, T]
    loss = nll.mean(axis=0).sum()  # summed over the unrolled steps, averaged over the batch
    mean = nll.mean()
    return loss, {"nll": mean, "perplexity": jnp.exp(mean)}, ({"carry": carry} if train else {})

  def eval_metrics(self, variables, batch):
    """One split per batch: its streams read in windows with the state carried (see the module doc)."""
    b, length = batch["inputs"].shape
    windows = lambda x: jnp.swapaxes(x.reshape(b, length // self.unroll, self.unroll), 0, 1)

    def step(carry, xs):
      inputs, targets, weights = xs
      logits, carry = self._forward(variables["params"], inputs, carry)
      nll = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
      return carry, jnp.sum(nll * weights)

    layers, h = self.config.model.num_layers, self.config.model.hidden_size
    zeros = jnp.zeros((layers, b, h), jnp.float32)
    _, sums = jax.lax.scan(step, {"c": zeros, "h": zeros},
                           (windows(batch["inputs"]), windows(batch["targets"]), windows(batch["weights"])))
    total, count = jnp.sum(sums), jnp.sum(batch["weights"])
    perplexity = jnp.exp(total / jnp.maximum(count, 1.0))
    metrics = {}
    for k, name in enumerate(SPLITS):
      is_k = jnp.any(batch["split"] == k).astype(jnp.float32)
      metrics[f"{name}_nll"] = (total * is_k, count * is_k)
      metrics[f"{name}_perplexity"] = (perplexity * is_k, is_k)
    return metrics
