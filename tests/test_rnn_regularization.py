"""Zaremba et al. 2014: word-level preprocessing, the PTB loader, truncated BPTT over contiguous
streams, dropout on non-recurrent connections only, the step-decay schedule, the paper's configs,
evaluation against a whole-stream reference, and 8 sharded devices against one."""
import io
import math
import os
import tarfile

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from core.config import load_config
from core.optim import make_schedule, step_decay_schedule
from core.task import ConfigError, DataMissingError, load_task
from core.train import Trainer
from papers.rnn_regularization import data as data_lib
from papers.rnn_regularization.model import WordLM

CONFIG = "configs/rnn_regularization.py"
WORDS = tuple("the cat sat on a mat and dog ran to it with we you they see".split())


def _ptb_text(rng, lines):
  """PTB's look: lower case, N for numbers, <unk> already in the text, one sentence a line."""
  vocab = WORDS + ("N", "<unk>")
  return "".join(" " + " ".join(rng.choice(vocab, rng.integers(3, 12))) + " \n" for _ in range(lines))


@pytest.fixture
def ptb_root(tmp_path, monkeypatch):
  """Small ptb.{train,valid,test}.txt under a data root of the test's own."""
  monkeypatch.setenv("READING_LIST_DATA", str(tmp_path))
  rng = np.random.default_rng(0)
  os.makedirs(tmp_path / "ptb")
  for split, lines in (("train", 400), ("valid", 40), ("test", 40)):
    (tmp_path / "ptb" / f"ptb.{split}.txt").write_text(_ptb_text(rng, lines))
  return tmp_path


def _tiny_config(variant="medium", **overrides):
  corpus = data_lib.ptb_corpus()
  flags = {"data.corpus": "ptb", "model.vocab_size": len(corpus.vocab), "model.hidden_size": 16,
           "data.train_tokens": len(corpus.train), "data.unroll": 5, "batch_size": 8,
           "epochs.total": 2, "epochs.decay_after": 1, **overrides}
  return load_config(f"{CONFIG}:{variant}", [f"--config.{k}={v}" for k, v in flags.items()])


# ---- preprocessing ----------------------------------------------------------
def test_tokenize_lowercases_numbers_to_n_and_ends_lines():
  text = "KING. I'll pay thee 1,000 crowns, in 1599!\n\n  -- \nO'er the hills; kept'st.\n"
  assert data_lib.tokenize(text) == ["king", "i'll", "pay", "thee", "N", "crowns", "in", "N", "<eos>",
                                     "o'er", "the", "hills", "kept'st", "<eos>"]


def test_vocabulary_cap_and_unk():
  tokens = "a a a b b c d <eos> a b e <eos>".split()
  vocab = data_lib.build_vocab(tokens, 4)  # <eos>, <unk>, then the two most frequent words
  assert vocab == ("<eos>", "<unk>", "a", "b")
  ids = data_lib.encode(tokens, vocab)
  np.testing.assert_array_equal(ids, [2, 2, 2, 3, 3, 1, 1, 0, 2, 3, 1, 0])
  with pytest.raises(ConfigError):
    data_lib.build_vocab(tokens, 2)


def test_offline_corpus_splits_contiguous_text_at_line_ends():
  rng = np.random.default_rng(0)
  text = "\n".join(" ".join(rng.choice(WORDS, 6)) for _ in range(300))  # 16 words, 10 kept
  corpus = data_lib.corpus_from_text(text, vocab_size=12)
  tokens = data_lib.tokenize(text)
  assert len(corpus.train) + len(corpus.valid) + len(corpus.test) == len(tokens)
  for part in corpus[:3]:
    assert part[-1] == 0  # every part ends with <eos>: cut at a line end
  # Contiguous: the parts, decoded, are the token stream in order (rare words as <unk>).
  decoded = [corpus.vocab[i] for i in np.concatenate(corpus[:3])]
  assert decoded == [t if t in corpus.vocab else "<unk>" for t in tokens]
  sizes = np.array([len(p) for p in corpus[:3]]) / len(tokens)
  np.testing.assert_allclose(sizes, data_lib.PTB_FRACTIONS, atol=0.01)
  assert len(corpus.vocab) == 12 and "<unk>" in corpus.vocab


def test_shakespeare_corpus_has_the_documented_sizes(shakespeare_or_skip):
  shakespeare_or_skip()
  corpus = data_lib.shakespeare_corpus()
  assert [len(p) for p in corpus[:3]] == [1_137_402, 90_348, 100_980]  # docs/data.md
  assert len(corpus.train) == data_lib.TRAIN_TOKENS["shakespeare"] and len(corpus.vocab) == 10_000


# ---- PTB ----------------------------------------------------------------------
def test_ptb_loader_reads_the_files_as_the_papers_code(ptb_root):
  corpus = data_lib.ptb_corpus()
  train_text = (ptb_root / "ptb" / "ptb.train.txt").read_text()
  expected = train_text.replace("\n", " <eos> ").split()
  assert [corpus.vocab[i] for i in corpus.train] == expected
  assert set(corpus.vocab) == set(expected)  # the training file's words: no cap, <unk> is a word
  assert corpus.train.dtype == np.int32 and len(corpus.valid) > 0 and len(corpus.test) > 0
  assert data_lib.load_corpus("ptb", len(corpus.vocab)).vocab == corpus.vocab
  with pytest.raises(ConfigError, match="vocab_size"):
    data_lib.load_corpus("ptb", 10_000)


def test_ptb_missing_names_the_install_command(tmp_path, monkeypatch):
  monkeypatch.setenv("READING_LIST_DATA", str(tmp_path))
  with pytest.raises(DataMissingError, match="python -m papers.rnn_regularization.data ptb"):
    data_lib.ptb_corpus()


def test_fetch_ptb_keeps_the_three_files_of_the_tarball(tmp_path, monkeypatch):
  monkeypatch.setenv("READING_LIST_DATA", str(tmp_path / "root"))
  archive = tmp_path / "simple-examples.tgz"
  with tarfile.open(archive, "w:gz") as tar:
    for name in ("ptb.train.txt", "ptb.valid.txt", "ptb.test.txt", "ptb.char.train.txt"):
      payload = f" {name} words \n".encode()
      info = tarfile.TarInfo(f"./simple-examples/data/{name}")
      info.size = len(payload)
      tar.addfile(info, io.BytesIO(payload))
  target = data_lib.fetch_ptb(url=archive.as_uri())
  assert sorted(os.listdir(target)) == ["ptb.test.txt", "ptb.train.txt", "ptb.valid.txt"]
  assert open(os.path.join(target, "ptb.valid.txt")).read() == " ptb.valid.txt words \n"


# ---- batches ----------------------------------------------------------------
def test_tbptt_batches_are_contiguous_streams(ptb_root):
  task = load_task(_tiny_config())
  ids, b, t = task.corpus().train, 8, 5
  length = len(ids) // b
  steps = task.epoch_steps
  assert steps == (length - 1) // t
  for step in range(steps + 2):
    batch = task.train_batch(step)
    k = step % steps
    for row in range(b):  # row r is the r-th contiguous slice of the training text
      np.testing.assert_array_equal(batch["inputs"][row], ids[row * length + k * t:row * length + (k + 1) * t])
      np.testing.assert_array_equal(batch["targets"][row], ids[row * length + k * t + 1:row * length + (k + 1) * t + 1])
    np.testing.assert_array_equal(batch["reset"], np.full(b, k == 0))
    if k:  # the next window continues where the previous one ended
      np.testing.assert_array_equal(batch["inputs"][:, 0], task.train_batch(step - 1)["targets"][:, -1])


def test_state_is_carried_across_steps_and_reset_each_epoch(ptb_root):
  """The trainer's carry after step s is the LSTM state after reading windows 0..s of each stream."""
  config = _tiny_config(**{"model.dropout": 0.0})  # dropout would change what layer 1 reads
  trainer = Trainer(config, devices=jax.devices()[:1])
  task = trainer.task
  state = trainer.init_state()
  params0 = jax.device_get(state.params)
  state, _ = trainer.run_steps(state, range(1))
  carry = jax.device_get(state.model_state["carry"])
  _, expected = task.model.apply({"params": params0}, task.train_batch(0)["inputs"])  # from zeros
  np.testing.assert_allclose(carry["c"], np.stack([c for c, _ in expected]), atol=1e-6)
  np.testing.assert_allclose(carry["h"], np.stack([h for _, h in expected]), atol=1e-6)
  # At an epoch's first window the carry is zeroed: the loss equals that of a zero carry.
  batch = task.train_batch(task.epoch_steps)
  variables = {"params": state.params, "carry": carry}
  zeroed = {"params": state.params, "carry": jax.tree.map(np.zeros_like, carry)}
  reset_loss = task.loss(variables, batch, None, train=False)[0]
  assert float(reset_loss) == pytest.approx(float(task.loss(zeroed, batch, None, train=False)[0]), rel=1e-6)
  batch["reset"][:] = 0
  assert float(task.loss(variables, batch, None, train=False)[0]) != pytest.approx(float(reset_loss), rel=1e-6)


def test_windows_with_carry_equal_one_long_call():
  model = WordLM(vocab_size=30, hidden_size=8, init_scale=0.5)
  tokens = np.random.default_rng(1).integers(0, 30, (3, 12)).astype(np.int32)
  variables = model.init(jax.random.key(0), tokens)
  whole, whole_carry = model.apply(variables, tokens)
  first, carry = model.apply(variables, tokens[:, :5])
  second, carry = model.apply(variables, tokens[:, 5:], carry)
  np.testing.assert_allclose(np.concatenate([first, second], 1), whole, atol=1e-5)
  chex.assert_trees_all_close(carry, whole_carry, atol=1e-6)


# ---- model --------------------------------------------------------------------
def test_dropout_only_on_non_recurrent_connections():
  """With a zero embedding, layer 1 reads only zeros (dropped or not): if dropout touched the
  recurrent state its trajectory would depend on the rng. Layer 2 reads layer 1's dropped
  outputs, so its state must differ between masks."""
  model = WordLM(vocab_size=20, hidden_size=32, dropout=0.5, init_scale=0.3)
  tokens = np.arange(16, dtype=np.int32).reshape(2, 8)
  params = nn.meta.unbox(model.init(jax.random.key(0), tokens))["params"]
  params["embed"]["embedding"] = jnp.zeros_like(params["embed"]["embedding"])
  params["rnn"]["layer_0"]["bias"] = jnp.linspace(-1.0, 1.0, params["rnn"]["layer_0"]["bias"].size)
  run = lambda seed: model.apply({"params": params}, tokens, train=True, rngs={"dropout": jax.random.key(seed)})
  (logits_a, carry_a), (logits_b, carry_b) = run(1), run(2)
  _, carry_eval = model.apply({"params": params}, tokens)
  chex.assert_trees_all_close(carry_a[0], carry_b[0], carry_eval[0], atol=0)  # layer 1: deterministic
  assert not np.allclose(carry_a[1][1], carry_b[1][1])  # layer 2: its input was dropped
  assert not np.allclose(logits_a, logits_b)
  # Evaluation is deterministic whatever the rng.
  eval_a = model.apply({"params": params}, tokens, rngs={"dropout": jax.random.key(1)})[0]
  np.testing.assert_array_equal(eval_a, model.apply({"params": params}, tokens)[0])


@pytest.mark.parametrize("scale", [0.1, 0.04])
def test_every_parameter_uniform_in_init_range(scale):
  model = WordLM(vocab_size=300, hidden_size=24, init_scale=scale)
  params = nn.meta.unbox(model.init(jax.random.key(3), np.zeros((1, 4), np.int32)))["params"]
  leaves = jax.tree_util.tree_flatten_with_path(params)[0]
  assert len(leaves) == 1 + 3 * 2 + 2  # embedding, per layer (input kernel, recurrent kernel, bias), softmax
  for path, x in leaves:
    x = np.asarray(x)
    assert np.abs(x).max() <= scale, jax.tree_util.keystr(path)
    # Uniform: spread up to the bound, variance s^2 / 3 (not zeros, not a normal).
    assert np.abs(x).max() > 0.9 * scale, jax.tree_util.keystr(path)
    assert np.var(x) == pytest.approx(scale ** 2 / 3, rel=0.25), jax.tree_util.keystr(path)
  assert params["embed"]["embedding"].shape == (384, 24)  # padded to a multiple of 128


# ---- schedule and configs -------------------------------------------------------
def test_step_decay_schedule_matches_formula():
  schedule = step_decay_schedule(1.0, decay_start=12, decay_every=5, decay_factor=0.5)
  for step in range(40):
    expected = 1.0 if step < 12 else 0.5 ** ((step - 12) // 5 + 1)
    assert float(schedule(step)) == pytest.approx(expected, rel=1e-6), step
  with pytest.raises(ConfigError):
    step_decay_schedule(1.0, 0, 0, 0.5)
  with pytest.raises(ConfigError):
    step_decay_schedule(1.0, 0, 5, 1.5)


@pytest.mark.parametrize("variant,units,unroll,dropout,init,epochs,decay_after,divisor,clip,paper_ppl", [
    ("small", 200, 20, 0.0, 0.1, 13, 4, 2.0, 5.0, 114.5),
    ("medium", 650, 35, 0.5, 0.05, 39, 6, 1.2, 5.0, 82.7),
    ("large", 1500, 35, 0.65, 0.04, 55, 14, 1.15, 10.0, 78.4),
])
def test_paper_configs(variant, units, unroll, dropout, init, epochs, decay_after, divisor, clip, paper_ppl):
  del paper_ppl  # (the figure each config answers; papers/rnn_regularization/claims.py)
  c = load_config(f"{CONFIG}:{variant}", ["--config.data.corpus=ptb"])
  assert (c.model.num_layers, c.model.hidden_size, c.data.unroll) == (2, units, unroll)
  assert (c.model.dropout, c.model.init_scale, c.model.vocab_size) == (dropout, init, 10_000)
  assert (c.batch_size, c.optimizer.name, c.optimizer.learning_rate) == (20, "sgd", 1.0)
  assert (c.optimizer.clip_norm, c.optimizer.weight_decay, c.optimizer.grad_accum_steps) == (clip, 0.0, 1)
  # An epoch of PTB: 929,589 tokens in 20 streams, windows of `unroll` (ptb_word_lm's epoch_size).
  epoch = (929_589 // 20 - 1) // unroll
  assert c.total_steps == epochs * epoch and c.eval_every == epoch
  # The paper's code: epoch i (from 0) runs at lr / divisor ** max(i + 1 - decay_after, 0).
  schedule = make_schedule(c.optimizer, c.total_steps)
  for i in range(epochs):
    for step in (i * epoch, (i + 1) * epoch - 1):
      assert float(schedule(step)) == pytest.approx(divisor ** -max(i + 1 - decay_after, 0), rel=1e-5)
  # The offline corpus keeps every hyperparameter; only its epoch is longer.
  s = load_config(f"{CONFIG}:{variant}")
  assert s.data.corpus == "shakespeare"
  assert s.total_steps == epochs * ((data_lib.TRAIN_TOKENS["shakespeare"] // 20 - 1) // unroll)


def test_cpu_variants_differ_from_medium_only_as_stated():
  medium = load_config(f"{CONFIG}:medium").to_dict()
  for variant, changes in (("medium_cpu", {"epochs.total": 13}),
                           ("medium_no_dropout_cpu", {"epochs.total": 6, "model.dropout": 0.0})):
    c = load_config(f"{CONFIG}:{variant}").to_dict()
    diff = {f"{g}.{k}" for g in c if isinstance(c[g], dict) for k in c[g] if c[g][k] != medium[g][k]}
    diff |= {k for k in c if not isinstance(c[k], dict) and c[k] != medium[k]}
    assert diff == set(changes) | {"total_steps"}, variant


def test_config_errors(ptb_root):
  with pytest.raises(ConfigError, match="grad_accum_steps"):
    load_task(_tiny_config(**{"optimizer.grad_accum_steps": 2}))
  with pytest.raises(ConfigError, match="corpus"):
    load_config(CONFIG, ["--config.data.corpus=wikitext"])
  with pytest.raises(ConfigError, match="dropout"):
    load_task(_tiny_config(**{"model.dropout": 1.0}))
  with pytest.raises(ConfigError, match="init_scale"):
    load_task(_tiny_config(**{"model.init_scale": 0.0}))
  with pytest.raises(ConfigError, match="train_tokens"):
    load_task(_tiny_config(**{"data.train_tokens": 929_589})).check_data()
  with pytest.raises(ConfigError, match="decay_factor"):
    Trainer(_tiny_config(**{"optimizer.decay_factor": 1.2}), devices=jax.devices()[:1])
  with pytest.raises(ConfigError, match="unknown variant"):
    load_config(f"{CONFIG}:huge")


# ---- evaluation and sharding ------------------------------------------------------
def test_eval_perplexity_is_the_whole_split_scored_once(ptb_root):
  """Against an independent reference: each stream run in one call, numpy log-softmax."""
  task = load_task(_tiny_config())
  variables = jax.device_get(nn.meta.unbox(task.init(jax.random.key(0))))
  params = variables["params"]
  batches = task.eval_batches()
  valid = task.corpus().valid
  length = (len(valid) - 1) // 8
  total = 0.0
  for row in range(8):
    tokens = valid[row * length:(row + 1) * length + 1]
    logits = np.asarray(task.model.apply({"params": params}, tokens[None, :-1])[0][0], np.float64)
    logp = logits - np.log(np.exp(logits - logits.max(-1, keepdims=True)).sum(-1, keepdims=True)) - logits.max(-1, keepdims=True)
    total -= logp[np.arange(length), tokens[1:]].sum()
  metrics = jax.jit(task.eval_metrics)(variables, batches[1])
  assert float(metrics["valid_nll"][1]) == 8 * length
  assert float(metrics["valid_nll"][0]) == pytest.approx(total, rel=1e-5)
  assert float(metrics["valid_perplexity"][0]) == pytest.approx(math.exp(total / (8 * length)), rel=1e-5)
  assert float(metrics["test_perplexity"][1]) == 0.0 and float(metrics["train_nll"][1]) == 0.0


def test_sharded_training_equals_one_device(ptb_root):
  """Mesh data=4 x tensor=2 on 8 devices: the losses, parameters, carry and evaluation of one device."""
  config = _tiny_config(**{"model.dropout": 0.3})

  def run(mesh, devices):
    c = config.copy_and_resolve_references()
    with c.unlocked():
      c.mesh.update(mesh)
    trainer = Trainer(c, devices=devices)
    state, history = trainer.run_steps(trainer.init_state(), range(3))
    return [float(m["loss"]) for m in history], jax.device_get(state), trainer.evaluate(state, 3)

  one = run(dict(data=1, fsdp=1, tensor=1, stage=1), jax.devices()[:1])
  many = run(dict(data=4, fsdp=1, tensor=2, stage=1), jax.devices())
  np.testing.assert_allclose(many[0], one[0], rtol=1e-5)
  chex.assert_trees_all_close(many[1].params, one[1].params, rtol=1e-4, atol=1e-6)
  chex.assert_trees_all_close(many[1].model_state, one[1].model_state, rtol=1e-4, atol=1e-6)
  chex.assert_trees_all_close(many[2], one[2], rtol=1e-5)
