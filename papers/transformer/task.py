"""Transformer experiments: the Annotated Transformer's copy task, translation, a char-level LM.

CopyTask: random sequences of symbols 1..V-1 starting with symbol 1 (which also
serves as BOS); the model must reproduce the source. Generated data (`train_batch`);
scored by exact-sequence accuracy of greedy (and beam) decoding on held-out sequences.

TranslationTask: English -> Spanish on the verse-aligned Bible of core.translation_data
(the data, split by book, and subword vocabularies of the RNNsearch package, so the models
compare on equal terms); trained on `train_examples` (a TranslationSource through grain),
scored by BLEU of beam-search and greedy translations of held-out test verses.

CharLMTask: next-character prediction on the Shakespeare texts of docs/data.md, read
through the grain pipeline of core.data (`train_examples`: non-overlapping windows of
the training text, shuffled every epoch); validation loss in bits/char and a
temperature sample.
"""
from __future__ import annotations

import dataclasses
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from core.task import ConfigError, Task, heldout_rng, spec, step_rng
from papers.transformer import model as model_lib


def model_config(task: Task, vocab_size: int) -> model_lib.TransformerConfig:
  """The model of `task.config.model`, in the task's dtype and pipeline settings."""
  m = task.config.model
  for name in ("d_model", "num_heads", "d_ff", "max_len"):
    if m[name] < 1:
      raise ConfigError(f"config.model.{name} must be >= 1, got {m[name]}")
  if vocab_size < 2:
    raise ConfigError(f"the vocabulary must have at least 2 symbols, got {vocab_size}")
  if m.d_model % m.num_heads:
    raise ConfigError(f"model.d_model {m.d_model} is not divisible by model.num_heads {m.num_heads}")
  attention = m.get("attention", "einsum")
  if attention not in model_lib.ATTENTION_IMPLEMENTATIONS:
    raise ConfigError(f"config.model.attention must be one of {model_lib.ATTENTION_IMPLEMENTATIONS}, "
                      f"got {attention!r}")
  if attention != "einsum" and m.dropout:
    raise ConfigError(f"config.model.attention={attention!r} has no attention dropout; set "
                      f"config.model.dropout=0 or config.model.attention='einsum'")
  vocab_multiple = int(m.get("vocab_multiple", 128))
  if vocab_multiple < 1:
    raise ConfigError(f"model.vocab_multiple must be a positive integer, got {vocab_multiple}")
  return model_lib.TransformerConfig(
      vocab_size=vocab_size, d_model=m.d_model, num_heads=m.num_heads, d_ff=m.d_ff,
      num_encoder_layers=m.get("num_encoder_layers", 0),
      num_decoder_layers=m.get("num_decoder_layers", m.get("num_layers", 0)),
      dropout=m.dropout, max_len=m.max_len, share_embeddings=m.share_embeddings,
      pre_norm=m.pre_norm, dtype=task.dtype, vocab_multiple=vocab_multiple,
      num_stages=task.num_stages, microbatches=task.microbatches, remat=task.remat,
      attention=attention, scan_layers=bool(m.get("scan_layers", False)))


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
    if not 2 <= self.seq_len <= config.model.max_len:
      raise ConfigError(f"data.seq_len must be in [2, model.max_len={config.model.max_len}], got {self.seq_len}")
    self.cfg = model_config(self, self.vocab_size)
    self.model = model_lib.Transformer(self.cfg)
    # Jitted once; evaluate() calls them with the trainer's (sharded) parameters.
    self._decode = jax.jit(lambda params, src: model_lib.greedy_decode(
        self.model, params, src, self.seq_len - 1, bos=1))
    self._beam = jax.jit(lambda params, src: model_lib.beam_search(
        self.model, params, src, self.seq_len - 1, bos=1, eos=-1, beam_size=config.data.beam_size)[0])
    self._held_out = None

  def sequences(self, rng: np.random.Generator, n: int) -> np.ndarray:
    data = rng.integers(1, self.vocab_size, size=(n, self.seq_len), dtype=np.int32)
    data[:, 0] = 1
    return data

  def _batch(self, data):
    return {"src": data, "tgt_in": data[:, :-1], "tgt_out": data[:, 1:]}

  def init(self, rng):
    src = jnp.ones((1, self.seq_len), jnp.int32)
    return self.model.init(rng, src, src[:, :-1])

  def batch_spec(self):
    b, n = self.config.batch_size, self.seq_len
    return {"src": spec((b, n), np.int32), "tgt_in": spec((b, n - 1), np.int32),
            "tgt_out": spec((b, n - 1), np.int32)}

  def loss(self, variables, batch, rng, *, train):
    logits, updates = self.apply(variables, batch["src"], batch["tgt_in"], train=train, rng=rng,
                                 deterministic=not train)
    loss, nll, acc = smoothed_cross_entropy(logits, batch["tgt_out"], self.config.data.label_smoothing)
    return loss, {"nll": nll, "token_accuracy": acc}, updates

  def train_batch(self, step):
    return self._batch(self.sequences(step_rng(self.config.seed, step), self.config.batch_size))

  def held_out(self) -> np.ndarray:
    """data.eval_examples held-out sequences (the same for every evaluation)."""
    if self._held_out is None:
      self._held_out = self.sequences(heldout_rng(self.config.seed), self.config.data.eval_examples)
    return self._held_out

  def eval_batches(self):
    data = self.held_out()
    bs = self.config.batch_size
    return [self._batch(data[i:i + bs]) for i in range(0, len(data) - bs + 1, bs)]

  def evaluate(self, variables, step):
    params = variables["params"]
    src = self.held_out()
    greedy = np.asarray(self._decode(params, src))
    out = {"exact_match_greedy": float(np.mean(np.all(greedy == src[:, 1:], axis=1)))}
    few = src[:self.config.data.beam_examples]
    if len(few):
      beam = np.asarray(self._beam(params, few))
      out["exact_match_beam"] = float(np.mean(np.all(beam == few[:, 1:], axis=1)))
    return out


class TranslationTask(Task):
  """English -> Spanish translation of Bible verses with the encoder-decoder Transformer.

  Source and target have their own sentencepiece vocabularies of data.vocab_size pieces,
  trained on the train split (core.translation_data.SubwordVocab); the model has separate
  source and target embeddings and ties the target embedding to the output projection.
  `evaluate` translates data.eval_examples test verses, evenly spaced over the test books,
  with beam search (data.beam_size, length penalty data.alpha: the paper's 4 and 0.6) and
  greedily, and reports sacrebleu BLEU of both and BLEU by source length (of beam search).
  """

  def __init__(self, config):
    super().__init__(config)
    d = config.data
    self.max_len = d.max_len
    if not 2 <= self.max_len <= config.model.max_len:
      raise ConfigError(f"data.max_len must be in [2, model.max_len={config.model.max_len}], got {self.max_len}")
    if not 2 <= d.decode_len < config.model.max_len:
      raise ConfigError(f"data.decode_len must be in [2, model.max_len - 1 = {config.model.max_len - 1}], "
                        f"got {d.decode_len}")
    if d.vocab_size < 8:
      raise ConfigError(f"data.vocab_size must be at least 8 (4 special pieces), got {d.vocab_size}")
    cfg = model_config(self, d.vocab_size)
    self.cfg = dataclasses.replace(cfg, share_embeddings=False, tie_output=True)
    self.model = model_lib.Transformer(self.cfg)
    self._data = None
    bos, eos = 1, 2  # core.translation_data.SubwordVocab.BOS, EOS
    self._greedy = jax.jit(lambda params, src: model_lib.greedy_decode(
        self.model, params, src, d.decode_len, bos=bos, eos=eos))
    self._beam = jax.jit(lambda params, src: model_lib.beam_search(
        self.model, params, src, d.decode_len, bos=bos, eos=eos, beam_size=d.beam_size, alpha=d.alpha)[0])

  # ---- data -----------------------------------------------------------------
  def data(self):
    """(pairs by split, source vocabulary, target vocabulary), loaded once."""
    if self._data is None:
      from core import translation_data as td  # pylint: disable=g-import-not-at-top
      d = self.config.data
      pairs = td.bible_pairs(d.english)
      # The RNNsearch package's vocabularies: both read the same files.
      vocabs = td.corpus_vocabs(f"bible_{d.english}", pairs["train"], (d.vocab_size, d.vocab_size),
                                d.vocab_dir)
      self._data = (pairs, *vocabs)
    return self._data

  def check_data(self):
    self.data()

  def source(self, split: str, truncate: bool = False):
    """A TranslationSource of one split; training pairs of more than data.max_words words on
    either side are left out first (the RNNsearch package's filter)."""
    from core import translation_data as td  # pylint: disable=g-import-not-at-top
    pairs, src_vocab, tgt_vocab = self.data()
    pairs = pairs[split]
    if split == "train":
      pairs = td.within_words(pairs, self.config.data.max_words)
    return td.TranslationSource(pairs, src_vocab, tgt_vocab, self.max_len, truncate=truncate)

  def train_examples(self):
    return self.source("train")

  def eval_batches(self):
    """data.eval_batches batches of validation verses (cut to max_len) for the loss."""
    source = self.source("valid", truncate=True)
    bs = self.config.batch_size
    n = min(len(source), self.config.data.eval_batches * bs) // bs * bs
    rows = source[np.arange(n)]
    return [{k: v[i:i + bs] for k, v in rows.items()} for i in range(0, n, bs)]

  def test_sample(self) -> list[tuple[str, str]]:
    """data.eval_examples test pairs, evenly spaced over the test books (all lengths kept)."""
    test = self.data()[0]["test"]
    n = min(self.config.data.eval_examples, len(test))
    return [test[i] for i in np.linspace(0, len(test) - 1, n).round().astype(int)] if n else []

  # ---- model ----------------------------------------------------------------
  def init(self, rng):
    x = jnp.ones((1, self.max_len), jnp.int32)
    return self.model.init(rng, x, x)

  def batch_spec(self):
    shape = (self.config.batch_size, self.max_len)
    return {name: spec(shape, np.int32) for name in ("src", "tgt_in", "tgt_out")}

  def loss(self, variables, batch, rng, *, train):
    logits, updates = self.apply(variables, batch["src"], batch["tgt_in"], train=train, rng=rng,
                                 deterministic=not train)
    loss, nll, acc = smoothed_cross_entropy(logits, batch["tgt_out"], self.config.data.label_smoothing)
    return loss, {"nll": nll, "token_accuracy": acc}, updates

  # ---- evaluation -----------------------------------------------------------
  def translate(self, params, sentences: list[str], beam: bool = True) -> list[str]:
    """English sentences -> Spanish, in chunks of data.decode_batch (one compiled shape).

    Sources longer than data.decode_len pieces are cut to it.
    """
    _, src_vocab, tgt_vocab = self.data()
    d = self.config.data
    decode = self._beam if beam else self._greedy
    out = []
    for start in range(0, len(sentences), d.decode_batch):
      chunk = sentences[start:start + d.decode_batch]
      src = np.zeros((d.decode_batch, d.decode_len), np.int32)
      for i, text in enumerate(chunk):
        ids = src_vocab.encode(text)[:d.decode_len]
        src[i, :len(ids)] = ids
      tokens = np.asarray(decode(params, src))
      out += [tgt_vocab.decode(row) for row in tokens[:len(chunk)]]
    return out

  def evaluate(self, variables, step):
    from core import translation_data as td  # pylint: disable=g-import-not-at-top
    sample = self.test_sample()
    if not sample:
      return {}
    sources, references = [e for e, _ in sample], [s for _, s in sample]
    params = variables["params"]
    beam = self.translate(params, sources, beam=True)
    greedy = self.translate(params, sources, beam=False)
    return {"bleu": td.corpus_bleu(beam, references), "bleu_greedy": td.corpus_bleu(greedy, references),
            **td.bleu_by_length(beam, references, sources),
            "example": f"{sources[0]} => {beam[0]} (reference: {references[0]})"}


class WindowSource:
  """Random access to the non-overlapping windows of a token array, for core.data.

  Example i is the seq_len + 1 tokens starting at i * seq_len, split into
  inputs (the first seq_len) and targets (the last seq_len).
  """

  def __init__(self, ids: np.ndarray, seq_len: int):
    self.ids = np.asarray(ids, np.int32)
    self.seq_len = seq_len

  def __len__(self) -> int:
    return max(0, (len(self.ids) - 1) // self.seq_len)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    index = int(index)
    if not 0 <= index < len(self):
      raise IndexError(f"window {index} out of range for {len(self)} windows")
    chunk = self.ids[index * self.seq_len:index * self.seq_len + self.seq_len + 1]
    return {"inputs": chunk[:-1].copy(), "targets": chunk[1:].copy()}


class CharLMTask(Task):
  """Character-level language model on Shakespeare (docs/data.md), decoder-only Transformer."""

  supports_stages = True  # the layer stack runs pipelined with config.mesh.stage > 1

  def __init__(self, config):
    super().__init__(config)
    self._text = None
    # The vocabulary is fixed by the config so the model is built without reading data.
    self.cfg = model_config(self, config.model.vocab_size)
    self.model = model_lib.TransformerLM(self.cfg)
    self.seq_len = config.data.seq_len
    if not 1 <= self.seq_len <= config.model.max_len:
      raise ConfigError(f"data.seq_len must be in [1, model.max_len={config.model.max_len}], got {self.seq_len}")

  def check_data(self):
    self.corpus()  # loads (and checks) the text before the input threads start

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

  def init(self, rng):
    return self.model.init(rng, jnp.zeros((1, self.seq_len), jnp.int32))

  def batch_spec(self):
    shape = (self.config.batch_size, self.seq_len)
    return {"inputs": spec(shape, np.int32), "targets": spec(shape, np.int32)}

  def loss(self, variables, batch, rng, *, train):
    logits, updates = self.apply(variables, batch["inputs"], train=train, rng=rng,
                                 deterministic=not train)
    log_probs = jax.nn.log_softmax(logits)
    nll = -jnp.mean(jnp.take_along_axis(log_probs, batch["targets"][..., None], axis=-1))
    return nll, {"bits_per_char": nll / math.log(2)}, updates

  def train_examples(self):
    return WindowSource(self.corpus()[0], self.seq_len)

  def eval_batches(self):
    """data.eval_batches batches of windows at random offsets of the validation text."""
    val_ids = self.corpus()[1]
    n = self.config.data.eval_batches * self.config.batch_size
    starts = heldout_rng(self.config.seed).integers(0, len(val_ids) - self.seq_len - 1, size=n)
    batches = self.windows(val_ids, starts)
    bs = self.config.batch_size
    return [{k: v[i:i + bs] for k, v in batches.items()} for i in range(0, n, bs)]

  @functools.cached_property
  def _forward(self):
    """Jitted once per task: variables, [1, seq_len] tokens -> [seq_len, vocab] logits."""
    return jax.jit(lambda variables, x: self.model.apply(variables, x)[0])

  def sample(self, variables, prompt: str, length: int, temperature: float = 1.0, seed: int = 0) -> str:
    """Autoregressive sampling with a sliding window of data.seq_len characters."""
    alphabet = self.corpus()[2]
    index = {c: i for i, c in enumerate(alphabet)}
    ids = [index.get(c, 0) for c in prompt] or [0]
    rng = jax.random.key(seed)
    window = np.zeros((1, self.seq_len), np.int32)
    for _ in range(length):
      context = ids[-self.seq_len:]
      window[0, :len(context)] = context
      # Only the corpus's characters: model.vocab_size may exceed the alphabet.
      logits = self._forward(variables, window)[len(context) - 1, :len(alphabet)]
      rng, key = jax.random.split(rng)
      ids.append(int(jax.random.categorical(key, logits / max(temperature, 1e-6))))
    return "".join(alphabet[i] for i in ids)

  def evaluate(self, variables, step):
    if not self.config.data.sample_length:
      return {}
    text = self.sample(variables, self.config.data.sample_prompt, self.config.data.sample_length,
                       self.config.data.sample_temperature)
    return {"sample": text}
