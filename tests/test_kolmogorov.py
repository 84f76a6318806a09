"""papers/kolmogorov: the arithmetic coder, the .lmz codec, the LM's cached forward pass, the CLI, NCD.

- the coder decodes exactly what it encoded, for random, skewed, constant and exhaustive
  streams, changing tables and the empty stream, in at most the ideal -sum log2 p + 2 bits
  (plus the last byte); quantised tables give every symbol a count and stay within the total;
- the codec round-trips any bytes (out-of-alphabet characters, invalid UTF-8, empty) through a
  small context model, over one row and several, and the decoder feeds the model the same
  tokens as the encoder;
- the LM's cached prefill/step equal TransformerLM.apply;
- the CLI compresses and decompresses a file with a checkpoint written here, and a file of
  another model, a damaged file, or a non-.lmz file each give one error line and no output;
- NCD(x, x) is small, and two samples of one source are nearer than samples of two sources.
"""
import os

import numpy as np
import pytest

from papers.kolmogorov import codec, coder, ncd

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# ---- the arithmetic coder -----------------------------------------------------------------

def _round_trip(symbols, cums):
  data = coder.encode_all(symbols, cums)
  assert coder.decode_all(data, len(symbols), cums) == list(symbols)
  return data


def _ideal_bits(symbols, cums):
  cums = np.asarray(cums)
  tables = cums if cums.ndim == 2 else np.broadcast_to(cums, (len(symbols), len(cums)))
  return sum(-np.log2((t[s + 1] - t[s]) / t[-1]) for s, t in zip(symbols, tables))


@pytest.mark.parametrize("case", ["random", "skewed", "runs", "constant", "every", "empty", "big_total"])
def test_coder_round_trip_within_two_bits_of_the_ideal(case):
  rng = np.random.default_rng(0)
  k, total = 60, 1 << 16
  probs = rng.dirichlet(np.full(k, 0.5))
  n = 5000
  if case == "skewed":  # one symbol almost certain: many symbols per output bit, then a rare one
    probs = np.full(k, 1e-9)
    probs[7] = 1.0
    symbols = np.where(rng.random(n) < 0.002, 3, 7)
  elif case == "runs":
    symbols = np.repeat(rng.integers(0, k, 50), rng.integers(1, 400, 50))
  elif case == "constant":
    symbols = np.full(n, 0)  # the least likely symbol of a table, over and over
    probs = np.append([0.0], np.full(k - 1, 1 / (k - 1)))
  elif case == "every":
    symbols = np.tile(np.arange(k), 20)
  elif case == "empty":
    symbols = np.zeros(0, int)
  else:
    symbols = rng.choice(k, n, p=probs)
  if case == "big_total":
    total = coder.MAX_TOTAL
  cum = coder.quantise(probs.astype(np.float32), total)
  data = _round_trip(symbols, cum)
  ideal = _ideal_bits(symbols, cum)
  assert 8 * len(data) <= ideal + 2 + 8, (len(data), ideal)
  assert 8 * len(data) >= ideal - 1e-6  # nothing beats the model's own code length


def test_coder_with_a_new_table_for_every_symbol():
  rng = np.random.default_rng(1)
  probs = rng.dirichlet(np.full(20, 0.2), size=3000).astype(np.float32)
  cums = coder.quantise(probs, 1 << 16)
  symbols = [rng.choice(20, p=p / p.sum()) for p in probs.astype(np.float64)]
  data = _round_trip(symbols, cums)
  assert 8 * len(data) <= _ideal_bits(symbols, cums) + 10
  # ... and within a few bytes of -sum log2 p of the float model (quantisation costs ~K/2^16).
  model_bits = -sum(np.log2(p[s]) for p, s in zip(probs.astype(np.float64), symbols))
  assert 8 * len(data) <= model_bits * 1.002 + 16


def test_quantise_keeps_every_symbol_codable_and_within_the_total():
  probs = np.array([[1.0, 0.0, 0.0, 0.0], [0.25] * 4, [1e-30, 0.5, 0.5, 0.0]], np.float32)
  cum = coder.quantise(probs, 1 << 16)
  freqs = np.diff(cum, axis=-1)
  assert (freqs >= 1).all() and (cum[:, -1] <= 1 << 16).all()
  assert freqs[0, 0] == (1 << 16) - 4 + 1
  np.testing.assert_array_equal(cum, coder.quantise(probs.copy(), 1 << 16))
  with pytest.raises(ValueError):
    coder.quantise(probs, coder.MAX_TOTAL * 2)


# ---- the codec, on a small context model --------------------------------------------------

class BigramModel:
  """The interface of lm.CharModel with probabilities that depend on the previous token."""

  def __init__(self, alphabet, seed=0, max_window=16):
    self.alphabet = alphabet
    self.max_window = max_window
    self.params = np.random.default_rng(seed).dirichlet(np.ones(len(alphabet)), len(alphabet)).astype(np.float32)
    self.fingerprint = bytes([seed]) * 16
    self.seen = []  # every token row fed, to compare encode against decode

  def prefill(self, params, tokens, window):
    assert window <= self.max_window
    self.seen.append(np.array(tokens))
    return params[tokens[:, -1]], window

  def step(self, params, cache, tokens, position):
    assert position < cache
    self.seen.append(np.array(tokens))
    return params[tokens], cache


ALPHABET = "\n !',.:;?ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


@pytest.mark.parametrize("data", [
    b"", b"a", b"To be, or not to be: that is the question.\n",
    "caf\u00e9 \u00a3 \u263a \U0001F600 ok".encode(),           # characters outside the alphabet
    b"\xff\xfe\x00\x80 invalid \xed\xa0\x80 utf-8 \xc3",        # bytes that are not UTF-8
    bytes(range(256)) * 3,
])
def test_codec_round_trips_any_bytes(data):
  model = BigramModel(ALPHABET)
  blob = codec.compress(data, model)
  assert codec.decompress(blob, model) == data
  head = codec.read_header(blob)
  assert head["size"] == len(data) and head["rows"] == 1


def test_codec_in_several_rows_feeds_the_decoder_the_encoders_tokens():
  rng = np.random.default_rng(2)
  text = "".join(rng.choice(list(ALPHABET), 3 * codec.MIN_SEGMENT + 77)) + "\u00e9\x01"
  data = text.encode()
  model = BigramModel(ALPHABET)
  stats = codec.Stats()
  blob = codec.compress(data, model, max_rows=4, stats=stats)
  fed = model.seen
  model.seen = []
  assert codec.decompress(blob, model) == data
  assert codec.read_header(blob)["rows"] == 3
  assert len(fed) == len(model.seen) and all((a == b).all() for a, b in zip(fed, model.seen))
  assert stats.escapes == 3  # the two bytes of e-acute and the control character
  # The file costs the model's code length plus quantisation, the header and 2 bits.
  assert 8 * len(blob) - stats.quantised_bits <= 8 * codec.HEADER.size + 10


def test_codec_errors_are_one_line():
  model = BigramModel(ALPHABET)
  blob = codec.compress(b"some text", model)
  with pytest.raises(codec.FormatError, match="different model"):
    codec.decompress(blob, BigramModel(ALPHABET, seed=1))
  with pytest.raises(codec.FormatError, match="not an .lmz"):
    codec.decompress(b"PK\x03\x04 zip", model)
  damaged = blob[:-1] + bytes([blob[-1] ^ 0x55])
  with pytest.raises(codec.FormatError, match="damaged"):
    codec.decompress(damaged, model)


# ---- the LM: cached forward pass, checkpoint, CLI -----------------------------------------

def _tiny_run(workdir, seed):
  """A checkpoint of configs/transformer_lm.py:tiny (1 layer) at initialisation, as launch.train writes it."""
  import jax  # pylint: disable=g-import-not-at-top
  from core.checkpoint import Checkpointer  # pylint: disable=g-import-not-at-top
  from core.config import load_config, to_json  # pylint: disable=g-import-not-at-top
  from core.train import Trainer  # pylint: disable=g-import-not-at-top
  config = load_config(os.path.join(ROOT, "configs/transformer_lm.py:tiny"),
                       ("--config.model.num_layers=1", "--config.mesh.data=1", f"--config.seed={seed}"))
  trainer = Trainer(config, devices=jax.devices()[:1])
  os.makedirs(workdir)
  with open(os.path.join(workdir, "config.json"), "w", encoding="utf-8") as f:
    f.write(to_json(config))
  checkpointer = Checkpointer(workdir, async_save=False)
  checkpointer.save(1, trainer.init_state(), {"signature": trainer.param_signature(), "task": config.task})
  checkpointer.close()
  return trainer


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
  """Two tiny checkpoints of different seeds (corpus needed: the alphabet is the corpus's)."""
  from core.datasets import shakespeare_text  # pylint: disable=g-import-not-at-top
  from core.task import DataMissingError  # pylint: disable=g-import-not-at-top
  try:
    shakespeare_text()
  except DataMissingError as e:
    pytest.skip(str(e))
  root = tmp_path_factory.mktemp("runs")
  _tiny_run(str(root / "lm"), seed=0)
  _tiny_run(str(root / "other"), seed=1)
  return root


def test_cached_forward_equals_the_model(runs):
  import jax  # pylint: disable=g-import-not-at-top
  from papers.kolmogorov import lm  # pylint: disable=g-import-not-at-top
  from papers.transformer.model import TransformerLM  # pylint: disable=g-import-not-at-top
  model = lm.load(str(runs / "lm"))
  tokens = np.random.default_rng(0).integers(0, len(model.alphabet), (2, 40)).astype(np.int32)
  logits = TransformerLM(model.cfg).apply({"params": model.params}, tokens)[..., :len(model.alphabet)]
  expected = np.asarray(jax.nn.softmax(logits, axis=-1))
  probs, cache = model.prefill(model.params, tokens[:, :30], 63)
  np.testing.assert_allclose(probs, expected[:, 29], atol=2e-6)
  for j in range(30, 40):
    probs, cache = model.step(model.params, cache, tokens[:, j], j)
    np.testing.assert_allclose(probs, expected[:, j], atol=2e-6)


def test_cli_round_trip_and_one_line_errors(runs, tmp_path, capsys):
  from papers.kolmogorov import compress  # pylint: disable=g-import-not-at-top
  text = ("ROMEO:\nBut, soft! what light through yonder window breaks?\n" * 3).encode() + \
      "\u00e9\u263a\n".encode() + b"\x00\xff"
  source = tmp_path / "speech.txt"
  source.write_bytes(text)
  assert compress.main([str(source), "--workdir", str(runs / "lm")]) == 0
  packed = tmp_path / "speech.txt.lmz"
  assert packed.read_bytes()[:3] == b"LMZ"
  restored = tmp_path / "restored.txt"
  assert compress.main(["-d", str(packed), "--workdir", str(runs / "lm"), "-o", str(restored)]) == 0
  assert restored.read_bytes() == text
  capsys.readouterr()
  wrong = tmp_path / "wrong.txt"
  assert compress.main(["-d", str(packed), "--workdir", str(runs / "other"), "-o", str(wrong)]) == 2
  err = capsys.readouterr().err
  assert "different model" in err and err.count("\n") == 1 and not wrong.exists()
  assert compress.main(["-d", str(source), "--workdir", str(runs / "lm"), "-o", str(wrong)]) == 2
  assert "not an .lmz file" in capsys.readouterr().err and not wrong.exists()
  assert compress.main([str(source), "--workdir", str(runs / "lm")]) == 2  # the .lmz exists
  assert "exists" in capsys.readouterr().err


# ---- NCD ----------------------------------------------------------------------------------

def _sample(words, n, seed):
  rng = np.random.default_rng(seed)
  return " ".join(rng.choice(words, n)).encode()


def test_ncd_of_a_text_with_itself_is_small_and_one_source_is_nearer_than_two():
  rng = np.random.default_rng(3)
  letters = list("abcdefghijklmnopqrstuvwxyz")
  source_a = ["".join(rng.choice(letters, rng.integers(3, 9))) for _ in range(60)]
  source_b = ["".join(rng.choice(letters, rng.integers(3, 9))) for _ in range(60)]
  x, x2, y = _sample(source_a, 1500, 0), _sample(source_a, 1500, 1), _sample(source_b, 1500, 2)
  assert ncd.ncd(x, x, ncd.FAST["lzma"]) < 0.1
  for name in ("lzma", "bz2"):  # bz2's NCD(x, x) is far from 0 (Cebrian et al. 2005), yet smallest
    compress = ncd.FAST[name]
    assert ncd.ncd(x, x, compress) < ncd.ncd(x, x2, compress) < ncd.ncd(x, y, compress) - 0.1
  matrix = ncd.ncd_matrix([x, x2, y, _sample(source_b, 1500, 4)], ncd.FAST["lzma"])
  assert ncd.nearest_is_same_group(matrix, ["a", "a", "b", "b"]) == 1.0
  assert ncd.linkage(matrix).shape == (3, 4)
