"""RNNsearch / RNNencdec against numpy formulas, beam search against exhaustive search, the
translation task's data and data-parallel training."""
import itertools
import os

import flax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.bahdanau import get_config
from core.task import ConfigError
from papers.bahdanau import model as model_lib
from papers.bahdanau.task import TranslationTask

SRC_V, TGT_V = 10, 6


def sigmoid(x):
  return 1 / (1 + np.exp(-x))


def gru_reference(h, x_proj, cell):
  """Appendix A.1.1 of the paper with the input side x_proj = [W_r x; W_z x; W x] + b."""
  n = h.shape[-1]
  gates = x_proj[:, :2 * n] + h @ cell["recurrent_gates"]["kernel"]
  r, z = sigmoid(gates[:, :n]), sigmoid(gates[:, n:])
  candidate = np.tanh(x_proj[:, 2 * n:] + (r * h) @ cell["recurrent_candidate"]["kernel"])
  return (1 - z) * h + z * candidate


def make_model(attention=True, seed=0, scale_output=1.0):
  model = model_lib.RNNSearch(SRC_V, TGT_V, embed=4, hidden=6, align=5, maxout=3,
                              attention=attention)
  tokens = jnp.ones((2, 5), jnp.int32)
  variables = flax.linen.meta.unbox(jax.jit(model.init)(jax.random.key(seed), tokens, tokens))
  # Non-zero v_a (the paper starts it at zero) and larger weights, so that the tests see
  # non-uniform alignments and peaked word distributions.
  variables = jax.tree.map(lambda x: np.asarray(x) * 30, variables)
  if attention:
    variables["params"]["decoder"]["align_v"] = np.linspace(-2, 2, 5).astype(np.float32)
  variables["params"]["decoder"]["output"]["kernel"] *= scale_output
  return model, variables


def jitted(model, method=None):
  """model.apply(variables, *args, method=method) under jit (eager flax is slow on a busy CPU)."""
  return jax.jit(lambda variables, *args: model.apply(variables, *args, method=method))


def test_gru_cell_follows_the_papers_equations():
  cell = model_lib.GRUCell(6)
  h = np.random.default_rng(0).normal(size=(3, 6)).astype(np.float32)
  x_proj = np.random.default_rng(1).normal(size=(3, 18)).astype(np.float32)
  params = jax.jit(cell.init)(jax.random.key(0), h, x_proj)
  params = jax.tree.map(lambda x: np.asarray(x) * 3, flax.linen.meta.unbox(params))
  new, out = jax.jit(cell.apply)(params, h, x_proj)
  np.testing.assert_allclose(new, gru_reference(h, x_proj, params["params"]), rtol=1e-5, atol=1e-6)
  np.testing.assert_array_equal(new, out)


def encode_reference(params, src):
  """Annotations [->h_j; <-h_j] of each sentence by numpy loops over its own words only."""
  p = params["encoder"]
  out = []
  for row in src:
    words = [t for t in row if t != 0]
    x = params["src_embed"]["embedding"][words]
    states = {}
    for direction, cell, order in (("forward", "GRUCell_0", range(len(words))),
                                   ("backward", "GRUCell_1", reversed(range(len(words))))):
      proj = x @ p[f"{direction}_input"]["kernel"] + p[f"{direction}_input"]["bias"]
      h, states[direction] = np.zeros((1, 6)), {}
      for j in order:
        h = gru_reference(h, proj[j:j + 1], p[cell])
        states[direction][j] = h[0]
    out.append(np.stack([np.concatenate([states["forward"][j], states["backward"][j]])
                         for j in range(len(words))]))
  return out


SRC = np.array([[4, 5, 6, 7, 8], [9, 3, 0, 0, 0]], np.int32)


def test_bidirectional_encoder_matches_numpy_loops_over_the_unpadded_words():
  model, variables = make_model()
  encoded = jitted(model, model_lib.RNNSearch.encode)(variables, SRC)
  expected = encode_reference(variables["params"], SRC)
  for row, reference in enumerate(expected):
    np.testing.assert_allclose(encoded["annotations"][row, :len(reference)], reference,
                               rtol=1e-4, atol=1e-5)
  p = variables["params"]
  s0 = np.tanh(np.stack([e[0, 6:] for e in expected]) @ p["init_state"]["kernel"]
               + p["init_state"]["bias"])  # s_0 = tanh(W_s <-h_1)
  np.testing.assert_allclose(encoded["s0"], s0, rtol=1e-4, atol=1e-5)


def step_reference(params, annotations, mask, s, y_prev):
  """One decoder step of appendix A.2.2 with numpy: (s_i, logits, alpha_i)."""
  d = params["decoder"]
  n, l = 6, 3
  e = np.tanh(annotations @ params["align_keys"]["kernel"]
              + (s @ d["align_query"]["kernel"])[:, None, :]) @ d["align_v"]
  e = np.where(mask, e, -np.inf)
  alpha = np.exp(e - e.max(-1, keepdims=True))
  alpha /= alpha.sum(-1, keepdims=True)
  c = np.einsum("bj,bjd->bd", alpha, annotations)
  ey = params["tgt_embed"]["embedding"][y_prev]
  y_proj = ey @ params["target_input"]["kernel"] + params["target_input"]["bias"]
  c_proj = c @ d["context"]["kernel"]
  t = y_proj[:, 3 * n:] + c_proj[:, 3 * n:] + s @ d["readout_state"]["kernel"]
  t = np.maximum(t[:, 0::2], t[:, 1::2])  # maxout over pairs of units
  assert t.shape[1] == l
  logits = t @ d["output"]["kernel"] + d["output"]["bias"]
  s_new = gru_reference(s, y_proj[:, :3 * n] + c_proj[:, :3 * n], d["gru"])
  return s_new, logits, alpha


def test_attention_and_maxout_readout_match_the_papers_formulas():
  model, variables = make_model()
  encoded = jitted(model, model_lib.RNNSearch.encode)(variables, SRC)
  s = np.random.default_rng(0).normal(size=(2, 6)).astype(np.float32)
  y_prev = np.array([1, 4], np.int32)
  s_new, logits, alpha = jitted(model, model_lib.RNNSearch.step)(variables, encoded, s, y_prev)
  mask = SRC != 0
  ref_s, ref_logits, ref_alpha = step_reference(
      variables["params"], np.asarray(encoded["annotations"]), mask, s, y_prev)
  np.testing.assert_allclose(alpha, ref_alpha, rtol=1e-4, atol=1e-6)
  assert np.all(alpha[~mask] == 0) and alpha.std() > 0.01  # padding gets no weight
  np.testing.assert_allclose(logits, ref_logits, rtol=1e-4, atol=1e-4)
  np.testing.assert_allclose(s_new, ref_s, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("attention", [True, False])
def test_teacher_forcing_equals_step_by_step_decoding_and_ignores_padding(attention):
  model, variables = make_model(attention)
  tgt_in = np.array([[1, 3, 4, 5], [1, 5, 5, 0]], np.int32)
  logits = jitted(model)(variables, SRC, tgt_in)
  encoded = jitted(model, model_lib.RNNSearch.encode)(variables, SRC)
  s, step = encoded["s0"], jitted(model, model_lib.RNNSearch.step)
  for i in range(tgt_in.shape[1]):
    s, step_logits, _ = step(variables, encoded, s, tgt_in[:, i])
    np.testing.assert_allclose(logits[:, i], step_logits, rtol=1e-5, atol=1e-5)
  wider = np.pad(SRC, ((0, 0), (0, 3)))  # more padding changes nothing
  np.testing.assert_allclose(jitted(model)(variables, wider, tgt_in), logits, rtol=1e-5, atol=1e-5)


def test_rnnencdec_context_is_the_encoders_last_state():
  model, variables = make_model(attention=False)
  p = variables["params"]
  encoded = jitted(model, model_lib.RNNSearch.encode)(variables, SRC)
  for row, words in enumerate([5, 2]):  # the forward GRU at each sentence's last word
    x = p["src_embed"]["embedding"][SRC[row, :words]]
    proj = x @ p["encoder"]["forward_input"]["kernel"] + p["encoder"]["forward_input"]["bias"]
    h = np.zeros((1, 6))
    for j in range(words):
      h = gru_reference(h, proj[j:j + 1], p["encoder"]["GRUCell_0"])
    context = np.tanh(h @ p["summary"]["kernel"] + p["summary"]["bias"])  # Cho et al.: tanh(V h_T)
    np.testing.assert_allclose(encoded["context"][row], context[0], rtol=1e-4, atol=1e-5)


def sequence_scores(model, variables, src, candidates):
  """Sum of the search's log-probabilities of each candidate (ending in EOS), by teacher forcing."""
  width = max(len(c) for c in candidates)
  tgt_in = np.array([[model_lib.BOS, *c[:-1]] + [0] * (width - len(c)) for c in candidates], np.int32)
  logits = jax.jit(model.apply)(variables, np.repeat(src[None], len(candidates), 0), tgt_in)
  logp = np.asarray(model_lib._emittable(logits))  # pylint: disable=protected-access
  return [float(sum(logp[k, i, t] for i, t in enumerate(c))) for k, c in enumerate(candidates)]


@pytest.mark.parametrize("attention", [True, False])
def test_beam_search_finds_the_exhaustive_best_on_a_tiny_vocabulary(attention):
  model, variables = make_model(attention, seed=1, scale_output=3.0)
  max_len = 3
  words = [t for t in range(TGT_V) if t not in (model_lib.PAD, model_lib.BOS, model_lib.EOS)]
  # Every output: k words then EOS, within max_len tokens.
  candidates = [(*ws, model_lib.EOS) for k in range(max_len) for ws in itertools.product(words, repeat=k)]
  # A beam wide enough to keep every unfinished prefix is exact.
  beam = len(words) ** (max_len - 1) * TGT_V
  tokens, scores = jax.jit(lambda v, s: model_lib.beam_search(model, v, s, max_len, beam))(
      variables, SRC)
  for row in range(len(SRC)):
    exhaustive = sorted(zip(sequence_scores(model, variables, SRC[row], candidates), candidates),
                        reverse=True)
    assert exhaustive[0][0] - exhaustive[1][0] > 1e-3  # a unique best, so the test can tell
    for rank in range(3):
      score, best = exhaustive[rank]
      assert tokens[row, rank].tolist() == list(best) + [0] * (max_len - len(best))
      assert scores[row, rank] == pytest.approx(score, abs=1e-4)


def test_greedy_decoding_takes_the_most_likely_word_at_each_step():
  model, variables = make_model(seed=2, scale_output=3.0)
  greedy = np.asarray(jax.jit(lambda v, s: model_lib.greedy_decode(model, v, s, 5))(variables, SRC))
  for row in range(len(SRC)):
    tokens = greedy[row].tolist()
    end = tokens.index(model_lib.EOS) + 1 if model_lib.EOS in tokens else len(tokens)
    assert all(t == 0 for t in tokens[end:])
    tgt_in = np.array([[model_lib.BOS, *tokens[:end - 1]]], np.int32)
    logits = np.asarray(model_lib._emittable(jitted(model)(variables, SRC[row:row + 1], tgt_in)))[0]  # pylint: disable=protected-access
    assert tokens[:end] == logits.argmax(-1).tolist()


# ---- the task, on a small made-up Bible -----------------------------------------------------------

ENGLISH = ["the", "man", "woman", "saw", "a", "dog", "bird", "house", "in", "city"]
SPANISH = ["el", "hombre", "mujer", "vio", "un", "perro", "pájaro", "casa", "en", "ciudad"]


@pytest.fixture
def small_bible(tmp_path, monkeypatch):
  """80 verses, word-for-word translations: Genesis (train), Ruth (valid), Joshua (test)."""
  monkeypatch.setenv("READING_LIST_DATA", str(tmp_path))
  os.makedirs(tmp_path / "bible")
  rng = np.random.default_rng(0)
  rows = []
  for k in range(80):
    book = "Gen" if k < 60 else "Ruth" if k < 70 else "Josh"
    words = rng.integers(0, len(ENGLISH), rng.integers(2, 9))
    rows.append((f"{book}.1.{k + 1}", " ".join(ENGLISH[w] for w in words),
                 " ".join(SPANISH[w] for w in words)))
  for column, name in ((1, "kjv"), (2, "rv1909")):
    with open(tmp_path / "bible" / f"{name}.tsv", "w", encoding="utf-8") as f:
      f.writelines(f"{r[0]}\t{r[column]}\n" for r in rows)
  return rows


def tiny_config(variant="rnnsearch"):
  c = get_config(variant)
  c.model.src_vocab_size = c.model.tgt_vocab_size = 32
  c.data.max_len = 12
  c.data.eval_examples = 4
  c.data.eval_batch_size = 8
  c.batch_size = 8
  return c


def test_batches_hold_the_training_pairs_and_every_valid_pair_once(small_bible):
  task = TranslationTask(tiny_config())
  source = task.train_examples()
  src_vocab, tgt_vocab = task.vocabs
  fits = [(r[1], r[2]) for r in small_bible[:60]  # Genesis verses of <= 12 and <= 11 pieces
          if len(src_vocab.encode(r[1])) <= 12 and len(tgt_vocab.encode(r[2])) <= 11]
  assert source.pairs == fits and len(fits) >= 30
  for i in (0, len(fits) - 1):
    example = source[i]
    assert src_vocab.decode(example["src"]) == fits[i][0]
    assert tgt_vocab.decode(example["tgt_out"]) == fits[i][1]
    assert {k: (v.shape, v.dtype) for k, v in example.items()} == {
        k: (s.shape[1:], s.dtype) for k, s in task.batch_spec().items()}
  batches = list(task.eval_batches())
  assert all(len(b["src"]) == 8 for b in batches)
  decoded = [tgt_vocab.decode(row) for b in batches for row in b["tgt_out"] if row.any()]
  assert decoded == [tgt_vocab.decode(tgt_vocab.encode(r[2])[:11]) for r in small_bible[60:70]]
  pairs, src = task.test_examples()
  assert pairs == [(r[1], r[2]) for r in (small_bible[70], small_bible[73], small_bible[76],
                                          small_bible[79])]  # evenly spaced over the test split
  assert src.shape == (4, 12)


def test_bad_configs_say_what_to_fix(small_bible):
  config = tiny_config()
  config.data.corpus = "europarl"
  with pytest.raises(ConfigError, match="corpus"):
    TranslationTask(config).check_data()
  config = tiny_config()
  config.data.beam_size = 0
  with pytest.raises(ConfigError, match="beam_size"):
    TranslationTask(config)


def test_data_parallel_training_on_8_devices_equals_one_device(small_bible):
  from core.train import Trainer  # pylint: disable=g-import-not-at-top
  assert jax.device_count() >= 8
  results = []
  for devices in (jax.devices()[:1], jax.devices()[:8]):
    trainer = Trainer(tiny_config(), devices=devices)
    assert trainer.mesh.shape["data"] == len(devices)
    # The held-out loss only: decoding and BLEU run in tests/test_all_configs.py.
    trainer.task.evaluate = lambda variables, step: {}
    initial = jax.device_get(trainer.init_state().params)
    state, history = trainer.run_steps(trainer.init_state(), range(3))
    results.append((jax.device_get(state.params), float(history[-1]["loss"]),
                    trainer.evaluate(state, 3)))
  (params_1, loss_1, eval_1), (params_8, loss_8, eval_8) = results
  assert loss_1 == pytest.approx(loss_8, rel=1e-5)
  # What training changed, leaf by leaf: float reassociation across shards leaves ~1e-6
  # relative differences. (W_a and U_a do not move yet: v_a starts at zero, as in the paper.)
  moved = 0
  for p1, p8, p0 in zip(jax.tree.leaves(params_1), jax.tree.leaves(params_8),
                        jax.tree.leaves(initial)):
    step_1, step_8 = p1 - p0, p8 - p0
    moved += np.linalg.norm(step_1) > 1e-6
    assert np.linalg.norm(step_1 - step_8) <= 1e-3 * np.linalg.norm(step_1) + 1e-8
  assert moved >= len(jax.tree.leaves(initial)) - 3
  assert eval_1["loss"] == pytest.approx(eval_8["loss"], rel=1e-4)
  assert eval_1["token_accuracy"] == pytest.approx(eval_8["token_accuracy"], abs=1e-6)


def test_compare_tables_the_last_bleu_of_each_run_and_plots_by_length(tmp_path):
  import json  # pylint: disable=g-import-not-at-top
  from papers.bahdanau import compare  # pylint: disable=g-import-not-at-top
  runs = []
  for name, attention, bleu in (("a", False, 10.0), ("b", True, 20.0)):
    workdir = tmp_path / name
    os.makedirs(workdir)
    records = [{"step": 5, "split": "eval", "bleu": 1.0, "bleu_len_0_10": 1.0},
               {"step": 9, "split": "train", "loss": 2.0},
               {"step": 10, "split": "eval", "bleu": bleu, "bleu_greedy": bleu - 1,
                "bleu_len_0_10": bleu + 1, "bleu_len_10_20": bleu + 2, "bleu_len_60_inf": bleu + 3}]
    (workdir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (workdir / "config.json").write_text(json.dumps(
        {"task": "papers.bahdanau.task:TranslationTask", "model": {"attention": attention}}))
    runs.append(str(workdir))
  assert compare.main(["--runs", *runs, "--out", str(tmp_path / "out")]) == 0
  text = (tmp_path / "out" / "bleu_table.md").read_text().splitlines()
  assert text[0] == ("| run | step | BLEU (beam) | BLEU (greedy) | words 0-10 | words 10-20 | "
                     "words 60+ |")
  assert text[2] == "| RNNencdec (a) | 10 | 10.00 | 9.00 | 11.00 | 12.00 | 13.00 |"
  assert text[3] == "| RNNsearch (b) | 10 | 20.00 | 19.00 | 21.00 | 22.00 | 23.00 |"
  assert (tmp_path / "out" / "bleu_by_length.png").stat().st_size > 1000
  assert compare.main(["--runs", str(tmp_path / "missing")]) == 2
