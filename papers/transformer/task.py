"""Transformer experiments: the Annotated Transformer's copy task and a char-level LM.

CopyTask: random sequences of symbols 1..V-1 starting with symbol 1 (which also
serves as BOS); the model must reproduce the source. Scored by exact-sequence
accuracy of greedy (and beam) decoding on held-out sequences.

CharLMTask: next-character prediction on the Shakespeare texts of DATA.md;
validation loss in bits/char and a temperature sample.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from core.task import ConfigError, Task, shard_rows, step_rng
from papers.transformer import model as model_lib

EVAL_SEED_OFFSET = 1_000_003  # held-out data comes from a stream the training never draws


def model_config(config, vocab_size: int) -> model_lib.TransformerConfig:
  m = config.model
  dtypes = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}
  if config.dtype not in dtypes:
    raise ConfigError(f"config.dtype must be one of {list(dtypes)}, got {config.dtype!r}")
  if m.d_model % m.num_heads:
    raise ConfigError(f"model.d_model {m.d_model} is not divisible by model.num_heads {m.num_heads}")
  return model_lib.TransformerConfig(
      vocab_size=vocab_size, d_model=m.d_model, num_heads=m.num_heads, d_ff=m.d_ff,
      num_encoder_layers=m.get("num_encoder_layers", 0),
      num_decoder_layers=m.get("num_decoder_layers", m.get("num_layers", 0)),
      dropout=m.dropout, max_len=m.max_len, share_embeddings=m.share_embeddings,
      pre_norm=m.pre_norm, dtype=dtypes[config.dtype],
      num_stages=config.mesh.stage, microbatches=config.pipeline.microbatches,
      remat=config.pipeline.remat)


def smoothed_cross_entropy(logits, targets, smoothing: float, pad: int = model_lib.PAD):
  """Label-smoothed cross entropy (Szegedy et al.; eps_ls = 0.1 in the paper), mean over non-pad targets.

  The smoothing mass goes to every class except the target and PAD, as in the
  Annotated Transformer. Returns (smoothed loss, plain NLL, token accuracy).
  """
  vocab = logits.shape[-1]
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  nll = -jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0]
  if smoothing:
    off = smoothing / (vocab - 2)
    dist = jnp.full(logits.shape, off).at[..., pad].set(0.0)
    dist = jnp.where(jax.nn.one_hot(targets, vocab, dtype=bool), 1.0 - smoothing, dist)
    loss = -jnp.sum(dist * log_probs, axis=-1)
  else:
    loss = nll
  weights = (targets != pad).astype(jnp.float32)
  denom = jnp.maximum(weights.sum(), 1.0)
  accuracy = (jnp.argmax(logits, -1) == targets).astype(jnp.float32)
  return (loss * weights).sum() / denom, (nll * weights).sum() / denom, (accuracy * weights).sum() / denom


class CopyTask(Task):
  """The Annotated Transformer's first example: learn to copy random symbol sequences."""

  def __init__(self, config):
    super().__init__(config)
    self.vocab_size = config.data.vocab_size
    self.seq_len = config.data.seq_len
    self.cfg = model_config(config, self.vocab_size)
    self.model = model_lib.Transformer(self.cfg)
    self._decode = jax.jit(lambda p, src: model_lib.greedy_decode(
        self.model, p, src, self.seq_len - 1, bos=1))
    self._beam = jax.jit(lambda p, src: model_lib.beam_search(
        self.model, p, src, self.seq_len - 1, bos=1, eos=-1, beam_size=config.data.beam_size)[0])

  def sequences(self, rng: np.random.Generator, n: int) -> np.ndarray:
    data = rng.integers(1, self.vocab_size, size=(n, self.seq_len), dtype=np.int32)
    data[:, 0] = 1
    return data

  def _batch(self, data):
    return {"src": data, "tgt_in": data[:, :-1], "tgt_out": data[:, 1:]}

  def init_params(self, rng):
    b = self._batch(self.sequences(np.random.default_rng(0), 2))
    return self.model.init(rng, b["src"], b["tgt_in"])["params"]

  def loss(self, params, batch, rng):
    logits = self.model.apply({"params": params}, batch["src"], batch["tgt_in"],
                              deterministic=not self.cfg.dropout, rngs={"dropout": rng})
    loss, nll, acc = smoothed_cross_entropy(logits, batch["tgt_out"], self.config.data.label_smoothing)
    return loss, {"nll": nll, "token_accuracy": acc}

  def train_batch(self, step, shard=0, num_shards=1):
    rng = step_rng(self.config.seed, step)
    return shard_rows(self._batch(self.sequences(rng, self.config.batch_size)), shard, num_shards)

  def held_out(self) -> np.ndarray:
    return self.sequences(step_rng(self.config.seed + EVAL_SEED_OFFSET, 0), self.config.data.eval_examples)

  def eval_batches(self):
    data = self.held_out()
    bs = self.config.batch_size
    return [self._batch(data[i:i + bs]) for i in range(0, len(data) - bs + 1, bs)]

  def evaluate(self, params, step):
    src = self.held_out()
    greedy = np.asarray(self._decode(params, src))
    out = {"exact_match_greedy": float(np.mean(np.all(greedy == src[:, 1:], axis=1)))}
    few = src[:self.config.data.beam_examples]
    if len(few):
      beam = np.asarray(self._beam(params, few))
      out["exact_match_beam"] = float(np.mean(np.all(beam == few[:, 1:], axis=1)))
    return out


class CharLMTask(Task):
  """Character-level language model on Shakespeare (DATA.md), decoder-only Transformer."""

  def __init__(self, config):
    super().__init__(config)
    self._text = None
    # The vocabulary is fixed by the config so the model is built without reading data.
    self.cfg = model_config(config, config.model.vocab_size)
    self.model = model_lib.TransformerLM(self.cfg)
    self.seq_len = config.data.seq_len
    if self.seq_len + 1 > config.model.max_len + 1:
      raise ConfigError(f"data.seq_len {self.seq_len} exceeds model.max_len {config.model.max_len}")

  def check_data(self):
    self.corpus()

  def corpus(self):
    """(train ids, validation ids, alphabet): the last data.val_fraction of the text is held out."""
    if self._text is None:
      from core.datasets import shakespeare_text  # pylint: disable=g-import-not-at-top
      text = shakespeare_text()
      alphabet = sorted(set(text))
      if len(alphabet) > self.config.model.vocab_size:
        raise ConfigError(f"the corpus has {len(alphabet)} distinct characters but model.vocab_size is "
                          f"{self.config.model.vocab_size}; raise model.vocab_size")
      lookup = np.zeros(max(map(ord, alphabet)) + 1, np.int32)
      lookup[[ord(c) for c in alphabet]] = np.arange(len(alphabet))
      ids = lookup[np.frombuffer(text.encode("utf-32-le"), np.uint32)]
      split = int(len(ids) * (1 - self.config.data.val_fraction))
      self._text = (ids[:split], ids[split:], alphabet)
    return self._text

  def windows(self, ids, starts):
    idx = starts[:, None] + np.arange(self.seq_len + 1)
    chunk = ids[idx]
    return {"inputs": chunk[:, :-1], "targets": chunk[:, 1:]}

  def init_params(self, rng):
    return self.model.init(rng, jnp.zeros((1, self.seq_len), jnp.int32))["params"]

  def loss(self, params, batch, rng):
    logits = self.model.apply({"params": params}, batch["inputs"],
                              deterministic=not self.cfg.dropout, rngs={"dropout": rng})
    log_probs = jax.nn.log_softmax(logits)
    nll = -jnp.mean(jnp.take_along_axis(log_probs, batch["targets"][..., None], axis=-1))
    return nll, {"bits_per_char": nll / math.log(2)}

  def train_batch(self, step, shard=0, num_shards=1):
    train_ids = self.corpus()[0]
    rng = step_rng(self.config.seed, step)
    starts = rng.integers(0, len(train_ids) - self.seq_len - 1, size=self.config.batch_size)
    return shard_rows(self.windows(train_ids, starts), shard, num_shards)

  def eval_batches(self):
    val_ids = self.corpus()[1]
    rng = step_rng(self.config.seed + EVAL_SEED_OFFSET, 0)
    n = self.config.data.eval_batches * self.config.batch_size
    starts = rng.integers(0, len(val_ids) - self.seq_len - 1, size=n)
    batches = self.windows(val_ids, starts)
    bs = self.config.batch_size
    return [{k: v[i:i + bs] for k, v in batches.items()} for i in range(0, n, bs)]

  def sample(self, params, prompt: str, length: int, temperature: float = 1.0, seed: int = 0) -> str:
    """Autoregressive sampling with a sliding window of data.seq_len characters."""
    alphabet = self.corpus()[2]
    index = {c: i for i, c in enumerate(alphabet)}
    ids = [index.get(c, 0) for c in prompt] or [0]
    forward = jax.jit(lambda p, x: self.model.apply({"params": p}, x)[0])
    rng = jax.random.key(seed)
    window = np.zeros((1, self.seq_len), np.int32)
    for _ in range(length):
      context = ids[-self.seq_len:]
      window[0, :len(context)] = context
      logits = forward(params, window)[len(context) - 1]
      rng, key = jax.random.split(rng)
      ids.append(int(jax.random.categorical(key, logits / max(temperature, 1e-6))))
    return "".join(alphabet[i] for i in ids)

  def evaluate(self, params, step):
    if not self.config.data.sample_length:
      return {}
    text = self.sample(params, self.config.data.sample_prompt, self.config.data.sample_length,
                       self.config.data.sample_temperature)
    return {"sample": text}
