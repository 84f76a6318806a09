"""An exact integer arithmetic coder (Witten, Neal & Cleary 1987, "Arithmetic coding for data
compression", CACM 30(6)) and the quantiser that turns float probabilities into the integer
frequencies it codes with.

The coder keeps a 32-bit interval [low, high]; each symbol narrows it to its share
cum_low/total .. cum_high/total, and every leading bit that low and high agree on is sent.
When the interval straddles the middle while shrinking (low >= 1/4, high < 3/4 of the range)
the bit is not yet known: it is counted as pending (the "underflow" case) and sent, inverted,
after the next decided bit. All arithmetic is on Python integers, so encoding and decoding
agree exactly on any machine. A message of symbols with probabilities p_i costs at most
-sum log2 p_i + 2 bits, plus the loss from quantising p_i to integers (see `quantise`).
"""
from __future__ import annotations

import numpy as np

BITS = 32
FULL = (1 << BITS) - 1
HALF = 1 << (BITS - 1)
QUARTER = 1 << (BITS - 2)
MAX_TOTAL = QUARTER  # a frequency total above this could give a symbol an empty interval


def quantise(probs: np.ndarray, total: int) -> np.ndarray:
  """Cumulative integer frequencies [..., K + 1] (from 0) of float probabilities [..., K].

  freq_k = floor(p_k * (total - K)) + 1: every symbol keeps a count of at least 1 (so anything
  can still be coded, at most log2(total) bits), and the counts sum to at most `total`. Pure
  numpy on the given float32 values, so the same probabilities give the same table everywhere.
  """
  probs = np.asarray(probs, np.float32)
  k = probs.shape[-1]
  if not k < total <= MAX_TOTAL:
    raise ValueError(f"the frequency total must be in ({k}, {MAX_TOTAL}], got {total}")
  scaled = probs.astype(np.float64) * float(total - k)
  freqs = np.floor(np.clip(scaled, 0.0, float(total - k))).astype(np.int64) + 1
  cum = np.zeros(probs.shape[:-1] + (k + 1,), np.int64)
  np.cumsum(freqs, axis=-1, out=cum[..., 1:])
  return cum


class Encoder:
  """Arithmetic encoder: `encode(cum_low, cum_high, total)` per symbol, then `finish()` -> bytes."""

  def __init__(self):
    self.low, self.high, self.pending = 0, FULL, 0
    self.bits: list[int] = []

  def _emit(self, bit: int):
    self.bits.append(bit)
    if self.pending:
      self.bits.extend([bit ^ 1] * self.pending)
      self.pending = 0

  def encode(self, cum_low: int, cum_high: int, total: int):
    if not 0 <= cum_low < cum_high <= total <= MAX_TOTAL:
      raise ValueError(f"bad interval {cum_low}..{cum_high} of {total}")
    span = self.high - self.low + 1
    self.high = self.low + span * cum_high // total - 1
    self.low = self.low + span * cum_low // total
    while True:
      if self.high < HALF:
        self._emit(0)
      elif self.low >= HALF:
        self._emit(1)
        self.low -= HALF
        self.high -= HALF
      elif self.low >= QUARTER and self.high < HALF + QUARTER:
        self.pending += 1  # the next bit is not decided yet (underflow)
        self.low -= QUARTER
        self.high -= QUARTER
      else:
        break
      self.low = 2 * self.low
      self.high = 2 * self.high + 1

  def finish(self) -> bytes:
    # Two more bits pick a point inside [low, high] whatever bits the decoder reads after them.
    self.pending += 1
    self._emit(0 if self.low < QUARTER else 1)
    return np.packbits(np.asarray(self.bits, np.uint8)).tobytes()


class Decoder:
  """Arithmetic decoder over the bytes of `Encoder.finish()` (reads zeros past the end)."""

  def __init__(self, data: bytes):
    self.bits = np.unpackbits(np.frombuffer(data, np.uint8)).tolist()
    self.position = 0
    self.low, self.high, self.value = 0, FULL, 0
    for _ in range(BITS):
      self.value = 2 * self.value + self._bit()

  def _bit(self) -> int:
    position = self.position
    self.position += 1
    return self.bits[position] if position < len(self.bits) else 0

  def target(self, total: int) -> int:
    """The cumulative count in [0, total) that the next symbol's interval contains."""
    span = self.high - self.low + 1
    return ((self.value - self.low + 1) * total - 1) // span

  def consume(self, cum_low: int, cum_high: int, total: int):
    """Narrows to the decoded symbol's interval, exactly as the encoder did."""
    span = self.high - self.low + 1
    self.high = self.low + span * cum_high // total - 1
    self.low = self.low + span * cum_low // total
    while True:
      if self.high < HALF:
        pass
      elif self.low >= HALF:
        self.low -= HALF
        self.high -= HALF
        self.value -= HALF
      elif self.low >= QUARTER and self.high < HALF + QUARTER:
        self.low -= QUARTER
        self.high -= QUARTER
        self.value -= QUARTER
      else:
        break
      self.low = 2 * self.low
      self.high = 2 * self.high + 1
      self.value = 2 * self.value + self._bit()

  def decode(self, cum: np.ndarray) -> int:
    """The symbol of a cumulative table [K + 1] (from 0), consumed."""
    total = int(cum[-1])
    symbol = int(np.searchsorted(cum, self.target(total), side="right")) - 1
    self.consume(int(cum[symbol]), int(cum[symbol + 1]), total)
    return symbol


def encode_all(symbols, cums) -> bytes:
  """Codes symbols[i] with cumulative table cums[i] (or one table for all)."""
  enc = Encoder()
  cums = np.asarray(cums)
  for i, s in enumerate(symbols):
    cum = cums if cums.ndim == 1 else cums[i]
    enc.encode(int(cum[s]), int(cum[s + 1]), int(cum[-1]))
  return enc.finish()


def decode_all(data: bytes, n: int, cums) -> list[int]:
  dec = Decoder(data)
  cums = np.asarray(cums)
  return [dec.decode(cums if cums.ndim == 1 else cums[i]) for i in range(n)]
