"""core/translation_data.py: Bible split, WMT14 loader, subwords, padded examples, BLEU."""
import collections
import math
import os

import numpy as np
import pytest

from core import datasets
from core import translation_data as td
from core.task import ConfigError, DataMissingError

# Verses of a made-up three-translation Bible: (ref, kjv, rv1909); None = absent there.
VERSES = [
    ("Gen.1.1", "in the beginning god created the heaven", "en el principio crio dios los cielos"),
    ("Gen.1.2", "and the earth was without form", None),  # no Spanish: no pair
    ("Ruth.1.1", "now it came to pass in the days", "y aconteció en los días"),
    ("Josh.1.1", "now after the death of moses", "y aconteció después de la muerte de moisés"),
    ("Mark.1.1", "the beginning of the gospel", "principio del evangelio"),
    ("Rev.22.21", "the grace of our lord be with you all", "la gracia sea con todos vosotros"),
]


@pytest.fixture
def small_bible(tmp_path, monkeypatch):
  monkeypatch.setenv("READING_LIST_DATA", str(tmp_path))
  os.makedirs(tmp_path / "bible")
  for column, name in ((1, "kjv"), (2, "rv1909")):
    with open(tmp_path / "bible" / f"{name}.tsv", "w", encoding="utf-8") as f:
      f.writelines(f"{v[0]}\t{v[column]}\n" for v in VERSES if v[column] is not None)
  return tmp_path


def test_bible_pairs_split_by_book_in_canonical_order(small_bible):
  pairs = td.bible_pairs("kjv")
  assert pairs == {
      "train": [(VERSES[0][1], VERSES[0][2]), (VERSES[5][1], VERSES[5][2])],
      "valid": [(VERSES[2][1], VERSES[2][2])],
      "test": [(VERSES[3][1], VERSES[3][2]), (VERSES[4][1], VERSES[4][2])],
  }


def test_bible_pairs_missing_or_unknown_say_what_to_do(tmp_path, monkeypatch):
  monkeypatch.setenv("READING_LIST_DATA", str(tmp_path))
  with pytest.raises(DataMissingError, match="python -m core.datasets bible"):
    td.bible_pairs("kjv")
  with pytest.raises(ConfigError, match="kjv"):
    td.bible_pairs("nrsv")


def _real_bible_or_skip():
  if not os.path.exists(os.path.join(datasets.bible_dir(), "rv1909.tsv")):
    pytest.skip("the Bible is not extracted (python -m core.datasets bible)")


@pytest.mark.parametrize("english", ["kjv", "web"])
def test_real_bible_split_holds_whole_books_apart(english):
  _real_bible_or_skip()
  pairs = td.bible_pairs(english)

  def read(name):  # the files directly, independently of the loader
    with open(os.path.join(datasets.bible_dir(), f"{name}.tsv"), encoding="utf-8") as f:
      return dict(line.rstrip("\n").split("\t", 1) for line in f)
  source, target = read(english), read("rv1909")
  books = {"valid": ("Ruth", "Jonah", "Phil", "Titus"), "test": ("Josh", "Mark", "Rom")}
  expected = collections.defaultdict(list)
  for ref, text in source.items():
    if ref in target:
      book = ref.split(".")[0]
      split = next((s for s, names in books.items() if book in names), "train")
      expected[split].append((text, target[ref]))
  assert pairs == expected
  train_books = {ref.split(".")[0] for ref in source} - set(books["valid"] + books["test"])
  assert len(train_books) == 66 - 7
  # DATA.md: 31,084 aligned KJV-Spanish verses, 31,077 WEB-Spanish.
  assert sum(len(p) for p in pairs.values()) == {"kjv": 31084, "web": 31077}[english]
  assert len(pairs["test"]) == {"kjv": 1769, "web": 1766}[english]
  assert len(pairs["valid"]) == 282


def test_wmt14_pairs_read_tfds_with_english_first():
  tfds = pytest.importorskip("tensorflow_datasets")
  with tfds.testing.mock_data(num_examples=6):
    pairs = td.wmt14_pairs("de-en", max_examples=4)
    same = td.wmt14_pairs("en-de", max_examples=4)
    import tensorflow_datasets.translate.wmt14  # pylint: disable=g-import-not-at-top,unused-import
    rows = tfds.data_source("wmt14_translate/de-en", split="validation")
    expected = [(rows[i]["en"], rows[i]["de"]) for i in range(4)]
  assert pairs == same and set(pairs) == {"train", "valid", "test"}
  assert [len(p) for p in pairs.values()] == [4, 4, 4]
  assert pairs["valid"] == [tuple(td._text(x) for x in e) for e in expected]
  with pytest.raises(ConfigError):
    td.wmt14_pairs("de-fr")


CORPUS = [f"the {a} {b} went to the {c} and saw a {d}" for a in ("old", "young", "tall") for b in
          ("man", "woman", "child") for c in ("city", "house", "river") for d in ("dog", "bird")]


@pytest.fixture(scope="module")
def vocab(tmp_path_factory):
  return td.SubwordVocab.train_or_load(CORPUS, 40, str(tmp_path_factory.mktemp("spm") / "v.model"))


def test_subword_vocab_round_trips_and_keeps_the_special_ids(vocab, tmp_path):
  import sentencepiece as spm  # pylint: disable=g-import-not-at-top
  sp = spm.SentencePieceProcessor(model_file=vocab.path)
  assert [sp.id_to_piece(i) for i in range(4)] == ["<pad>", "<s>", "</s>", "<unk>"]
  assert 4 < vocab.size <= 40
  text = "the tall child went to the river and saw a bird"
  ids = vocab.encode(text)
  assert min(ids) > td.SubwordVocab.UNK and vocab.decode(ids) == text
  assert vocab.decode([1, *ids, 2, 5, 6]) == text  # BOS skipped, stops at EOS
  # Same texts, same model (deterministic training); an existing file is loaded, not retrained.
  again = td.SubwordVocab.train_or_load(CORPUS, 40, str(tmp_path / "w.model"))
  assert again.encode(text) == ids
  loaded = td.SubwordVocab.train_or_load(["zzz"], 40, vocab.path)
  assert loaded.encode(text) == ids
  with pytest.raises(ConfigError, match="vocab_size"):
    td.SubwordVocab.train_or_load(CORPUS, 5, vocab.path)


def test_translation_source_pads_shifts_and_drops_or_cuts_long_pairs(vocab):
  pairs = [("the old man", "a dog"), (CORPUS[0] + " " + CORPUS[1], "a bird"), ("a", CORPUS[2])]
  max_len = 12
  source = td.TranslationSource(pairs, vocab, vocab, max_len)
  lengths = [(len(vocab.encode(s)), len(vocab.encode(t))) for s, t in pairs]
  kept = [p for p, (ls, lt) in zip(pairs, lengths) if ls <= max_len and lt <= max_len - 1]
  assert source.pairs == kept and len(source) == len(kept) == 1
  example = source[0]
  src, tgt = vocab.encode(kept[0][0]), vocab.encode(kept[0][1])
  assert example["src"].tolist() == src + [0] * (max_len - len(src))
  assert example["tgt_in"].tolist() == [1] + tgt + [0] * (max_len - 1 - len(tgt))
  assert example["tgt_out"].tolist() == tgt + [2] + [0] * (max_len - 1 - len(tgt))
  assert all(a.dtype == np.int32 and a.shape == (max_len,) for a in example.values())
  cut = td.TranslationSource(pairs, vocab, vocab, max_len, truncate=True)
  assert len(cut) == 3 and cut.pairs == pairs
  assert cut[1]["src"].tolist() == vocab.encode(pairs[1][0])[:max_len]
  assert cut[2]["tgt_out"].tolist() == vocab.encode(pairs[2][1])[:max_len - 1] + [2]


def reference_bleu(hypotheses, references):
  """Papineni et al. (2002) corpus BLEU on whitespace tokens, written out."""
  matches, totals = np.zeros(4), np.zeros(4)
  hyp_len = ref_len = 0
  for h, r in zip(hypotheses, references):
    h, r = h.split(), r.split()
    hyp_len, ref_len = hyp_len + len(h), ref_len + len(r)
    for n in range(1, 5):
      hc = collections.Counter(tuple(h[i:i + n]) for i in range(len(h) - n + 1))
      rc = collections.Counter(tuple(r[i:i + n]) for i in range(len(r) - n + 1))
      matches[n - 1] += sum(min(c, rc[g]) for g, c in hc.items())
      totals[n - 1] += max(len(h) - n + 1, 0)
  brevity = min(1.0, math.exp(1 - ref_len / hyp_len))
  return 100 * brevity * math.exp(np.mean(np.log(matches / totals)))


HYPS = ["the cat sat on the mat today", "a dog ran in the big park", "he went to the old house now",
        "we saw the sea and the sun"]
REFS = ["the cat sat on a mat today", "the dog ran in the big park", "he went to the house now",
        "we saw the sea and the sun set"]


def test_corpus_bleu_matches_the_formula():
  assert td.corpus_bleu(HYPS, REFS) == pytest.approx(reference_bleu(HYPS, REFS), abs=1e-6)
  assert td.corpus_bleu(REFS, REFS) == pytest.approx(100.0)
  assert td.corpus_bleu([], []) == 0.0


def test_bleu_by_length_buckets_the_source_length_in_words():
  sources = ["one two three", "w " * 10, "w " * 11, "w " * 75]
  result = td.bleu_by_length(HYPS, REFS, sources)
  # 3 and 10 words: bucket (0, 10]; 11: (10, 20]; 75: past the last edge.
  assert result == pytest.approx({
      "bleu_len_0_10": reference_bleu(HYPS[:2], REFS[:2]),
      "bleu_len_10_20": reference_bleu(HYPS[2:3], REFS[2:3]),
      "bleu_len_60_inf": reference_bleu(HYPS[3:], REFS[3:])})
