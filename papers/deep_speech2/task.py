"""Deep Speech 2 training: CTC on synthetic speech, SortaGrad, length buckets, CER/WER.

Training batch k is a pure function of (seed, k) (`train_indices`):
- SortaGrad (Amodei et al. 2016, section 3.1): the first epoch visits the utterances in order
  of increasing length; later epochs are random: each length bucket is shuffled, cut into
  batches, and the batches are shuffled, all seeded by (seed, epoch).
- Length buckets: a batch is padded to the smallest of `data.buckets` (frames) that holds its
  longest utterance. The trainer's batch has one shape (the longest bucket); the loss runs the
  network on the batch's bucket length only, through `lax.switch` over the few buckets, so the
  step compiles once with one branch per bucket, and each held-out batch has a bucket's shape.
Evaluation: the CTC loss on the held-out voices (jitted, `eval_batches`), then in `evaluate`
(host side) greedy and LM beam-search transcriptions scored by character and word error
rates (jiwer) on the held-out voices and on the real pocketsphinx recordings.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from core.task import ConfigError, DataMissingError, Task, spec
from core.validate import check_choice
from papers.deep_speech2 import data as speech
from papers.deep_speech2 import decode
from papers.deep_speech2.model import DeepSpeech2

AUTO_SYNTHESIS = 256    # splits up to this many utterances are synthesised on first use


def ctc_steps(text: str) -> int:
  """The fewest output steps CTC needs for `text`: a label each, plus a blank between repeats."""
  return len(text) + sum(a == b for a, b in zip(text, text[1:]))


def bucket_of(frames, buckets) -> np.ndarray:
  """Index of the smallest bucket that holds `frames` (len(buckets) if none does)."""
  return np.searchsorted(np.asarray(buckets), np.asarray(frames), side="left")


def pad_batch(features, texts, length: int, rows: int, max_label: int, bucket: int) -> dict:
  """Rows of utterances zero-padded to `length` frames; rows past len(texts) are empty."""
  batch = {"features": np.zeros((rows, length, speech.NUM_BINS), np.float32),
           "feature_lengths": np.zeros((rows,), np.int32),
           "labels": np.zeros((rows, max_label), np.int32),
           "label_lengths": np.zeros((rows,), np.int32),
           "bucket": np.full((rows,), bucket, np.int32)}
  for i, (f, t) in enumerate(zip(features, texts)):
    batch["features"][i, :len(f)] = f
    batch["feature_lengths"][i] = len(f)
    batch["labels"][i, :len(t)] = speech.encode(t)
    batch["label_lengths"][i] = len(t)
  return batch


def sortagrad_batches(lengths, buckets, batch_size: int, seed: int, epoch: int,
                      sortagrad: bool = True) -> list[np.ndarray]:
  """The batches (utterance indices) of an epoch: sorted by length in epoch 0 (SortaGrad),
  otherwise shuffled within buckets, cut into whole batches, in a shuffled batch order."""
  lengths = np.asarray(lengths)
  if epoch == 0 and sortagrad:
    order = np.argsort(lengths, kind="stable")
    return [order[i:i + batch_size] for i in range(0, len(order) - batch_size + 1, batch_size)]
  rng = np.random.default_rng([seed, epoch])
  which = bucket_of(lengths, buckets)
  batches = []
  for b in range(len(buckets)):
    members = rng.permutation(np.flatnonzero(which == b))
    batches += [members[i:i + batch_size] for i in range(0, len(members) - batch_size + 1, batch_size)]
  return [batches[i] for i in rng.permutation(len(batches))]


class SpeechTask(Task):
  model_state = ("batch_stats",)

  def __init__(self, config):
    super().__init__(config)
    d, m = config.data, config.model
    check_choice(config, "data.source", ("espeak", "librispeech"))
    if list(d.buckets) != sorted(d.buckets) or not d.buckets:
      raise ConfigError(f"data.buckets must be increasing frame counts, got {d.buckets}")
    if d.eval_batch_size % 8:
      raise ConfigError(f"data.eval_batch_size {d.eval_batch_size} must be a multiple of 8 rows")
    if any(k % 2 == 0 for kernel in m.conv_kernels for k in kernel):
      raise ConfigError(f"model.conv_kernels must be odd, got {m.conv_kernels}")
    self.buckets = tuple(int(b) for b in d.buckets)
    self.max_label = speech.MAX_CHARS
    self.model = DeepSpeech2(conv_channels=tuple(m.conv_channels),
                             conv_kernels=tuple(tuple(k) for k in m.conv_kernels),
                             conv_strides=tuple(tuple(s) for s in m.conv_strides),
                             rnn_layers=m.rnn_layers, rnn_features=m.rnn_features,
                             vocab=speech.VOCAB, dtype=self.dtype)
    self.time_stride = int(np.prod([s[0] for s in m.conv_strides]))

  # ---- data -----------------------------------------------------------------
  def _load(self, split: str, n: int) -> dict:
    if self.config.data.source == "librispeech":
      tfds_split = "train_clean100" if split == "train" else "test_clean"
      loaded = speech.librispeech(tfds_split, limit=n or None)
    else:
      try:
        loaded = speech.load_split(split, n)
      except DataMissingError:
        if n > AUTO_SYNTHESIS:
          raise
        speech.prepare(split, n)     # a few seconds of espeak-ng
        loaded = speech.load_split(split, n)
    # Keep what fits the longest bucket and CTC: an output step per label and per repeat.
    keep = [i for i, (f, t) in enumerate(zip(loaded["features"], loaded["texts"]))
            if len(f) <= self.buckets[-1] and len(t) <= self.max_label
            and ctc_steps(t) <= -(-len(f) // self.time_stride)]
    if not keep:
      raise ConfigError(f"no {split} utterance fits data.buckets {self.buckets}")
    return {"features": [loaded["features"][i] for i in keep], "texts": [loaded["texts"][i] for i in keep]}

  @functools.cached_property
  def train_data(self):
    return self._load("train", self.config.data.train_utterances)

  @functools.cached_property
  def test_data(self):
    return self._load("test", self.config.data.test_utterances)

  @functools.cached_property
  def real_data(self):
    return speech.real_clips()

  def check_data(self):
    self.train_data, self.test_data  # pylint: disable=pointless-statement
    if self.config.eval.real_clips:
      self.real_data  # pylint: disable=pointless-statement

  def batch_spec(self):
    b, t = self.config.batch_size, self.buckets[-1]
    return {"features": spec((b, t, speech.NUM_BINS), np.float32),
            "feature_lengths": spec((b,), np.int32), "labels": spec((b, self.max_label), np.int32),
            "label_lengths": spec((b,), np.int32), "bucket": spec((b,), np.int32)}

  @functools.cached_property
  def _lengths(self):
    return np.array([len(f) for f in self.train_data["features"]])

  @functools.lru_cache(maxsize=2)
  def _epoch(self, epoch: int):
    return sortagrad_batches(self._lengths, self.buckets, self.config.batch_size, self.config.seed,
                             epoch, self.config.data.sortagrad)

  def train_indices(self, step: int) -> np.ndarray:
    """Utterances of the batch of `step`: epoch 0 sorted (SortaGrad), then bucketed shuffles."""
    first = len(self._epoch(0))
    if first == 0:
      raise ConfigError(f"batch_size {self.config.batch_size} exceeds the training utterances")
    if step < first:
      return self._epoch(0)[step]
    later = len(self._epoch(1))
    if later == 0:
      raise ConfigError(f"no length bucket of {self.buckets} holds batch_size utterances")
    epoch, index = divmod(step - first, later)
    return self._epoch(1 + epoch)[index]

  def train_batch(self, step):
    rows = self.train_indices(step)
    feats = [self.train_data["features"][i] for i in rows]
    bucket = int(bucket_of(max(len(f) for f in feats), self.buckets))
    return pad_batch(feats, [self.train_data["texts"][i] for i in rows], self.buckets[-1],
                     len(rows), self.max_label, bucket)

  def _bucketed(self, features, texts, rows: int):
    """Utterances grouped by bucket, each group padded to its bucket's length, `rows` a batch."""
    which = bucket_of([len(f) for f in features], self.buckets)
    for b, length in enumerate(self.buckets):
      members = np.flatnonzero(which == b)
      for start in range(0, len(members), rows):
        chosen = members[start:start + rows]
        yield chosen, pad_batch([features[i] for i in chosen], [texts[i] for i in chosen], length,
                                rows, self.max_label, b)

  def eval_batches(self):
    for _, batch in self._bucketed(self.test_data["features"], self.test_data["texts"],
                                   self.config.data.eval_batch_size):
      yield batch

  # ---- model ----------------------------------------------------------------
  def init(self, rng):
    return self.model.init(rng, jnp.zeros((1, self.buckets[0], speech.NUM_BINS)),
                           jnp.array([self.buckets[0]]), train=False)

  def per_utterance_loss(self, variables, batch, rng, train: bool, length: int):
    """CTC loss of each row with the features cut to `length` frames; and state updates."""
    (log_probs, out_len), updates = self.apply(
        variables, batch["features"][:, :length], batch["feature_lengths"], train=train, rng=rng)
    logit_pad = (jnp.arange(log_probs.shape[1])[None, :] >= out_len[:, None]).astype(jnp.float32)
    label_pad = (jnp.arange(self.max_label)[None, :] >= batch["label_lengths"][:, None])
    losses = optax.ctc_loss(log_probs, logit_pad, batch["labels"], label_pad.astype(jnp.float32),
                            blank_id=speech.BLANK)
    return losses, updates

  def _switch(self, variables, batch, rng, train: bool):
    """Per-row CTC losses, the network run on the batch's bucket length (one branch per bucket
    that fits this batch's padded shape)."""
    lengths = [b for b in self.buckets if b <= batch["features"].shape[1]]
    branches = [functools.partial(self.per_utterance_loss, train=train, length=n) for n in lengths]
    index = jnp.clip(batch["bucket"][0], 0, len(branches) - 1)
    return jax.lax.switch(index, branches, variables, batch, rng)

  def loss(self, variables, batch, rng, *, train):
    losses, updates = self._switch(variables, batch, rng, train)
    valid = (batch["feature_lengths"] > 0).astype(jnp.float32)
    loss = (losses * valid).sum() / jnp.maximum(valid.sum(), 1.0)
    per_char = (losses * valid).sum() / jnp.maximum(batch["label_lengths"].sum(), 1)
    return loss, {"ctc_per_char": per_char}, updates

  def eval_metrics(self, variables, batch):
    losses, _ = self._switch(variables, batch, None, False)
    valid = (batch["feature_lengths"] > 0).astype(jnp.float32)
    chars = (batch["label_lengths"] * valid).sum()
    return {"loss": ((losses * valid).sum(), valid.sum()), "ctc_per_char": ((losses * valid).sum(), chars)}

  # ---- host-side evaluation -------------------------------------------------
  @functools.cached_property
  def language_model(self):
    return decode.CharNGram(speech.lm_text()[:self.config.eval.lm_sentences], self.config.eval.lm_order)

  @functools.cached_property
  def _log_probs_fn(self):
    return jax.jit(lambda v, f, n: self.model.apply(v, f, n, train=False))

  def log_probs(self, variables, features) -> list[np.ndarray]:
    """Per-utterance (T', V) log-probabilities, batched by bucket (longer ones: by 100 frames)."""
    out = [None] * len(features)
    longest = max(len(f) for f in features)
    buckets = self.buckets + tuple(range(self.buckets[-1] + 100, longest + 100, 100))
    rows = self.config.data.eval_batch_size
    which = bucket_of([len(f) for f in features], buckets)
    for b, length in enumerate(buckets):
      members = np.flatnonzero(which == b)
      for start in range(0, len(members), rows):
        chosen = members[start:start + rows]
        batch = pad_batch([features[i] for i in chosen], [""] * len(chosen), length, rows,
                          self.max_label, b)
        lp, n = jax.device_get(self._log_probs_fn(variables, batch["features"],
                                                  batch["feature_lengths"]))
        for row, i in enumerate(chosen):
          out[i] = lp[row, :n[row]]
    return out

  def transcribe(self, log_probs: np.ndarray, beam: int) -> str:
    if beam <= 0:
      return speech.decode_labels(decode.greedy(log_probs))
    e = self.config.eval
    best = decode.prefix_beam_search(log_probs, beam=beam, lm=self.language_model, alpha=e.alpha,
                                     beta=e.beta)
    return speech.decode_labels(best[0][0])

  def error_rates(self, log_probs, texts, beam: int, prefix: str) -> dict:
    import jiwer  # pylint: disable=g-import-not-at-top
    hyps = [self.transcribe(lp, beam) for lp in log_probs]
    return {f"{prefix}cer": float(jiwer.cer(list(texts), hyps)),
            f"{prefix}wer": float(jiwer.wer(list(texts), hyps))}, hyps

  def evaluate(self, variables, step):
    e = self.config.eval
    variables = jax.device_get(variables)
    test = self.test_data
    lps = self.log_probs(variables, test["features"])
    out, hyps = self.error_rates(lps, test["texts"], 0, "greedy_")
    out["example"] = f"{test['texts'][0]!r} -> {hyps[0]!r}"
    if e.beam > 0:
      k = min(e.beam_utterances, len(lps))
      out.update(self.error_rates(lps[:k], test["texts"][:k], 0, "subset_greedy_")[0])
      out.update(self.error_rates(lps[:k], test["texts"][:k], e.beam, "beam_lm_")[0])
    if e.real_clips:
      real = self.real_data
      real_lps = self.log_probs(variables, real["features"])
      out.update(self.error_rates(real_lps, real["texts"], 0, "real_greedy_")[0])
      if e.beam > 0:
        out.update(self.error_rates(real_lps, real["texts"], e.beam, "real_beam_lm_")[0])
    return out
