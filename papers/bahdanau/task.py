"""English -> Spanish translation with RNNsearch or RNNencdec (Bahdanau et al. 2015).

Data (core.translation_data): the Bible, KJV (or WEB) English against Reina-Valera 1909
Spanish, split by book; or WMT14 through tensorflow-datasets (`data.corpus = "wmt14"`, the
paper's English -> French, needs internet). Subword vocabularies (sentencepiece, one per
language, trained on the train split) are cached under core.datasets.data_root().

Training pairs with more than `data.max_words` words on either side are dropped (the paper's
RNNsearch-50 trains on sentences of up to 50 words), as are those longer than `data.max_len`
subword pieces (the width of the arrays). The loss is the mean cross entropy per target piece.
Held-out: `eval_batches` scores the valid books' loss under the trainer's jit; `evaluate`
translates `data.eval_examples` test verses (evenly spaced over the test books, all lengths)
by greedy and beam search and reports sacrebleu BLEU: `bleu` (beam), `bleu_greedy`, and
`bleu_len_<a>_<b>` (beam) by source length in words, the paper's figure 2.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from core import datasets
from core import translation_data as td
from core.task import ConfigError, Task, spec
from papers.bahdanau import model as model_lib


@functools.lru_cache(maxsize=4)
def _pairs(data_root: str, corpus: str, english: str, wmt14_pair: str, max_examples: int | None):
  del data_root  # part of the cache key only
  if corpus == "bible":
    return td.bible_pairs(english)
  if corpus == "wmt14":
    return td.wmt14_pairs(wmt14_pair, max_examples)
  raise ConfigError(f"config.data.corpus must be 'bible' or 'wmt14', got {corpus!r}")


class TranslationTask(Task):

  def __init__(self, config):
    super().__init__(config)
    m, d = config.model, config.data
    for name in ("max_len", "eval_examples", "eval_batch_size", "beam_size", "max_words"):
      if int(d[name]) < 1:
        raise ConfigError(f"config.data.{name} must be positive, got {d[name]}")
    self.model = model_lib.RNNSearch(
        src_vocab=m.src_vocab_size, tgt_vocab=m.tgt_vocab_size, embed=m.embed, hidden=m.hidden,
        align=m.align, maxout=m.maxout, attention=m.attention, dtype=self.dtype)
    self.max_len = int(d.max_len)
    self._greedy = jax.jit(lambda v, src: model_lib.greedy_decode(self.model, v, src, self.max_len))
    self._beam = jax.jit(lambda v, src: model_lib.beam_search(
        self.model, v, src, self.max_len, int(d.beam_size))[0][:, 0])

  # ---- data -----------------------------------------------------------------
  def _splits(self):
    d = self.config.data
    return _pairs(datasets.data_root(), d.corpus, d.get("english", "kjv"), d.get("wmt14_pair", "fr-en"),
                  d.get("max_examples", None))

  def check_data(self):
    self._splits()

  @functools.cached_property
  def vocabs(self) -> tuple[td.SubwordVocab, td.SubwordVocab]:
    """(English, foreign) sentencepiece models trained on the train split."""
    d, m = self.config.data, self.config.model
    name = d.corpus + (f"_{d.english}" if d.corpus == "bible" else f"_{d.wmt14_pair}")
    # A small corpus may give fewer pieces than the model's vocabulary: the spare rows are
    # never targets, and decoding skips them.
    return td.corpus_vocabs(name, self._splits()["train"], (m.src_vocab_size, m.tgt_vocab_size))

  def _source(self, split: str, truncate: bool) -> td.TranslationSource:
    pairs = self._splits()[split]
    if split == "train":
      pairs = td.within_words(pairs, int(self.config.data.max_words))
    return td.TranslationSource(pairs, *self.vocabs, self.max_len, truncate=truncate)

  def train_examples(self):
    return self._source("train", truncate=False)

  def batch_spec(self):
    b, n = self.config.batch_size, self.max_len
    return {name: spec((b, n), np.int32) for name in ("src", "tgt_in", "tgt_out")}

  def eval_batches(self):
    """All valid pairs (cut to max_len), in batches of eval_batch_size; the last is padded
    with empty rows, which weigh nothing."""
    source = self._source("valid", truncate=True)
    size = int(self.config.data.eval_batch_size)
    arrays = {"src": source.src, "tgt_in": source.tgt_in, "tgt_out": source.tgt_out}
    for start in range(0, len(source), size):
      batch = {k: v[start:start + size] for k, v in arrays.items()}
      pad = size - len(batch["src"])
      yield {k: np.pad(v, ((0, pad), (0, 0))) for k, v in batch.items()}

  # ---- model ----------------------------------------------------------------
  def init(self, rng):
    tokens = jnp.zeros((2, self.max_len), jnp.int32)
    return self.model.init(rng, tokens, tokens)

  def _token_losses(self, variables, batch, rng, train):
    logits, updates = self.apply(variables, batch["src"], batch["tgt_in"], train=train, rng=rng)
    targets = batch["tgt_out"]
    weights = (targets != model_lib.PAD).astype(jnp.float32)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, targets) * weights
    correct = (logits.argmax(-1) == targets).astype(jnp.float32) * weights
    return losses, correct, weights, updates

  def loss(self, variables, batch, rng, *, train):
    losses, correct, weights, updates = self._token_losses(variables, batch, rng, train)
    tokens = jnp.maximum(weights.sum(), 1.0)
    return losses.sum() / tokens, {"token_accuracy": correct.sum() / tokens}, updates

  def eval_metrics(self, variables, batch):
    """Per-piece sums: padding rows and positions weigh nothing."""
    losses, correct, weights, _ = self._token_losses(variables, batch, None, False)
    return {"loss": (losses.sum(), weights.sum()), "token_accuracy": (correct.sum(), weights.sum())}

  # ---- evaluation -----------------------------------------------------------
  def test_examples(self):
    """(pairs, src arrays) of the evaluated test verses: `eval_examples` evenly spaced ones."""
    pairs = self._splits()["test"]
    count = min(int(self.config.data.eval_examples), len(pairs))
    chosen = [pairs[i] for i in np.linspace(0, len(pairs) - 1, count).round().astype(int)]
    source = td.TranslationSource(chosen, *self.vocabs, self.max_len, truncate=True)
    return source.pairs, source.src

  def translate(self, variables, src, beam: bool = True) -> list[str]:
    """Detokenised translations of the source arrays (N, max_len), in padded batches."""
    size = int(self.config.data.eval_batch_size)
    decode = self._beam if beam else self._greedy
    out = []
    for start in range(0, len(src), size):
      chunk = src[start:start + size]
      tokens = np.asarray(decode(variables, np.pad(chunk, ((0, size - len(chunk)), (0, 0)))))
      out.extend(self.vocabs[1].decode(row) for row in tokens[:len(chunk)])
    return out

  def evaluate(self, variables, step):
    pairs, src = self.test_examples()
    sources, references = [p[0] for p in pairs], [p[1] for p in pairs]
    greedy = self.translate(variables, src, beam=False)
    beam = self.translate(variables, src, beam=True)
    return {"bleu": td.corpus_bleu(beam, references),
            "bleu_greedy": td.corpus_bleu(greedy, references),
            **td.bleu_by_length(beam, references, sources)}
