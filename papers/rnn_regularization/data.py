"""Word-level corpora as the paper uses them: Penn Treebank (Mikolov's preprocessed files) or,
offline, the Shakespeare texts of core.datasets put through the same preprocessing.

Both give a `Corpus` of int32 token ids (train, valid, test) and the vocabulary; `load_corpus`
picks one by name (`config.data.corpus`: "ptb" | "shakespeare").

- PTB: the canonical ptb.{train,valid,test}.txt of Mikolov's simple-examples tarball, fetched
  into `<data_root>/ptb` by `python -m papers.rnn_regularization.data ptb`. Read as the paper's
  code reads them: every newline becomes "<eos>", then split on white space; the files are
  already lower-cased, numbers are "N" and rare words "<unk>" (10,000 words in all).
- Shakespeare: lower-cased, words are runs of letters (inner apostrophes kept: "kept'st"),
  numbers become "N", punctuation is dropped, "<eos>" ends every line that has a word; the
  token stream is cut, at line ends, into contiguous train / valid / test parts in PTB's
  proportions; the vocabulary is the 9,998 most frequent training words plus "<eos>" and "<unk>".
"""
from __future__ import annotations

import collections
import os
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from typing import NamedTuple, Sequence

import numpy as np

from core.datasets import data_root
from core.task import ConfigError, DataMissingError

EOS, UNK, NUMBER = "<eos>", "<unk>", "N"
PTB_URL = "http://www.fit.vutbr.cz/~imikolov/rnnlm/simple-examples.tgz"
PTB_SPLITS = ("train", "valid", "test")
# PTB's tokens (words + <eos>): 929,589 / 73,760 / 82,430, i.e. 85.6% / 6.8% / 7.6%.
PTB_FRACTIONS = (0.856, 0.068, 0.076)
# Training tokens of each corpus (measured), so that configs turn epochs into steps without data.
TRAIN_TOKENS = {"ptb": 929_589, "shakespeare": 1_137_402}
CORPORA = tuple(TRAIN_TOKENS)

_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*|\d+(?:[.,:/]\d+)*")


class Corpus(NamedTuple):
  train: np.ndarray
  valid: np.ndarray
  test: np.ndarray
  vocab: tuple[str, ...]


def tokenize_line(line: str) -> list[str]:
  """Lower-cased words of one line; every number is the token N, as in PTB."""
  return [NUMBER if w[0].isdigit() else w for w in _WORD.findall(line.lower())]


def tokenize(text: str) -> list[str]:
  """The words of every line that has one, each line closed by <eos>."""
  tokens = []
  for line in text.splitlines():
    words = tokenize_line(line)
    if words:
      tokens.extend(words)
      tokens.append(EOS)
  return tokens


def build_vocab(tokens: Sequence[str], size: int) -> tuple[str, ...]:
  """<eos>, <unk> and the size - 2 most frequent other words (ties alphabetical)."""
  if size < 3:
    raise ConfigError(f"config.model.vocab_size must be >= 3 (<eos>, <unk> and a word), got {size}")
  counts = collections.Counter(t for t in tokens if t not in (EOS, UNK))
  words = sorted(counts, key=lambda w: (-counts[w], w))[:size - 2]
  return (EOS, UNK, *words)


def encode(tokens: Sequence[str], vocab: Sequence[str]) -> np.ndarray:
  index = {w: i for i, w in enumerate(vocab)}
  unk = index[UNK]
  return np.fromiter((index.get(t, unk) for t in tokens), np.int32, len(tokens))


def split_at_lines(tokens: Sequence[str], fractions: Sequence[float]) -> list[list[str]]:
  """Contiguous parts of about `fractions` of the tokens each, cut after an <eos>."""
  cuts, total, start = [], 0.0, 0
  for fraction in fractions[:-1]:
    total += fraction
    cut = max(int(round(total * len(tokens))), start)
    while cut < len(tokens) and tokens[cut - 1] != EOS:  # move the cut to the next line end
      cut += 1
    cuts.append(cut)
    start = cut
  bounds = [0, *cuts, len(tokens)]
  return [list(tokens[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]


def corpus_from_text(text: str, vocab_size: int, fractions: Sequence[float] = PTB_FRACTIONS) -> Corpus:
  """The offline preprocessing: tokenize, split by contiguous text, vocabulary from train."""
  parts = split_at_lines(tokenize(text), fractions)
  vocab = build_vocab(parts[0], vocab_size)
  return Corpus(*(encode(p, vocab) for p in parts), vocab)


def shakespeare_corpus(vocab_size: int = 10_000) -> Corpus:
  from core.datasets import shakespeare_text  # pylint: disable=g-import-not-at-top
  return corpus_from_text(shakespeare_text(), vocab_size)


# ---- Penn Treebank ---------------------------------------------------------
def ptb_dir() -> str:
  return os.path.join(data_root(), "ptb")


def read_ptb_tokens(path: str) -> list[str]:
  """As the paper's code reads a PTB file: newlines become <eos>, then split on white space."""
  with open(path, encoding="utf-8") as f:
    return f.read().replace("\n", f" {EOS} ").split()


def ptb_corpus(directory: str | None = None) -> Corpus:
  """PTB with the vocabulary of its training file (10,000 words, <unk> and <eos> among them)."""
  directory = directory or ptb_dir()
  paths = [os.path.join(directory, f"ptb.{split}.txt") for split in PTB_SPLITS]
  missing = [p for p in paths if not os.path.isfile(p)]
  if missing:
    raise DataMissingError(
        f"Penn Treebank files not found in {directory}; fetch them (internet needed) with "
        f"`python -m papers.rnn_regularization.data ptb` (or set READING_LIST_DATA), or train on the "
        f"offline corpus with --config.data.corpus=shakespeare")
  parts = [read_ptb_tokens(p) for p in paths]
  vocab = build_vocab(parts[0], len(set(parts[0]) | {UNK, EOS}))
  unknown = sorted(set(parts[1] + parts[2]) - set(vocab))
  if unknown:  # the canonical files share one vocabulary; anything else is not PTB as the paper used it
    raise DataMissingError(f"the PTB files in {directory} are not the canonical ones: valid/test have "
                           f"words outside the training vocabulary ({', '.join(unknown[:5])}, ...); "
                           f"delete them and re-run `python -m papers.rnn_regularization.data ptb`")
  return Corpus(*(encode(p, vocab) for p in parts), vocab)


def fetch_ptb(url: str = PTB_URL) -> str:
  """Downloads the simple-examples tarball and keeps its three ptb.*.txt files."""
  target = ptb_dir()
  if all(os.path.isfile(os.path.join(target, f"ptb.{s}.txt")) for s in PTB_SPLITS):
    return target
  os.makedirs(target, exist_ok=True)
  with tempfile.TemporaryDirectory() as tmp:
    archive = os.path.join(tmp, "simple-examples.tgz")
    with urllib.request.urlopen(url) as response, open(archive, "wb") as f:
      shutil.copyfileobj(response, f)
    with tarfile.open(archive) as tar:
      for split in PTB_SPLITS:
        name = f"ptb.{split}.txt"
        member = next((m for m in tar.getmembers() if m.name.endswith(f"/data/{name}")), None)
        if member is None:
          raise RuntimeError(f"{url} has no data/{name}")
        with tar.extractfile(member) as src, open(os.path.join(target, name), "wb") as dst:
          shutil.copyfileobj(src, dst)
  return target


def load_corpus(name: str, vocab_size: int) -> Corpus:
  """The corpus `name` ("ptb" | "shakespeare"); its vocabulary must be `vocab_size` words."""
  if name == "ptb":
    corpus = ptb_corpus()
  elif name == "shakespeare":
    corpus = shakespeare_corpus(vocab_size)
  else:
    raise ConfigError(f"config.data.corpus must be one of {', '.join(CORPORA)}, got {name!r}")
  if len(corpus.vocab) != vocab_size:
    raise ConfigError(f"the {name} corpus has {len(corpus.vocab)} words but config.model.vocab_size "
                      f"is {vocab_size}; set --config.model.vocab_size={len(corpus.vocab)}")
  return corpus


# ---- truncated BPTT over contiguous streams ----------------------------------
def streams(ids: np.ndarray, num_streams: int) -> np.ndarray:
  """[num_streams, L]: the token stream cut into contiguous rows (the paper's batching)."""
  length = len(ids) // num_streams
  if length < 2:
    raise ConfigError(f"{len(ids)} tokens cannot fill {num_streams} streams")
  return np.asarray(ids[:num_streams * length], np.int32).reshape(num_streams, length)


def epoch_steps(num_tokens: int, batch_size: int, unroll: int) -> int:
  """Windows of `unroll` steps per pass over `batch_size` streams (as ptb_word_lm's epoch_size)."""
  return (num_tokens // batch_size - 1) // unroll


def window(rows: np.ndarray, index: int, unroll: int) -> dict[str, np.ndarray]:
  """The `index`-th window of every stream: inputs and the next tokens as targets."""
  start = index * unroll
  return {"inputs": rows[:, start:start + unroll], "targets": rows[:, start + 1:start + unroll + 1]}


def scored_streams(ids: np.ndarray, num_streams: int, unroll: int) -> dict[str, np.ndarray]:
  """A whole split as `num_streams` contiguous rows for evaluation, padded to whole windows.

  Row i reads tokens [iL, (i+1)L) and predicts [iL+1, (i+1)L+1), L = (N-1) // num_streams, so
  every token but the first (and the < num_streams left over) is scored exactly once.
  """
  length = (len(ids) - 1) // num_streams
  if length < 1:
    raise ConfigError(f"a split of {len(ids)} tokens cannot fill {num_streams} evaluation streams")
  n = num_streams * length
  inputs = np.asarray(ids[:n], np.int32).reshape(num_streams, length)
  targets = np.asarray(ids[1:n + 1], np.int32).reshape(num_streams, length)
  padded = -(-length // unroll) * unroll
  pad = ((0, 0), (0, padded - length))
  weights = np.pad(np.ones_like(inputs, np.float32), pad)
  return {"inputs": np.pad(inputs, pad), "targets": np.pad(targets, pad), "weights": weights}


def main(argv):
  names = argv or ["ptb"]
  for name in names:
    if name != "ptb":
      print(f"error: unknown corpus {name!r}: only ptb is fetched here (Shakespeare: "
            f"`python -m core.datasets shakespeare`)", file=sys.stderr)
      return 2
    print(f"ptb: {fetch_ptb()}")
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
