"""A trained character LM of this repository as a probability model for a coder.

`load(workdir)` restores the newest checkpoint of a `configs/transformer_lm.py` run and
returns a `CharModel`: the alphabet the run was trained on, and two jitted functions that
compute next-character probabilities with a key/value cache:

  prefill(params, tokens [B, C])   -> probs [B, K] after the C context tokens, cache
  step(params, cache, tokens [B], position) -> probs [B, K] after one more token, cache

The coder calls exactly the same sequence of these functions with the same arguments when
it encodes and when it decodes, so both see bit-identical float32 probabilities (one
executable, one input: XLA on CPU is deterministic). The forward pass is written here on the
run's parameters rather than through `TransformerLM.apply` because the model has no cache:
recomputing a 128-character window for each decoded character costs ~100x more. The tests
check it against `TransformerLM.apply`.
"""
from __future__ import annotations

import functools
import hashlib
import json

import jax
import jax.numpy as jnp
import numpy as np

from core.task import ConfigError


class CharModel:
  """Next-character probabilities over `alphabet` from a decoder-only TransformerLM's params."""

  def __init__(self, params, cfg, alphabet: str, max_window: int, step: int = 0):
    self.params = jax.tree.map(lambda x: jnp.asarray(x, jnp.float32), params)
    self.cfg = cfg
    self.alphabet = alphabet
    self.max_window = int(max_window)  # the longest context the model was trained on
    self.checkpoint_step = step
    self.heads = cfg.num_heads
    self.layers = cfg.num_decoder_layers
    self.positions = jnp.asarray(_sinusoids(cfg.max_len, cfg.d_model))

  @functools.cached_property
  def fingerprint(self) -> bytes:
    """16 bytes of SHA-256 over the parameters, their names, the architecture and the alphabet."""
    h = hashlib.sha256()
    h.update(json.dumps([self.cfg.d_model, self.cfg.num_heads, self.cfg.d_ff, self.layers,
                         self.cfg.pre_norm, self.max_window]).encode())
    h.update(self.alphabet.encode("utf-8"))
    for path, x in jax.tree_util.tree_flatten_with_path(self.params)[0]:
      h.update(jax.tree_util.keystr(path).encode())
      h.update(np.ascontiguousarray(np.asarray(x, np.float32)).tobytes())
    return h.digest()[:16]

  # ---- the forward pass, with a cache ------------------------------------------------------
  def _embed(self, params, tokens, offset):
    x = jnp.take(params["embed"]["embedding"], tokens, axis=0) * jnp.sqrt(jnp.float32(self.cfg.d_model))
    return x + jax.lax.dynamic_slice_in_dim(self.positions, offset, tokens.shape[1])[None]

  def _probs(self, params, x):
    """x [B, d] of the last position -> probabilities [B, K] over the alphabet (float32)."""
    if self.cfg.pre_norm:
      x = _layer_norm(x, params["final_norm"])
    logits = x @ params["embed"]["embedding"].T
    return jax.nn.softmax(logits[:, :len(self.alphabet)], axis=-1)

  def _layer(self, p, x, k_cache, v_cache, offset, mask):
    """One decoder block on x [B, T, d] at positions offset.. (cache [B, W, H, D] updated)."""
    attn = p["self_attention_block"]
    h = _layer_norm(x, attn["LayerNorm_0"]) if self.cfg.pre_norm else x
    sa = attn["self_attention"]
    q = _project(h, sa["query"])
    k_cache = jax.lax.dynamic_update_slice_in_dim(k_cache, _project(h, sa["key"]), offset, axis=1)
    v_cache = jax.lax.dynamic_update_slice_in_dim(v_cache, _project(h, sa["value"]), offset, axis=1)
    scores = jnp.einsum("bqhd,bkhd->bhqk", q, k_cache) / jnp.sqrt(jnp.float32(q.shape[-1]))
    scores = jnp.where(mask, scores, jnp.finfo(jnp.float32).min)
    out = jnp.einsum("bhqk,bkhd->bqhd", jax.nn.softmax(scores, axis=-1), v_cache)
    out = jnp.einsum("blhd,ehd->ble", out, sa["out"]["kernel"]) + sa["out"]["bias"]
    x = x + out if self.cfg.pre_norm else _layer_norm(x + out, attn["LayerNorm_0"])
    ffn = p["ffn"]
    h = _layer_norm(x, ffn["LayerNorm_0"]) if self.cfg.pre_norm else x
    ff = ffn["feed_forward"]
    h = jax.nn.relu(h @ ff["wi"]["kernel"] + ff["wi"]["bias"]) @ ff["wo"]["kernel"] + ff["wo"]["bias"]
    x = x + h if self.cfg.pre_norm else _layer_norm(x + h, ffn["LayerNorm_0"])
    return x, k_cache, v_cache

  def _run(self, params, cache, tokens, offset, window):
    ks, vs = cache
    length = tokens.shape[1]
    query_pos = offset + jnp.arange(length)
    mask = (jnp.arange(window)[None, :] <= query_pos[:, None])[None, None]
    x = self._embed(params, tokens, offset)
    new_k, new_v = [], []
    for i in range(self.layers):
      x, k, v = self._layer(params[f"layer_{i}"]["block"], x, ks[i], vs[i], offset, mask)
      new_k.append(k)
      new_v.append(v)
    return self._probs(params, x[:, -1]), (tuple(new_k), tuple(new_v))

  def empty_cache(self, batch: int, window: int):
    shape = (batch, window, self.heads, self.cfg.d_model // self.heads)
    zeros = tuple(jnp.zeros(shape, jnp.float32) for _ in range(self.layers))
    return zeros, zeros

  @functools.partial(jax.jit, static_argnums=(0, 3))
  def prefill(self, params, tokens, window: int):
    """tokens [B, C] at positions 0..C-1 of a window of `window`: (probs [B, K], cache)."""
    return self._run(params, self.empty_cache(tokens.shape[0], window), tokens, 0, window)

  @functools.partial(jax.jit, static_argnums=(0,))
  def step(self, params, cache, tokens, position):
    """One token [B] per row at `position` (< window): (probs [B, K], cache)."""
    window = cache[0][0].shape[1]
    return self._run(params, cache, tokens[:, None], position, window)

  def __hash__(self):  # jit's static self: one compiled function per model object
    return id(self)

  def __eq__(self, other):
    return self is other


def _sinusoids(max_len: int, d_model: int) -> np.ndarray:
  from papers.transformer.model import sinusoidal_positions  # pylint: disable=g-import-not-at-top
  return sinusoidal_positions(max_len, d_model)


def _layer_norm(x, p, eps: float = 1e-6):
  # flax.linen.LayerNorm's defaults (fast variance E[x^2] - E[x]^2, epsilon 1e-6).
  mean = jnp.mean(x, axis=-1, keepdims=True)
  var = jnp.maximum(jnp.mean(jnp.square(x), axis=-1, keepdims=True) - jnp.square(mean), 0.0)
  return (x - mean) * jax.lax.rsqrt(var + eps) * p["scale"] + p["bias"]


def _project(x, p):
  return jnp.einsum("ble,ehd->blhd", x, p["kernel"]) + p["bias"]


def from_task(task, params, step: int = 0) -> CharModel:
  """A CharModel of a CharLMTask and its (unboxed) params, e.g. freshly initialised in a test."""
  if task.num_stages != 1:
    raise ConfigError("a pipelined (mesh.stage > 1) TransformerLM is not supported by the coder")
  alphabet = "".join(task.corpus()[2])
  return CharModel(params, task.cfg, alphabet, task.seq_len, step)


def load(workdir: str) -> CharModel:
  """The newest checkpoint of a configs/transformer_lm.py training workdir, on one CPU device."""
  from core.config import run_config  # pylint: disable=g-import-not-at-top
  from core.train import restore_latest  # pylint: disable=g-import-not-at-top
  from papers.transformer.task import CharLMTask  # pylint: disable=g-import-not-at-top
  config = run_config(workdir, f"python -m launch.train --config configs/transformer_lm.py --workdir {workdir}")
  config.dtype = "float32"  # the coder's probabilities are float32 whatever the run trained in
  trainer, state, step = restore_latest(config, workdir)
  if not isinstance(trainer.task, CharLMTask):
    raise ConfigError(f"{workdir} holds a run of {config.task!r}, not of a character Transformer LM "
                      f"(configs/transformer_lm.py)")
  params = jax.tree.map(np.asarray, state.params)
  return from_task(trainer.task, params, step)
