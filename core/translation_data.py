"""Parallel text for machine translation: the Bible offline, WMT14 online, subwords, BLEU.

- `bible_pairs(english)`: verse-aligned English (King James or World English Bible) and
  Spanish (Reina-Valera 1909), split by book so that test verses are unseen text:
      valid = Ruth, Jonah, Philippians, Titus    (282 pairs with the KJV, 282 with the WEB)
      test  = Joshua, Mark, Romans               (1,769 pairs; 1,766)
      train = the other 59 books                 (29,033 pairs; 29,029)
  Install: `python -m core.datasets bible` (needs Debian's python3-sword and the
  sword-text-kjv, sword-text-web and sword-text-sparv modules).
- `wmt14_pairs(pair)`: WMT14 through tensorflow-datasets, for machines with internet.
- `SubwordVocab`: a sentencepiece model trained on the train split only.
- `TranslationSource`: a grain random-access source of padded token arrays.
- `corpus_bleu`, `bleu_by_length`: sacrebleu BLEU on detokenised text, overall and by
  source length (Bahdanau et al. 2015, figure 2).

Pairs are always (english, foreign) = (source, target): both papers translate from English.
"""
from __future__ import annotations

import os
import tempfile
from typing import Sequence

import numpy as np

from core import datasets
from core.task import ConfigError, DataMissingError

Pair = tuple[str, str]

BIBLE_VALID_BOOKS = ("Ruth", "Jonah", "Phil", "Titus")  # OSIS book names
BIBLE_TEST_BOOKS = ("Josh", "Mark", "Rom")
BIBLE_ENGLISH = ("kjv", "web")


def _read_verses(name: str) -> dict[str, str]:
  path = os.path.join(datasets.bible_dir(), f"{name}.tsv")
  if not os.path.exists(path):
    raise DataMissingError(f"Bible text {path} not found; extract it with `python -m core.datasets "
                           f"bible` (needs `{datasets.BIBLE_APT}`)")
  with open(path, encoding="utf-8") as f:
    return dict(line.rstrip("\n").split("\t", 1) for line in f if "\t" in line)


def bible_pairs(english: str = "kjv") -> dict[str, list[Pair]]:
  """{"train", "valid", "test"} -> (english, spanish) verse pairs in canonical order.

  A pair is a verse present in both translations; the split is by book (module docstring).
  """
  if english not in BIBLE_ENGLISH:
    raise ConfigError(f"english must be one of {BIBLE_ENGLISH}, got {english!r}")
  source, target = _read_verses(english), _read_verses("rv1909")
  splits: dict[str, list[Pair]] = {"train": [], "valid": [], "test": []}
  for ref, text in source.items():  # dicts keep the files' canonical order
    if ref not in target:
      continue
    book = ref.split(".")[0]
    split = "valid" if book in BIBLE_VALID_BOOKS else "test" if book in BIBLE_TEST_BOOKS else "train"
    splits[split].append((text, target[ref]))
  return splits


def _text(value) -> str:
  return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def wmt14_pairs(pair: str = "de-en", max_examples: int | None = None) -> dict[str, list[Pair]]:
  """WMT14 (tfds `wmt14_translate/<xx>-en`) as (english, xx) pairs; needs internet to prepare.

  `pair` is "xx-en" or "en-xx" with xx in cs, de, fr, hi, ru; `max_examples` caps each split.
  """
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  import tensorflow_datasets.translate.wmt14  # pylint: disable=g-import-not-at-top,unused-import

  languages = pair.split("-")
  if len(languages) != 2 or "en" not in languages or languages[0] == languages[1]:
    raise ConfigError(f"pair must be 'xx-en' (e.g. 'de-en'), got {pair!r}")
  foreign = languages[0] if languages[1] == "en" else languages[1]
  name = f"wmt14_translate/{foreign}-en"
  splits = {}
  for split, tfds_split in (("train", "train"), ("valid", "validation"), ("test", "test")):
    try:
      source = tfds.data_source(name, split=tfds_split)
    except Exception as e:  # tfds raises many kinds when the data is neither prepared nor reachable
      raise DataMissingError(f"{name} is not available ({type(e).__name__}); prepare it on a "
                             f"machine with internet (tfds build {name})") from None
    n = len(source) if max_examples is None else min(len(source), max_examples)
    rows = _read_rows(source, n)
    splits[split] = [(_text(row["en"]), _text(row[foreign])) for row in rows]
  return splits


def _read_rows(source, n: int, chunk: int = 100_000) -> list:
  """Rows 0..n-1 of a tfds data source, in batched reads (single reads are slow)."""
  rows = []
  for start in range(0, n, chunk):
    keys = list(range(start, min(n, start + chunk)))
    try:
      rows.extend(source.__getitems__(keys))
    except TypeError:  # tfds.testing.mock_data's sources read one record at a time
      rows.extend(source[k] for k in keys)
  return rows


class SubwordVocab:
  """A sentencepiece unigram model with PAD=0, BOS=1, EOS=2, UNK=3."""

  PAD, BOS, EOS, UNK = 0, 1, 2, 3

  def __init__(self, model_path: str):
    import sentencepiece as spm  # pylint: disable=g-import-not-at-top
    self.path = model_path
    self._sp = spm.SentencePieceProcessor(model_file=model_path)

  @classmethod
  def train_or_load(cls, texts: Sequence[str], vocab_size: int, path: str) -> "SubwordVocab":
    """Loads the model at `path` (a `.model` file), or trains it on `texts` and saves it there.

    Training is deterministic (no sampling, one thread), so the same texts give the same
    model. A corpus too small for `vocab_size` pieces gets fewer pieces.
    """
    if not os.path.exists(path):
      import sentencepiece as spm  # pylint: disable=g-import-not-at-top
      os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
      with tempfile.TemporaryDirectory(dir=os.path.dirname(os.path.abspath(path))) as tmp:
        corpus = os.path.join(tmp, "corpus.txt")
        with open(corpus, "w", encoding="utf-8") as f:
          f.writelines(" ".join(t.split()) + "\n" for t in texts)
        prefix = os.path.join(tmp, "spm")
        spm.SentencePieceTrainer.train(
            input=corpus, model_prefix=prefix, vocab_size=vocab_size, model_type="unigram",
            character_coverage=1.0, pad_id=cls.PAD, bos_id=cls.BOS, eos_id=cls.EOS,
            unk_id=cls.UNK, hard_vocab_limit=False, num_threads=1, input_sentence_size=0,
            shuffle_input_sentence=False, minloglevel=2)
        os.replace(prefix + ".model", path)  # atomic: a concurrent reader sees all or nothing
    vocab = cls(path)
    if vocab.size > vocab_size:
      raise ConfigError(f"{path} has {vocab.size} pieces, more than vocab_size={vocab_size}; "
                        f"delete it or use another path")
    return vocab

  @property
  def size(self) -> int:
    return self._sp.get_piece_size()

  def encode(self, text: str) -> list[int]:
    return self._sp.encode(text)

  def decode(self, ids) -> str:
    """Text of `ids`; stops at the first EOS, skips PAD, BOS and ids past the vocabulary."""
    ids = [int(i) for i in ids]
    if self.EOS in ids:
      ids = ids[:ids.index(self.EOS)]
    return self._sp.decode([i for i in ids if i not in (self.PAD, self.BOS) and 0 <= i < self.size])

  def pieces(self, ids) -> list[str]:
    """The subword piece of each id (for plots), e.g. ["▁In", "▁the", "▁begin", "ning"]."""
    return [self._sp.id_to_piece(int(i)) for i in ids]

  def __getstate__(self):  # picklable (grain workers): reload from the file
    return {"path": self.path}

  def __setstate__(self, state):
    self.__init__(state["path"])


def within_words(pairs: Sequence[Pair], max_words: int) -> list[Pair]:
  """The pairs with at most `max_words` words on each side (the papers' training filter)."""
  return [(s, t) for s, t in pairs if len(s.split()) <= max_words and len(t.split()) <= max_words]


def corpus_vocabs(name: str, train: Sequence[Pair], sizes: tuple[int, int],
                  folder: str = "") -> tuple[SubwordVocab, SubwordVocab]:
  """(source, target) sentencepiece models of a corpus's train pairs, trained on first use and
  kept as `<folder>/<name>_{src,tgt}_<size>.model` (folder default: <data root>/vocab), so
  every package that translates the same corpus reads the same vocabularies."""
  folder = folder or os.path.join(datasets.data_root(), "vocab")
  return tuple(SubwordVocab.train_or_load([pair[side] for pair in train], int(size),
                                          os.path.join(folder, f"{name}_{label}_{int(size)}.model"))
               for side, (label, size) in enumerate(zip(("src", "tgt"), sizes)))


class TranslationSource:
  """Padded examples {"src", "tgt_in", "tgt_out"}: int32[max_len] each, for grain.

  src = source pieces; tgt_in = BOS + target pieces; tgt_out = target pieces + EOS; all
  PAD-padded. A pair whose source has more than `max_len` pieces, or whose target has
  more than `max_len - 1`, is dropped (`truncate=False`, the default, as the paper trains
  on sentences up to a length), or cut to fit (`truncate=True`). `pairs` keeps the pairs
  that were kept, aligned with the examples.
  """

  def __init__(self, pairs: Sequence[Pair], src_vocab: SubwordVocab, tgt_vocab: SubwordVocab,
               max_len: int, truncate: bool = False):
    if max_len < 2:
      raise ConfigError(f"max_len must be at least 2, got {max_len}")
    kept, rows = [], []
    for source, target in pairs:
      src, tgt = src_vocab.encode(source), tgt_vocab.encode(target)
      if len(src) > max_len or len(tgt) > max_len - 1:
        if not truncate:
          continue
        src, tgt = src[:max_len], tgt[:max_len - 1]
      kept.append((source, target))
      rows.append((src, tgt))
    n = len(rows)
    self.src = np.zeros((n, max_len), np.int32)
    self.tgt_in = np.zeros((n, max_len), np.int32)
    self.tgt_out = np.zeros((n, max_len), np.int32)
    for i, (src, tgt) in enumerate(rows):
      self.src[i, :len(src)] = src
      self.tgt_in[i, :len(tgt) + 1] = [SubwordVocab.BOS, *tgt]
      self.tgt_out[i, :len(tgt) + 1] = [*tgt, SubwordVocab.EOS]
    self.pairs = kept

  def __len__(self) -> int:
    return len(self.pairs)

  def __getitem__(self, index: int) -> dict[str, np.ndarray]:
    return {"src": self.src[index], "tgt_in": self.tgt_in[index], "tgt_out": self.tgt_out[index]}


def corpus_bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
  """sacrebleu corpus BLEU (13a tokenisation) of detokenised text, 0-100."""
  import sacrebleu  # pylint: disable=g-import-not-at-top
  if len(hypotheses) != len(references):
    raise ValueError(f"{len(hypotheses)} hypotheses for {len(references)} references")
  if not hypotheses:
    return 0.0
  return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)


def bleu_by_length(hypotheses: Sequence[str], references: Sequence[str], sources: Sequence[str],
                   edges: Sequence[int] = (10, 20, 30, 40, 50, 60)) -> dict[str, float]:
  """BLEU per bucket of source length in words: {"bleu_len_0_10": ..., ..., "bleu_len_60_inf"}.

  Bucket "bleu_len_a_b" holds sources of a < words <= b; the last, "bleu_len_<edge>_inf",
  those longer than the last edge. Empty buckets are left out.
  """
  bounds = [0, *edges, None]
  result = {}
  for low, high in zip(bounds[:-1], bounds[1:]):
    rows = [i for i, s in enumerate(sources)
            if len(s.split()) > low and (high is None or len(s.split()) <= high)]
    if rows:
      name = f"bleu_len_{low}_{'inf' if high is None else high}"
      result[name] = corpus_bleu([hypotheses[i] for i in rows], [references[i] for i in rows])
  return result
