"""CTC decoding: greedy, and prefix beam search with a character n-gram language model.

Beam search ranks a transcription y by the paper's objective (Amodei et al. 2016, section 7,
eq. 2):   Q(y) = log p_ctc(y | x) + alpha log p_lm(y) + beta word_count(y)
where p_ctc sums over every alignment of y (prefix beam search, Hannun et al. 2014, keeps
the blank- and non-blank-ending alignment masses of each prefix), p_lm is a character
n-gram model with Witten-Bell smoothing, and word_count(y) is the number of words.
Labels: 0 is the CTC blank, k >= 1 is data.ALPHABET[k - 1].
"""
from __future__ import annotations

import collections
import math

import numpy as np

from papers.deep_speech2.data import ALPHABET, BLANK

SPACE = ALPHABET.index(" ") + 1


def greedy(log_probs: np.ndarray, length: int | None = None) -> list[int]:
  """Best label per frame, repeats collapsed, blanks removed."""
  best = np.asarray(log_probs)[:length].argmax(-1)
  out, previous = [], BLANK
  for k in best:
    if k != previous and k != BLANK:
      out.append(int(k))
    previous = k
  return out


class CharNGram:
  """Witten-Bell interpolated character n-gram over the alphabet plus an end symbol.

  P(c | h) = (C(h c) + N1+(h .) P(c | h')) / (C(h) + N1+(h .)), h' = h without its first
  character, down to the uniform distribution. Sentences start with `order - 1` spaces.
  """
  END = "$"

  def __init__(self, sentences, order: int = 5):
    self.order = order
    self.symbols = ALPHABET + self.END
    self.counts = collections.Counter()      # n-gram -> count, every n <= order
    self.context = collections.Counter()     # history -> count of continuations
    self.types = collections.Counter()       # history -> distinct continuations
    pad = " " * (order - 1)
    for s in sentences:
      text = pad + s + self.END
      for n in range(1, order + 1):
        self.counts.update(text[i:i + n] for i in range(order - n, len(text) - n + 1))
    for gram in self.counts:
      self.context[gram[:-1]] += self.counts[gram]
      self.types[gram[:-1]] += 1
    self._cache = {}

  def prob(self, history: str, symbol: str) -> float:
    history = (" " * (self.order - 1) + history)[-(self.order - 1):] if self.order > 1 else ""
    key = (history, symbol)
    if key not in self._cache:
      p = 1.0 / len(self.symbols)
      for n in range(0, len(history) + 1):
        h = history[len(history) - n:]
        total, types = self.context[h], self.types[h]
        if total:
          p = (self.counts[h + symbol] + types * p) / (total + types)
      self._cache[key] = p
    return self._cache[key]

  def log_prob(self, history: str, symbol: str) -> float:
    return math.log(self.prob(history, symbol))

  def sentence_log_prob(self, text: str, end: bool = False) -> float:
    total = sum(self.log_prob(text[:i], c) for i, c in enumerate(text))
    return total + (self.log_prob(text, self.END) if end else 0.0)


def _logsumexp(a: float, b: float) -> float:
  if a == -math.inf:
    return b
  if b == -math.inf:
    return a
  m = max(a, b)
  return m + math.log(math.exp(a - m) + math.exp(b - m))


def word_count(labels) -> int:
  return len([w for w in "".join(ALPHABET[k - 1] for k in labels).split(" ") if w])


def prefix_beam_search(log_probs: np.ndarray, beam: int = 16, lm: CharNGram | None = None,
                       alpha: float = 0.0, beta: float = 0.0, length: int | None = None,
                       prune: float = -12.0) -> list[tuple[tuple[int, ...], float]]:
  """CTC prefix beam search; returns [(labels, Q)] best first, Q as in the module docstring.

  Each prefix carries (log p_blank_end, log p_nonblank_end); the LM and word bonus are
  applied once per emitted character (a word counts when its first letter is emitted).
  Characters whose frame log-probability is below `prune` are skipped (0 keeps all).
  """
  log_probs = np.asarray(log_probs, np.float64)[:length]
  vocab = log_probs.shape[1]
  beams = {(): (0.0, -math.inf)}
  bonus = {(): 0.0}           # alpha log p_lm + beta words of each prefix

  def extension_bonus(prefix, k):
    if lm is None and beta == 0.0:
      return 0.0
    text = "".join(ALPHABET[j - 1] for j in prefix)
    char = ALPHABET[k - 1]
    value = alpha * lm.log_prob(text, char) if lm is not None else 0.0
    starts_word = char != " " and (not text or text[-1] == " ")
    return value + (beta if starts_word else 0.0)

  for frame in log_probs:
    nxt = collections.defaultdict(lambda: (-math.inf, -math.inf))
    candidates = [k for k in range(vocab) if k == BLANK or not prune or frame[k] >= prune]
    for prefix, (pb, pnb) in beams.items():
      total = _logsumexp(pb, pnb)
      for k in candidates:
        p = frame[k]
        if k == BLANK:
          b, nb = nxt[prefix]
          nxt[prefix] = (_logsumexp(b, total + p), nb)
          continue
        last = prefix[-1] if prefix else None
        extended = prefix + (k,)
        if extended not in bonus:
          bonus[extended] = bonus[prefix] + extension_bonus(prefix, k)
        b, nb = nxt[extended]
        # A repeated character needs a blank between: only blank-ending mass extends it.
        nxt[extended] = (b, _logsumexp(nb, (pb if k == last else total) + p))
        if k == last:   # the repeat collapses into the same prefix
          b, nb = nxt[prefix]
          nxt[prefix] = (b, _logsumexp(nb, pnb + p))
    alive = [kv for kv in nxt.items() if _logsumexp(*kv[1]) > -math.inf]  # unreachable repeats
    ranked = sorted(alive, key=lambda kv: _logsumexp(*kv[1]) + bonus[kv[0]], reverse=True)
    beams = dict(ranked[:beam])
  scored = [(prefix, _logsumexp(pb, pnb) + bonus[prefix]) for prefix, (pb, pnb) in beams.items()]
  return sorted(scored, key=lambda kv: kv[1], reverse=True)
