"""The .lmz format: any byte string coded with a character LM and the arithmetic coder.

Tokens. The input is read as UTF-8 (invalid bytes kept as they are, PEP 383); a character
of the model's alphabet is one symbol, anything else is an escape: the symbol ESC followed
by each of its bytes coded uniformly (8 bits). The model's quantised distribution gives ESC
the minimum count, so an escape costs about log2(total) + 8 bits per byte; nothing is ever
outside what can be coded, and the bytes come back exactly.

Schedule. The token stream is cut into `rows` contiguous segments, coded in lockstep (one
batched model call advances every row). Each segment is coded in blocks of `block` tokens; a
block's probabilities come from a window that starts with the `context` tokens before it
(newlines before the segment's start): a prefill of those, then one cached step per token.
So every token is predicted from context..context+block-1 preceding tokens, inside the
window of positions the model was trained on. Encoder and decoder make the same calls with
the same arguments, so their float32 probabilities are bit-identical, and `coder.quantise`
turns them into the same integer tables on both sides.

File layout (big-endian): magic b"LMZ", version, model fingerprint (16 bytes), original length
in bytes, number of tokens, CRC-32 of the original, rows, context, block, log2 of the
frequency total; then the arithmetic code.
"""
from __future__ import annotations

import dataclasses
import math
import struct
import zlib

import numpy as np

from papers.kolmogorov import coder

MAGIC = b"LMZ"
VERSION = 1
HEADER = struct.Struct(">3sB16sQQIHHHB")
TOTAL_BITS = 16  # frequency total 2^16: a symbol costs at most 16 bits; quantisation loss ~K/2^16
MIN_SEGMENT = 2048  # tokens per row at least, before the batch grows


class FormatError(ValueError):
  """Not an .lmz file, a different model's, or damaged; the message is one line."""


@dataclasses.dataclass
class Stats:
  tokens: int = 0
  escapes: int = 0
  model_bits: float = 0.0      # -sum log2 p of the model's float probabilities (ESC: its table share)
  quantised_bits: float = 0.0  # -sum log2 (freq / total) of the tables actually coded with


class Vocabulary:
  """Bytes <-> tokens over a model's alphabet, with escapes."""

  def __init__(self, alphabet: str):
    self.alphabet = alphabet
    self.size = len(alphabet)
    self.esc = self.size
    self.index = {c: i for i, c in enumerate(alphabet)}
    self.pad = self.index.get("\n", 0)     # the token before a segment's first character
    self.stand_in = self.index.get(" ", 0)  # what the model reads for an escaped byte
    self.pieces = [c.encode("utf-8") for c in alphabet] + [bytes([b]) for b in range(256)]

  def tokenize(self, data: bytes) -> np.ndarray:
    """Events: i < size is alphabet symbol i; size + b is the escaped byte b."""
    events = []
    for char in data.decode("utf-8", errors="surrogateescape"):
      i = self.index.get(char)
      if i is None:
        events.extend(self.size + b for b in char.encode("utf-8", errors="surrogateescape"))
      else:
        events.append(i)
    return np.asarray(events, np.int64)

  def detokenize(self, events) -> bytes:
    return b"".join(self.pieces[e] for e in events)

  def model_tokens(self, events: np.ndarray) -> np.ndarray:
    return np.where(events < self.size, events, self.stand_in).astype(np.int32)


def _rows_for(n: int, max_rows: int) -> int:
  return max(1, min(max_rows, n // MIN_SEGMENT))


def _lockstep(model, rows: int, context: int, block: int, n: int, code_row):
  """Drives the model over `rows` segments of an n-token stream, block by block.

  code_row(probs [K] float32, i) codes (or decodes) token i of the stream and returns its
  model token; the calls happen in the same order, with the same probabilities, whichever
  direction the coder runs.
  """
  seg = -(-n // rows)
  window = context + block - 1
  if window > model.max_window:
    raise FormatError(f"context {context} + block {block} - 1 exceeds the model's trained window "
                      f"of {model.max_window}")
  starts = np.arange(rows) * seg
  lengths = np.clip(n - starts, 0, seg)
  tokens = np.full((rows, seg + context), model_pad(model), np.int32)  # [pad]*context + segment
  for k in range(-(-seg // block)):
    probs, cache = model.prefill(model.params, tokens[:, k * block:k * block + context], window)
    for j in range(block):
      i = k * block + j
      if i >= seg:
        break
      probs = np.asarray(probs)
      for r in range(rows):
        if i < lengths[r]:
          tokens[r, context + i] = code_row(probs[r], starts[r] + i)
      if j < block - 1:
        probs, cache = model.step(model.params, cache, tokens[:, context + i], context + j)


def default_window(model) -> tuple[int, int]:
  """(context, block): half the trained window of context; 64 + 64 for a model trained on 128."""
  context = model.max_window // 2
  return context, model.max_window - context


def warm_up(model, n: int, max_rows: int = 32) -> int:
  """Compiles the model's functions for an n-token stream's batch shape; returns its rows."""
  rows = _rows_for(n, max_rows)
  context, block = default_window(model)
  tokens = np.zeros((rows, context), np.int32)
  _, cache = model.prefill(model.params, tokens, context + block - 1)
  model.step(model.params, cache, tokens[:, 0], context)[0].block_until_ready()
  return rows


def model_pad(model) -> int:
  return Vocabulary(model.alphabet).pad


def _tables(probs: np.ndarray) -> np.ndarray:
  # ESC has probability 0 under the model: the quantiser's minimum count is its share.
  return coder.quantise(np.append(probs, np.float32(0)), 1 << TOTAL_BITS)


def compress(data: bytes, model, max_rows: int = 32, context: int = 0, block: int = 0,
             stats: Stats | None = None) -> bytes:
  """The .lmz file of `data` (context, block: 0 = `default_window`)."""
  if not context or not block:
    context, block = default_window(model)
  vocab = Vocabulary(model.alphabet)
  events = vocab.tokenize(data)
  n = len(events)
  rows = _rows_for(n, max_rows)
  header = HEADER.pack(MAGIC, VERSION, model.fingerprint, len(data), n, zlib.crc32(data), rows,
                       context, block, TOTAL_BITS)
  if n == 0:
    return header
  enc = coder.Encoder()
  model_tokens = vocab.model_tokens(events)
  stats = stats if stats is not None else Stats()
  stats.tokens += n

  def code_row(probs, i):
    cum = _tables(probs)
    total = int(cum[-1])
    e = int(events[i])
    s = min(e, vocab.esc)
    enc.encode(int(cum[s]), int(cum[s + 1]), total)
    stats.quantised_bits -= math.log2((cum[s + 1] - cum[s]) / total)
    if s == vocab.esc:
      enc.encode(e - vocab.size, e - vocab.size + 1, 256)
      stats.escapes += 1
      stats.quantised_bits += 8
      stats.model_bits += 8 - math.log2((cum[s + 1] - cum[s]) / total)
    else:
      stats.model_bits -= math.log2(max(float(probs[s]), 1e-45))
    return model_tokens[i]

  _lockstep(model, rows, context, block, n, code_row)
  return header + enc.finish()


def read_header(blob: bytes) -> dict:
  if len(blob) < HEADER.size or blob[:3] != MAGIC:
    raise FormatError("not an .lmz file (no LMZ header)")
  magic, version, fingerprint, size, n, crc, rows, context, block, total_bits = HEADER.unpack_from(blob)
  del magic
  if version != VERSION:
    raise FormatError(f"format version {version}; this decoder reads version {VERSION}")
  return dict(fingerprint=fingerprint, size=size, tokens=n, crc=crc, rows=rows, context=context,
              block=block, total_bits=total_bits)


def decompress(blob: bytes, model) -> bytes:
  head = read_header(blob)
  if head["fingerprint"] != model.fingerprint:
    raise FormatError(f"compressed with a different model (fingerprint {head['fingerprint'].hex()}); "
                      f"this checkpoint's is {model.fingerprint.hex()}: decode with the workdir "
                      f"that compressed it")
  if head["total_bits"] != TOTAL_BITS or not head["rows"]:
    raise FormatError("damaged header")
  vocab = Vocabulary(model.alphabet)
  n = head["tokens"]
  events = np.zeros(n, np.int64)
  if n:
    dec = coder.Decoder(blob[HEADER.size:])

    def code_row(probs, i):
      s = dec.decode(_tables(probs))
      if s == vocab.esc:
        cum = np.arange(257)
        events[i] = vocab.size + dec.decode(cum)
        return vocab.stand_in
      events[i] = s
      return s

    _lockstep(model, head["rows"], head["context"], head["block"], n, code_row)
  data = vocab.detokenize(events)
  if len(data) != head["size"] or zlib.crc32(data) != head["crc"]:
    raise FormatError("the decoded data fail the length/CRC-32 check: the file is damaged")
  return data
