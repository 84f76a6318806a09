"""The Transformer against numpy references, imported standalone, its tasks on the v2 contract,
and sharded vs unsharded."""
import dataclasses
import math

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import transformer as copy_config
from configs import transformer_lm as lm_config
from core.config import load_config
from core.data import local_batch
from core.task import ConfigError, DataMissingError, load_task
from core.train import Trainer
from papers.transformer import Transformer, TransformerConfig, TransformerLM, beam_search, greedy_decode
from papers.transformer import model as model_lib
from papers.transformer.task import smoothed_cross_entropy


def test_import_and_apply_under_plain_jit():
  """No mesh, no framework state: the models are plain Flax modules."""
  cfg = TransformerConfig(vocab_size=20, d_model=32, num_heads=4, d_ff=64, num_encoder_layers=2,
                          num_decoder_layers=2, dropout=0.0, max_len=16)
  src = jnp.array([[1, 5, 6, 7, 0, 0]])
  tgt = jnp.array([[1, 5, 6]])
  model = Transformer(cfg)
  variables = nn.meta.unbox(jax.jit(model.init)(jax.random.key(0), src, tgt))
  assert all(isinstance(x, jax.Array) for x in jax.tree.leaves(variables))
  logits = jax.jit(model.apply)(variables, src, tgt)
  assert logits.shape == (1, 3, 20) and bool(jnp.all(jnp.isfinite(logits)))
  lm = TransformerLM(cfg)
  lm_variables = nn.meta.unbox(lm.init(jax.random.key(1), tgt))
  assert jax.jit(lm.apply)(lm_variables, tgt).shape == (1, 3, 20)


def test_vocabulary_padding():
  """Tables are padded to a multiple of vocab_multiple; logits (and so losses) cover vocab_size."""
  cfg = TransformerConfig(vocab_size=11, d_model=16, num_heads=2, d_ff=32, num_encoder_layers=1,
                          num_decoder_layers=1, dropout=0.0, max_len=16, share_embeddings=False)
  assert cfg.padded_vocab_size == 128
  assert TransformerConfig(vocab_size=128).padded_vocab_size == 128
  assert TransformerConfig(vocab_size=129, vocab_multiple=64).padded_vocab_size == 192
  assert TransformerConfig(vocab_size=11, vocab_multiple=1).padded_vocab_size == 11
  src = jnp.array([[1, 5, 6, 7]])
  model = Transformer(cfg)
  params = nn.meta.unbox(model.init(jax.random.key(0), src, src))["params"]
  assert params["src_embed"]["embedding"].shape == (128, 16)
  assert params["output"]["kernel"].shape == (16, 128)
  logits = model.apply({"params": params}, src, src)
  assert logits.shape == (1, 4, 11)
  # The real rows alone give the same logits: the padding is invisible to the model.
  small = Transformer(dataclasses.replace(cfg, vocab_multiple=1))
  cut = jax.tree.map(lambda x: x, params)
  cut["src_embed"]["embedding"] = params["src_embed"]["embedding"][:11]
  cut["tgt_embed"]["embedding"] = params["tgt_embed"]["embedding"][:11]
  cut["output"]["kernel"] = params["output"]["kernel"][:, :11]
  np.testing.assert_allclose(small.apply({"params": cut}, src, src), logits, rtol=1e-5, atol=1e-6)
  lm = TransformerLM(dataclasses.replace(cfg, share_embeddings=True))
  lm_vars = nn.meta.unbox(lm.init(jax.random.key(1), src))
  assert lm_vars["params"]["embed"]["embedding"].shape == (128, 16)
  assert lm.apply(lm_vars, src).shape == (1, 4, 11)


def test_sinusoidal_positions_formula():
  pe = model_lib.sinusoidal_positions(50, 16)
  pos, i = 37, 3
  assert pe[pos, 2 * i] == pytest.approx(math.sin(pos / 10000 ** (2 * i / 16)), abs=1e-6)
  assert pe[pos, 2 * i + 1] == pytest.approx(math.cos(pos / 10000 ** (2 * i / 16)), abs=1e-6)


def test_attention_matches_numpy():
  cfg = TransformerConfig(d_model=8, num_heads=2, dropout=0.0)
  layer = model_lib.MultiHeadAttention(cfg)
  rng = np.random.default_rng(0)
  q_in, kv_in = rng.normal(size=(1, 3, 8)).astype(np.float32), rng.normal(size=(1, 4, 8)).astype(np.float32)
  mask = np.array([True, True, False, True])[None, None, None, :]
  params = layer.init(jax.random.key(0), q_in, kv_in, mask, True)["params"]
  out = np.asarray(layer.apply({"params": params}, q_in, kv_in, mask, True))
  p = jax.tree.map(np.asarray, nn.meta.unbox(params))
  proj = lambda x, name: np.einsum("ble,ehd->blhd", x, p[name]["kernel"]) + p[name]["bias"]
  q, k, v = proj(q_in, "query"), proj(kv_in, "key"), proj(kv_in, "value")
  logits = np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(4)
  logits = np.where(mask, logits, -np.inf)
  w = np.exp(logits - logits.max(-1, keepdims=True))
  w /= w.sum(-1, keepdims=True)
  heads = np.einsum("bhqk,bkhd->bqhd", w, v)
  expected = np.einsum("blhd,ehd->ble", heads, p["out"]["kernel"]) + p["out"]["bias"]
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("causal", [False, True])
def test_fused_attention_matches_einsum(causal):
  """jax.nn.dot_product_attention ("xla"; "cudnn" is the same call on a GPU) == the einsum path."""
  rng = np.random.default_rng(2)
  x = rng.normal(size=(2, 5, 8)).astype(np.float32)
  mask = None if causal else np.array([True, True, False, True, True])[None, None, None, :]
  outs = []
  for attention in ("einsum", "xla"):
    layer = model_lib.MultiHeadAttention(TransformerConfig(d_model=8, num_heads=2, dropout=0.0,
                                                           attention=attention))
    params = layer.init(jax.random.key(0), x, x, mask, True, causal)["params"]
    outs.append(np.asarray(layer.apply({"params": params}, x, x, mask, True, causal)))
  np.testing.assert_allclose(outs[1], outs[0], rtol=1e-5, atol=1e-5)


def test_fused_attention_lm_logits_and_errors():
  tokens = jnp.asarray(np.random.default_rng(3).integers(0, 20, (2, 7)))
  cfgs = [TransformerConfig(vocab_size=20, d_model=16, num_heads=2, d_ff=32, num_encoder_layers=0,
                            num_decoder_layers=2, dropout=0.0, max_len=8, attention=a)
          for a in ("einsum", "xla")]
  params = model_lib.TransformerLM(cfgs[0]).init(jax.random.key(1), tokens)["params"]
  logits = [np.asarray(model_lib.TransformerLM(c).apply({"params": params}, tokens)) for c in cfgs]
  np.testing.assert_allclose(logits[1], logits[0], rtol=1e-4, atol=1e-4)
  with pytest.raises(ValueError, match="attention must be one of"):
    TransformerConfig(attention="flash")
  with pytest.raises(ValueError, match="no dropout on the attention weights"):
    lm = model_lib.TransformerLM(dataclasses.replace(cfgs[1], dropout=0.1))
    lm.apply({"params": params}, tokens, deterministic=False, rngs={"dropout": jax.random.key(0)})


@pytest.mark.parametrize("query_block,with_mask", [(1, False), (3, True), (4, False), (16, False)])
def test_blocked_causal_attention_matches_numpy(query_block, with_mask):
  """Query blocks that skip the masked keys == the full causal square (numpy), values and grads;
  blocks that do not divide the length, and a padding mask on top of the causal one."""
  rng = np.random.default_rng(5)
  q, k, v = (rng.normal(size=(2, 7, 2, 4)).astype(np.float32) for _ in range(3))
  mask = (rng.random((2, 1, 1, 7)) > 0.3) | np.eye(7, dtype=bool)[None, None] if with_mask else None
  visible = np.tril(np.ones((7, 7), bool))[None, None] & (True if mask is None else mask)
  logits = np.where(visible, np.einsum("bqhd,bkhd->bhqk", q, k) / 2.0, -np.inf)
  w = np.exp(logits - logits.max(-1, keepdims=True))
  expected = np.einsum("bhqk,bkhd->bqhd", w / w.sum(-1, keepdims=True), v)
  blocked = lambda q, k, v: model_lib.blocked_causal_attention(q, k, v, mask, query_block)
  np.testing.assert_allclose(jax.jit(blocked)(q, k, v), expected, rtol=1e-5, atol=1e-6)
  full = lambda q, k, v: model_lib.einsum_attention(
      q, k, v, model_lib.causal_mask(7) & (True if mask is None else mask))
  cotangent = rng.normal(size=q.shape).astype(np.float32)
  # jitted: one compile each, where op-by-op dispatch compiles every block's shapes anew
  grads = [jax.jit(jax.grad(lambda *a, f=f: jnp.vdot(f(*a), cotangent), argnums=(0, 1, 2)))(q, k, v)
           for f in (blocked, full)]
  chex.assert_trees_all_close(grads[0], grads[1], rtol=1e-5, atol=1e-5)


def test_blocked_attention_lm_equals_einsum():
  """attention="blocked": the LM's logits and gradients are the einsum path's, with dropout too."""
  tokens = jnp.asarray(np.random.default_rng(6).integers(0, 20, (2, 10)))
  base = TransformerConfig(vocab_size=20, d_model=16, num_heads=2, d_ff=32, num_encoder_layers=0,
                           num_decoder_layers=2, dropout=0.0, max_len=16, query_block=4)
  models = [model_lib.TransformerLM(dataclasses.replace(base, attention=a)) for a in ("einsum", "blocked")]
  params = nn.meta.unbox(jax.jit(models[0].init)(jax.random.key(1), tokens)["params"])
  logits = [jax.jit(lambda p, m=m: m.apply({"params": p}, tokens))(params) for m in models]
  chex.assert_trees_all_close(*logits, rtol=1e-5, atol=1e-5)
  grads = [jax.jit(jax.grad(lambda p, m=m: jnp.mean(m.apply({"params": p}, tokens) ** 2)))(params)
           for m in models]
  chex.assert_trees_all_close(*grads, rtol=1e-4, atol=1e-6)
  dropout_model = model_lib.TransformerLM(dataclasses.replace(base, attention="blocked", dropout=0.1))
  dropped = jax.jit(lambda p: dropout_model.apply({"params": p}, tokens, deterministic=False,
                                                  rngs={"dropout": jax.random.key(0)}))(params)
  assert bool(jnp.all(jnp.isfinite(dropped)))
  with pytest.raises(ValueError, match="query_block must be"):
    TransformerConfig(query_block=0)


@pytest.mark.parametrize("remat", [False, True])
def test_scanned_layers_equal_the_unrolled_stack(remat):
  """scan_layers: the same parameters, stacked on a leading axis, give the same logits and grads."""
  tokens = jnp.asarray(np.random.default_rng(4).integers(0, 20, (2, 6)))
  base = TransformerConfig(vocab_size=20, d_model=16, num_heads=2, d_ff=32, num_encoder_layers=0,
                           num_decoder_layers=3, dropout=0.0, max_len=8, remat=remat)
  unrolled = model_lib.TransformerLM(base)
  scanned = model_lib.TransformerLM(dataclasses.replace(base, scan_layers=True))
  params = nn.meta.unbox(unrolled.init(jax.random.key(1), tokens)["params"])
  layers = [params.pop(f"layer_{i}") for i in range(3)]
  stacked = dict(params, layers={"layer": jax.tree.map(lambda *xs: jnp.stack(xs), *layers)})
  abstract = jax.eval_shape(lambda: nn.meta.unbox(scanned.init(jax.random.key(1), tokens)["params"]))
  chex.assert_trees_all_equal_shapes(stacked, abstract)

  def loss(model, p):
    return jnp.mean(model.apply({"params": p}, tokens) ** 2)

  chex.assert_trees_all_close(scanned.apply({"params": stacked}, tokens),
                              unrolled.apply({"params": dict(params, **{f"layer_{i}": l for i, l in enumerate(layers)})}, tokens),
                              rtol=1e-5, atol=1e-5)
  grads = jax.grad(lambda p: loss(scanned, p))(stacked)
  ref = jax.grad(lambda p: loss(unrolled, p))(dict(params, **{f"layer_{i}": l for i, l in enumerate(layers)}))
  chex.assert_trees_all_close(grads["layers"]["layer"],
                              jax.tree.map(lambda *xs: jnp.stack(xs), *[ref[f"layer_{i}"] for i in range(3)]),
                              rtol=1e-4, atol=1e-6)


def test_label_smoothing_matches_numpy():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(2, 3, 6)).astype(np.float32)
  targets = np.array([[2, 3, 0], [5, 1, 4]])
  loss, nll, _ = smoothed_cross_entropy(jnp.asarray(logits), jnp.asarray(targets), 0.1)
  logp = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  rows = []
  for b in range(2):
    for t in range(3):
      if targets[b, t] == 0:
        continue
      dist = np.full(6, 0.1 / 4)
      dist[0] = 0.0
      dist[targets[b, t]] = 0.9
      rows.append(-(dist * logp[b, t]).sum())
  assert float(loss) == pytest.approx(np.mean(rows), rel=1e-5)
  assert float(nll) == pytest.approx(
      np.mean([-logp[b, t, targets[b, t]] for b in range(2) for t in range(3) if targets[b, t]]), rel=1e-5)


def _brute_force_decode(model, params, src, length):
  """Exhaustive search over all continuations: the most likely sequence (length penalty is constant)."""
  import itertools
  vocab = model.cfg.vocab_size
  best, best_score = None, -np.inf
  for seq in itertools.product(range(vocab), repeat=length):
    tgt = np.array([[1, *seq]], np.int32)
    logits = model.apply({"params": params}, src, tgt[:, :-1])
    logp = np.asarray(jax.nn.log_softmax(logits))[0]
    score = sum(logp[i, seq[i]] for i in range(length))
    if score > best_score:
      best, best_score = seq, score
  return np.array(best)


def test_greedy_and_beam_decoding():
  """Beam search with a beam as wide as the candidate set finds the exact argmax sequence."""
  cfg = TransformerConfig(vocab_size=4, d_model=16, num_heads=2, d_ff=32, num_encoder_layers=1,
                          num_decoder_layers=1, dropout=0.0, max_len=8)
  model = Transformer(cfg)
  src = jnp.array([[1, 2, 3, 2]], jnp.int32)
  params = model.init(jax.random.key(3), src, src)["params"]
  # Sharpen the random model so the argmax sequence is unambiguous but not trivial.
  params = jax.tree.map(lambda x: x * 3.0, nn.meta.unbox(params))
  exact = _brute_force_decode(model, params, src, 3)
  # 16 beams hold every 2-token prefix of a 4-symbol vocabulary, so the search is exhaustive.
  beam_tokens, _ = beam_search(model, params, src, 3, bos=1, eos=-1, beam_size=16)
  np.testing.assert_array_equal(np.asarray(beam_tokens)[0], exact)
  # Greedy equals step-by-step argmax of the model.
  greedy = np.asarray(greedy_decode(model, params, src, 3, bos=1))[0]
  tgt = [1]
  for _ in range(3):
    logits = model.apply({"params": params}, src, jnp.array([tgt], jnp.int32))
    tgt.append(int(jnp.argmax(logits[0, -1])))
  np.testing.assert_array_equal(greedy, tgt[1:])


def assert_three_steps_on_8_devices_equal_one(c):
  """Three train steps of config `c` on mesh data=2, fsdp=2, tensor=2 equal them on one device."""
  def run(mesh, devices):
    cfg = c.copy_and_resolve_references()
    cfg.mesh.update(mesh)
    trainer = Trainer(cfg, devices=devices)
    state, history = trainer.run_steps(trainer.init_state(), range(3))
    return [float(m["loss"]) for m in history], jax.device_get(state.params)

  one_losses, one_params = run(dict(data=1, fsdp=1, tensor=1, stage=1), jax.devices()[:1])
  many_losses, many_params = run(dict(data=2, fsdp=2, tensor=2, stage=1), jax.devices())
  np.testing.assert_allclose(many_losses, one_losses, rtol=1e-5)
  chex.assert_trees_all_close(many_params, one_params, rtol=1e-4, atol=1e-6)


@pytest.mark.parametrize("config_module,overrides", [
    (copy_config, {}),
    (lm_config, {"model.vocab_size": 128}),
])
def test_sharded_step_equals_unsharded(config_module, overrides, shakespeare_or_skip):
  """Mesh data=2, fsdp=2, tensor=2 on 8 devices gives the loss and parameters of one device."""
  if config_module is lm_config:
    shakespeare_or_skip()
  c = config_module.get_config("tiny" if config_module is lm_config else None)
  c.batch_size = 8
  c.model.d_model, c.model.d_ff = 32, 64
  # The copy task's vocabulary (11) is padded to 128 rows, so the tensor axis splits it.
  # Plain SGD: Adam would turn float noise in exactly-zero gradients (the key bias) into +-lr steps.
  c.optimizer.name, c.optimizer.schedule, c.optimizer.learning_rate = "sgd", "constant", 0.1

  assert_three_steps_on_8_devices_equal_one(c)


def _small_copy_config(arg=None, **model):
  c = copy_config.get_config(arg)
  c.batch_size = 4
  c.dtype = "float32"
  c.data.eval_examples, c.data.beam_examples = 8, 4
  c.model.update(dict(d_model=32, num_heads=4, d_ff=64, num_encoder_layers=1, num_decoder_layers=1,
                      max_len=16, **model))
  return c


def test_eval_loss_is_deterministic_with_dropout():
  """train=False switches dropout off whatever the rng; train=True draws it from the rng."""
  c = _small_copy_config("base", dropout=0.3)
  task = load_task(c)
  variables = nn.meta.unbox(jax.jit(task.init)(jax.random.key(0)))
  batch = task.train_batch(0)
  loss = jax.jit(task.loss, static_argnames="train")
  # "rbg" keys compile the 12 dropout masks in a third of threefry's time; same semantics.
  key = lambda seed: jax.random.key(seed, impl="rbg")
  eval_1, metrics, updates = loss(variables, batch, key(1), train=False)
  eval_2, _, _ = loss(variables, batch, key(2), train=False)
  train_1, _, _ = loss(variables, batch, key(1), train=True)
  train_1b, _, _ = loss(variables, batch, key(1), train=True)
  train_2, _, _ = loss(variables, batch, key(2), train=True)
  assert float(eval_1) == float(eval_2)
  assert float(train_1) == float(train_1b) and float(train_1) != float(train_2)
  assert float(train_1) != float(eval_1)
  assert set(metrics) == {"nll", "token_accuracy"} and updates == {}


def test_copy_task_data_and_decoding():
  c = _small_copy_config()
  task = load_task(c)
  spec = task.batch_spec()
  batch = task.train_batch(3)
  assert {k: (v.shape, v.dtype) for k, v in batch.items()} == {k: (s.shape, s.dtype) for k, s in spec.items()}
  np.testing.assert_array_equal(batch["tgt_in"], batch["src"][:, :-1])
  np.testing.assert_array_equal(batch["tgt_out"], batch["src"][:, 1:])
  # Two processes' rows concatenate to the global batch of the step.
  shards = [local_batch(task, 3, c.batch_size, p, 2) for p in range(2)]
  for name in spec:
    np.testing.assert_array_equal(np.concatenate([s[name] for s in shards]), batch[name])
  # Held-out sequences: fixed, and from a stream no training step draws.
  held = task.held_out()
  assert held.shape == (8, c.data.seq_len) and np.all(held[:, 0] == 1)
  np.testing.assert_array_equal(held, load_task(c).held_out())
  assert not any(np.array_equal(held[:4], task.train_batch(s)["src"]) for s in range(3))
  assert [b["src"].shape for b in task.eval_batches()] == [(4, c.data.seq_len)] * 2
  variables = nn.meta.unbox(task.init(jax.random.key(0)))
  for step in (1, 2):
    out = task.evaluate(variables, step)
    assert set(out) == {"exact_match_greedy", "exact_match_beam"}
  assert task._decode._cache_size() == 1 and task._beam._cache_size() == 1  # jitted once


def test_copy_task_has_no_pipeline_stages_but_the_lm_has():
  c = _small_copy_config()
  c.mesh.stage = 2
  with pytest.raises(ConfigError, match="no pipeline stages"):
    load_task(c)
  lm = lm_config.get_config("tiny")
  lm.mesh.stage = 2
  assert load_task(lm).cfg.num_stages == 2


def test_noam_d_model_follows_d_model_overrides():
  for spec, d in (("configs/transformer.py", 256), ("configs/transformer.py:base", 64)):
    config = load_config(spec, [f"--config.model.d_model={d}"])
    assert config.optimizer.noam_d_model == d
  assert load_config("configs/transformer.py:big").optimizer.noam_d_model == 1024


def test_sharded_copy_config_builds_on_a_data_fsdp_tensor_mesh():
  """The default copy config (vocabulary 11, padded to 128) splits over data=2, fsdp=2, tensor=2."""
  config = load_config("configs/transformer.py", ["--config.mesh.data=2", "--config.mesh.fsdp=2",
                                                  "--config.mesh.tensor=2"])
  trainer = Trainer(config)
  params = trainer.abstract_state().params
  assert params["src_embed"]["embedding"].shape == (128, config.model.d_model)
  assert tuple(params["src_embed"]["embedding"].sharding.spec) == ("tensor", "fsdp")


def _char_task(monkeypatch, ids_len=97, seq_len=8):
  """The tiny char LM on a synthetic corpus (token i at position i): windows are recognisable."""
  c = lm_config.get_config("tiny")
  c.batch_size, c.data.seq_len = 4, seq_len
  task = load_task(c)
  ids = np.arange(ids_len, dtype=np.int32)
  monkeypatch.setattr(task, "_text", (ids, ids[:40], [chr(32 + i) for i in range(ids_len)]))
  return task


def test_char_lm_batch_spec_and_init_read_no_data(monkeypatch):
  from core import datasets  # pylint: disable=g-import-not-at-top

  def missing():
    raise DataMissingError("no corpus in this test")
  monkeypatch.setattr(datasets, "shakespeare_text", missing)
  c = lm_config.get_config("tiny")
  task = load_task(c)
  b, t = c.batch_size, c.data.seq_len
  assert {k: (s.shape, s.dtype) for k, s in task.batch_spec().items()} == {
      "inputs": ((b, t), np.int32), "targets": ((b, t), np.int32)}
  shapes = jax.eval_shape(task.init, jax.random.key(0))
  assert nn.meta.unbox(shapes)["params"]["embed"]["embedding"].shape == (128, c.model.d_model)
  with pytest.raises(DataMissingError):
    task.check_data()


def test_char_lm_windows_through_the_grain_pipeline(monkeypatch):
  """Example i is the window starting at i * seq_len; each epoch is a fresh permutation of them."""
  task = _char_task(monkeypatch)
  source = task.train_examples()
  assert len(source) == 12  # (97 - 1) // 8
  np.testing.assert_array_equal(source[5]["inputs"], np.arange(40, 48))
  np.testing.assert_array_equal(source[5]["targets"], np.arange(41, 49))
  np.testing.assert_array_equal(source[11]["targets"], np.arange(89, 97))
  # 3 steps of 4 rows make one epoch: every window exactly once; the next epoch reorders them.
  epochs = [np.concatenate([local_batch(task, s, 4)["inputs"][:, 0] for s in range(e * 3, e * 3 + 3)])
            for e in range(2)]
  for starts in epochs:
    assert sorted(starts) == list(range(0, 96, 8))
  assert list(epochs[0]) != list(epochs[1])
  batch = local_batch(task, 4, 4)
  np.testing.assert_array_equal(batch["inputs"], batch["inputs"][:, :1] + np.arange(8))
  np.testing.assert_array_equal(batch["targets"], batch["inputs"] + 1)
  assert batch["inputs"].dtype == np.int32
  shards = [local_batch(task, 4, 4, p, 2) for p in range(2)]
  for name in batch:
    np.testing.assert_array_equal(np.concatenate([s[name] for s in shards]), batch[name])


def test_char_lm_sample_jits_once(monkeypatch):
  task = _char_task(monkeypatch)
  variables = nn.meta.unbox(task.init(jax.random.key(0)))
  first = task.sample(variables, "ab", 5, temperature=1.0, seed=1)
  again = task.sample(variables, "ab", 5, temperature=1.0, seed=1)
  assert first == again and len(first) == 7
  assert task._forward._cache_size() == 1
  eval_batches = task.eval_batches()
  assert len(eval_batches) == task.config.data.eval_batches
  assert all(b["inputs"].shape == (4, 8) for b in eval_batches)


# ---- incremental decoding (key-value cache) -----------------------------------------------

def test_cached_decoding_equals_recomputation():
  """Greedy and beam search with the key-value cache == re-running the decoder on the prefix.

  With this seed the model emits PAD inside a live row (row 3: the full decoder masks PAD keys,
  so the cache must too), and beam search picks another sequence than greedy there.
  """
  cfg = TransformerConfig(vocab_size=6, d_model=16, num_heads=2, d_ff=32, num_encoder_layers=1,
                          num_decoder_layers=2, dropout=0.0, max_len=16)
  model = Transformer(cfg)
  src = jnp.asarray(np.random.default_rng(0).integers(1, 6, (4, 7)), jnp.int32).at[0, 5:].set(0)
  params = nn.meta.unbox(model.init(jax.random.key(5), src, src))["params"]
  params = jax.tree.map(lambda x: x * 3.0, params)  # a sharper random model: varied outputs
  decode = jax.jit(lambda p, s, cached: greedy_decode(model, p, s, 8, bos=1, eos=2, use_cache=cached,
                                                      return_logits=True), static_argnums=2)
  (tokens, logits), (ref_tokens, ref_logits) = decode(params, src, True), decode(params, src, False)
  np.testing.assert_array_equal(tokens, ref_tokens)
  np.testing.assert_allclose(logits, ref_logits, rtol=1e-3, atol=1e-3)
  assert 0 in np.asarray(tokens)[3, :-1] and len(np.unique(np.asarray(tokens))) > 2
  beam = jax.jit(lambda p, s, cached: beam_search(model, p, s, 8, bos=1, eos=2, beam_size=4,
                                                  use_cache=cached), static_argnums=2)
  (beam_tokens, scores), (ref_tokens, ref_scores) = beam(params, src, True), beam(params, src, False)
  np.testing.assert_array_equal(beam_tokens, ref_tokens)
  np.testing.assert_allclose(scores, ref_scores, rtol=1e-5, atol=1e-5)
  assert np.any(np.asarray(beam_tokens) != np.asarray(tokens))


def test_cache_holds_the_encoder_projections_once():
  """init_cache: per decoder layer, the self-attention buffers and the encoder's projected keys."""
  cfg = TransformerConfig(vocab_size=6, d_model=16, num_heads=2, d_ff=32, num_encoder_layers=1,
                          num_decoder_layers=2, dropout=0.0, max_len=16)
  model = Transformer(cfg)
  src = jnp.ones((3, 5), jnp.int32)
  params = nn.meta.unbox(model.init(jax.random.key(0), src, src))["params"]
  encoded = model.apply({"params": params}, src, method=Transformer.encode)
  cache = model_lib.init_cache(model, params, encoded, src, 9)
  layer = cache["decoder_layers_1"]
  assert layer["self_attention_block"]["self_attention"]["cached_key"].shape == (3, 9, 2, 8)
  assert int(cache["decode_position"]["index"]) == 0
  cross = layer["cross_attention_block"]["cross_attention"]["cached_key"]
  p = params["decoder_layers_1"]["cross_attention_block"]["cross_attention"]["key"]
  np.testing.assert_allclose(cross, np.einsum("ble,ehd->blhd", encoded, p["kernel"]) + p["bias"],
                             rtol=1e-5, atol=1e-5)


# ---- translation --------------------------------------------------------------------------

NUMBERS = {"one": "uno", "two": "dos", "three": "tres", "four": "cuatro", "five": "cinco",
           "six": "seis", "seven": "siete", "eight": "ocho"}


def _number_pairs(n, seed):
  """English -> Spanish number words, word for word: a real (if small) translation task."""
  rng = np.random.default_rng(seed)
  words = list(NUMBERS)
  pairs = []
  for _ in range(n):
    sentence = [words[i] for i in rng.integers(0, len(words), rng.integers(1, 6))]
    pairs.append((" ".join(sentence), " ".join(NUMBERS[w] for w in sentence)))
  return pairs


@pytest.fixture
def number_corpus(monkeypatch):
  """core.translation_data.bible_pairs replaced by number-word pairs (train, valid, test)."""
  from core import translation_data  # pylint: disable=g-import-not-at-top
  splits = {"train": _number_pairs(160, 0), "valid": _number_pairs(16, 1), "test": _number_pairs(12, 2)}
  monkeypatch.setattr(translation_data, "bible_pairs", lambda english="kjv": splits)
  return splits


def _translate_config(tmp_path):
  c = copy_config.get_config("translate")
  c.data.vocab_dir = str(tmp_path)
  c.data.vocab_size = 40
  c.data.max_len, c.data.decode_len, c.data.decode_batch = 12, 12, 8
  c.data.eval_examples, c.data.eval_batches = 10, 2
  c.batch_size = 8
  c.model.update(d_model=32, num_heads=4, d_ff=64, num_encoder_layers=1, num_decoder_layers=1, max_len=16)
  return c


def test_translation_task_data_and_evaluation(tmp_path, number_corpus):
  c = _translate_config(tmp_path)
  task = load_task(c)
  source = task.train_examples()
  assert len(source) == 160
  _, src_vocab, tgt_vocab = task.data()
  example = source[0]
  english, spanish = number_corpus["train"][0]
  assert src_vocab.decode(example["src"]) == english and tgt_vocab.decode(example["tgt_out"]) == spanish
  np.testing.assert_array_equal(example["tgt_in"][1:], np.where(example["tgt_out"] == 2, 0, example["tgt_out"])[:-1])
  spec = task.batch_spec()
  batch = local_batch(task, 0, c.batch_size)
  assert {k: (v.shape, v.dtype) for k, v in batch.items()} == {k: (s.shape, s.dtype) for k, s in spec.items()}
  assert [b["src"].shape for b in task.eval_batches()] == [(8, 12)] * 2
  # Test verses: evenly spaced over the split, both ends included.
  sample = task.test_sample()
  assert sample[0] == number_corpus["test"][0] and sample[-1] == number_corpus["test"][-1] and len(sample) == 10
  variables = nn.meta.unbox(task.init(jax.random.key(0)))
  out = task.evaluate(variables, 0)
  assert {"bleu", "bleu_greedy", "bleu_len_0_10"} <= set(out) and 0.0 <= out["bleu"] <= 100.0
  # A decoder that returns the reference's tokens scores BLEU 100: the pipeline around it is right.
  refs = {e: tgt_vocab.encode(s) for e, s in number_corpus["test"]}
  assert task._beam._cache_size() == 1 and task._greedy._cache_size() == 1
  rows = [refs[e] for e, _ in sample]

  def oracle(params, src):
    del params
    out = np.zeros((len(src), c.data.decode_len), np.int32)
    for i, row in enumerate(src):
      text = src_vocab.decode(row)
      ids = refs.get(text, [])
      out[i, :len(ids) + 1] = [*ids, 2]
    return out
  task._beam = task._greedy = oracle
  assert rows and task.evaluate(variables, 0)["bleu"] == pytest.approx(100.0)


def test_translation_sharded_step_equals_unsharded(tmp_path, number_corpus):
  """Translation on mesh data=2, fsdp=2, tensor=2 (8 devices) == one device: losses and params."""
  del number_corpus
  c = _translate_config(tmp_path)
  c.model.dropout = 0.0
  c.optimizer.name, c.optimizer.schedule, c.optimizer.learning_rate = "sgd", "constant", 0.1

  assert_three_steps_on_8_devices_equal_one(c)


def test_translation_config_errors(tmp_path):
  c = _translate_config(tmp_path)
  c.data.decode_len = 16  # = model.max_len: no position left for the last step
  with pytest.raises(ConfigError, match="decode_len"):
    load_task(c)
  c = _translate_config(tmp_path)
  c.data.max_len = 17
  with pytest.raises(ConfigError, match="data.max_len"):
    load_task(c)
