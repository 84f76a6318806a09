"""The Transformer against numpy references, imported standalone, and sharded vs unsharded."""
import math

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs import transformer as copy_config
from configs import transformer_lm as lm_config
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
  params = jax.jit(model.init)(jax.random.key(0), src, tgt)["params"]
  logits = jax.jit(model.apply)({"params": params}, src, tgt)
  assert logits.shape == (1, 3, 20) and bool(jnp.all(jnp.isfinite(logits)))
  lm = TransformerLM(cfg)
  lm_params = lm.init(jax.random.key(1), tgt)["params"]
  assert jax.jit(lm.apply)({"params": lm_params}, tgt).shape == (1, 3, 20)


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
  if config_module is copy_config:
    c.data.vocab_size = 12  # the tensor axis splits the vocabulary in two
  # Plain SGD: Adam would turn float noise in exactly-zero gradients (the key bias) into +-lr steps.
  c.optimizer.name, c.optimizer.schedule, c.optimizer.learning_rate = "sgd", "constant", 0.1

  def run(mesh, devices):
    cfg = c.copy_and_resolve_references()
    cfg.mesh.update(mesh)
    trainer = Trainer(cfg, devices=devices)
    state, history = trainer.run_steps(trainer.init_state(), range(3))
    return [float(m["loss"]) for m in history], jax.device_get(state.params)

  one_losses, one_params = run(dict(data=1, fsdp=1, tensor=1, stage=1), jax.devices()[:1])
  many_losses, many_params = run(dict(data=2, fsdp=2, tensor=2, stage=1), jax.devices())
  np.testing.assert_allclose(many_losses, one_losses, rtol=1e-5)
  jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6), many_params, one_params)
