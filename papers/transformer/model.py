"""The Transformer of Vaswani et al. 2017, with the Annotated Transformer's details.

Encoder-decoder (`Transformer`) and decoder-only (`TransformerLM`) models built from
the same blocks: multi-head scaled dot-product attention, position-wise feed-forward,
sinusoidal positions, embeddings scaled by sqrt(d_model) and shared between source,
target and the pre-softmax projection. Sub-layers are pre-norm with a final norm,
as in the Annotated Transformer (the paper's post-norm is `pre_norm=False`).

Parameters carry logical axis names only; the models run unsharded anywhere. The embedding
(and untied output) tables have `padded_vocab_size` rows, `vocab_size` rounded up to a
multiple of `vocab_multiple` (as in MaxText and T5X), so that they split over any mesh's
`tensor` axis; the logits are sliced back to `vocab_size`, so losses and decoding never see
the padding rows (they get no gradient).
"""
from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

PAD = 0


ATTENTION_IMPLEMENTATIONS = ("einsum", "blocked", "xla", "cudnn")


@dataclasses.dataclass(frozen=True)
class TransformerConfig:
  vocab_size: int = 32000
  d_model: int = 512
  num_heads: int = 8
  d_ff: int = 2048
  num_encoder_layers: int = 6
  num_decoder_layers: int = 6
  dropout: float = 0.1
  max_len: int = 512
  share_embeddings: bool = True
  # With share_embeddings=False (separate source and target vocabularies): True ties the
  # pre-softmax projection to the target embedding alone (Press & Wolf 2017), False unties it.
  tie_output: bool = False
  pre_norm: bool = True
  dtype: Any = jnp.float32
  # Embedding/output tables have padded_vocab_size rows, a multiple of this (1 = no padding).
  vocab_multiple: int = 128
  # Pipeline parallelism of the decoder-only stack (core.pipeline), 1 = off.
  num_stages: int = 1
  microbatches: int = 1
  remat: bool = True
  # "einsum": scores as einsums and a softmax (dropout on the weights, any mask). "blocked": the
  # same, causal self-attention split into blocks of `query_block` queries that each see only the
  # keys up to their last query (the masked half of the square is not computed; other attention
  # is einsum). "xla" or "cudnn": jax.nn.dot_product_attention (cuDNN's fused flash kernel on
  # NVIDIA GPUs: causal blocks skipped, no [length x length] scores in memory); these have no
  # attention dropout.
  attention: str = "einsum"
  query_block: int = 64
  # The decoder-only stack as one nn.scan over stacked layer parameters (leading "layers" axis):
  # the step compiles one layer, so compile time stays flat in depth; with `remat` each layer's
  # activations are recomputed in the backward pass (memory flat in depth too).
  scan_layers: bool = False

  def __post_init__(self):
    if self.vocab_multiple < 1:
      raise ValueError(f"vocab_multiple must be a positive integer, got {self.vocab_multiple}")
    if self.query_block < 1:
      raise ValueError(f"query_block must be a positive integer, got {self.query_block}")
    if self.attention not in ATTENTION_IMPLEMENTATIONS:
      raise ValueError(f"attention must be one of {ATTENTION_IMPLEMENTATIONS}, got {self.attention!r}")

  @property
  def padded_vocab_size(self) -> int:
    """vocab_size rounded up to a multiple of vocab_multiple: the rows of the embedding table."""
    return -(-self.vocab_size // self.vocab_multiple) * self.vocab_multiple


def vocab_logits(logits, cfg: TransformerConfig):
  """Padded-vocabulary logits (sharded over 'vocab') -> float32 logits over the real vocab_size."""
  logits = nn.with_logical_constraint(logits.astype(jnp.float32), ("batch", "length", "vocab"))
  return logits[..., :cfg.vocab_size]


# Paper sizes (Vaswani et al. 2017, Table 3) and a tiny size for CPU runs.
SIZES = {
    "tiny": dict(d_model=64, num_heads=4, d_ff=256, num_encoder_layers=2, num_decoder_layers=2, dropout=0.0),
    "small": dict(d_model=256, num_heads=4, d_ff=1024, num_encoder_layers=3, num_decoder_layers=3),
    "base": dict(d_model=512, num_heads=8, d_ff=2048, num_encoder_layers=6, num_decoder_layers=6, dropout=0.1),
    "big": dict(d_model=1024, num_heads=16, d_ff=4096, num_encoder_layers=6, num_decoder_layers=6, dropout=0.3),
}


def sinusoidal_positions(max_len: int, d_model: int) -> np.ndarray:
  """PE(pos, 2i) = sin(pos / 10000^(2i/d)), PE(pos, 2i+1) = cos(pos / 10000^(2i/d))."""
  position = np.arange(max_len)[:, None]
  div = np.exp(np.arange(0, d_model, 2) * (-np.log(10000.0) / d_model))
  pe = np.zeros((max_len, d_model), np.float32)
  pe[:, 0::2] = np.sin(position * div)
  pe[:, 1::2] = np.cos(position * div)
  return pe


def causal_mask(length: int) -> jax.Array:
  return jnp.tril(jnp.ones((1, 1, length, length), bool))


def padding_mask(query_tokens, key_tokens) -> jax.Array:
  """[batch, 1, q, k]: True where the key is a real token."""
  del query_tokens
  return (key_tokens != PAD)[:, None, None, :]


def einsum_attention(q, k, v, mask=None, dropout=None):
  """Scaled dot-product attention, eq. (1): softmax(QK^T / sqrt(d_k)) V, as einsums.

  q [batch, q, heads, head_dim], k and v [batch, k, heads, head_dim], `mask` broadcastable to
  [batch, heads, q, k] (True = attend); `dropout` (weights -> weights) on the attention weights.
  """
  logits = jnp.einsum("bqhd,bkhd->bhqk", q, k) / jnp.sqrt(q.shape[-1]).astype(q.dtype)
  if mask is not None:
    logits = jnp.where(mask, logits, jnp.finfo(logits.dtype).min)
  weights = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(q.dtype)
  if dropout is not None:
    weights = dropout(weights)
  return jnp.einsum("bhqk,bkhd->bqhd", weights, v)


def blocked_causal_attention(q, k, v, mask=None, query_block: int = 64, dropout=None):
  """Causal `einsum_attention` (query i sees keys j <= i, and `mask`) in blocks of queries.

  Each block of `query_block` queries attends to the keys up to its last query only: the
  masked keys after it would get weight exactly 0, so the result is the full square's up to
  float rounding, at about half the score FLOPs for many blocks. The heads move in front once
  ([batch, heads, length, head_dim]) rather than in every block's einsums.
  """
  length = q.shape[1]
  q, k, v = (jnp.swapaxes(a, 1, 2) for a in (q, k, v))
  scale = jnp.sqrt(q.shape[-1]).astype(q.dtype)
  out = []
  for start in range(0, length, query_block):
    stop = min(start + query_block, length)
    block_mask = causal_mask(length)[..., start:stop, :stop]
    if mask is not None:
      rows = slice(start, stop) if mask.shape[-2] != 1 else slice(None)
      block_mask = block_mask & mask[..., rows, :stop if mask.shape[-1] != 1 else None]
    logits = jnp.einsum("bhqd,bhkd->bhqk", q[:, :, start:stop], k[:, :, :stop]) / scale
    logits = jnp.where(block_mask, logits, jnp.finfo(logits.dtype).min)
    weights = jax.nn.softmax(logits.astype(jnp.float32), axis=-1).astype(q.dtype)
    if dropout is not None:
      weights = dropout(weights)
    out.append(jnp.einsum("bhqk,bhkd->bhqd", weights, v[:, :, :stop]))
  return jnp.swapaxes(jnp.concatenate(out, axis=2), 1, 2)


def matmul_2d(x, w, transpose_b: bool = False):
  """x[..., k] @ w[k, n] (or w[n, k].T) with the leading dims of x flattened into one.

  A dot over [batch, length, k] contracts two dims in its weight gradient, which XLA:CPU runs
  through an extra transpose of the activations; the same product on [batch * length, k] does
  not (a ~15% faster feed-forward, forward + backward, on the CPU). The reshapes are free.
  """
  out = jax.lax.dot_general(x.reshape(-1, x.shape[-1]), w, (((1,), (1 if transpose_b else 0,)), ((), ())))
  return out.reshape(*x.shape[:-1], out.shape[-1])


class Dense2D(nn.Dense):
  """nn.Dense (same parameters) whose matmul runs on the flattened leading dims (`matmul_2d`)."""

  def __call__(self, inputs):
    return super().__call__(inputs.reshape(-1, inputs.shape[-1])).reshape(*inputs.shape[:-1], self.features)


def _dense(features: int, axes, cfg, name, use_bias=True):
  return Dense2D(
      features, dtype=cfg.dtype, use_bias=use_bias, name=name,
      kernel_init=nn.with_logical_partitioning(nn.initializers.xavier_uniform(), axes),
      bias_init=nn.with_logical_partitioning(nn.initializers.zeros_init(), axes[-1:]))


class HeadProjection(nn.Module):
  """x[..., d_model] -> [..., heads, head_dim] (or back, with `inverse`), one kernel [embed, heads, kv]."""
  cfg: TransformerConfig
  inverse: bool = False

  @nn.compact
  def __call__(self, x):
    cfg = self.cfg
    shape = (cfg.d_model, cfg.num_heads, cfg.d_model // cfg.num_heads)
    # Xavier over (d_model, d_model), as for the paper's unsplit projection matrices.
    init = nn.initializers.variance_scaling(1.0, "fan_avg", "uniform", in_axis=0, out_axis=(1, 2))
    kernel = self.param("kernel", nn.with_logical_partitioning(init, ("embed", "heads", "kv")), shape)
    kernel = kernel.astype(cfg.dtype).reshape(cfg.d_model, cfg.d_model)  # [embed, heads * kv]
    if self.inverse:
      bias = self.param("bias", nn.with_logical_partitioning(nn.initializers.zeros_init(), ("embed",)),
                        (cfg.d_model,))
      # "blhd,ehd->ble" as one 2-D matmul.
      out = matmul_2d(x.reshape(*x.shape[:-2], cfg.d_model), kernel, transpose_b=True)
      return out + bias.astype(cfg.dtype)
    bias = self.param("bias", nn.with_logical_partitioning(nn.initializers.zeros_init(), ("heads", "kv")),
                      shape[1:])
    # "ble,ehd->blhd" as one 2-D matmul.
    return matmul_2d(x, kernel).reshape(*x.shape[:-1], *shape[1:]) + bias.astype(cfg.dtype)


class MultiHeadAttention(nn.Module):
  cfg: TransformerConfig

  @nn.compact
  def __call__(self, queries, keys_values, mask, deterministic: bool, causal: bool = False,
               cache: str | None = None, index=None, cache_length: int = 0):
    """`mask` [batch or 1, 1, q, k] (True = attend) and/or `causal` (position i sees j <= i).

    `cache` (incremental decoding, "cache" collection): "self" keeps the keys and values of
    the positions decoded so far in a [batch, cache_length, heads, head_dim] buffer and writes
    this call's one position at `index` (then `mask` covers the whole buffer); "cross" projects
    `keys_values` (the encoder output) once, on the call that creates the cache, and reads the
    stored projections on every later call.
    """
    cfg = self.cfg
    head_dim = cfg.d_model // cfg.num_heads
    q = HeadProjection(cfg, name="query")(queries)
    key_projection = HeadProjection(cfg, name="key")
    value_projection = HeadProjection(cfg, name="value")
    creating = cache is not None and not self.has_variable("cache", "cached_key")
    if cache == "cross" and not creating:
      k, v = self.get_variable("cache", "cached_key"), self.get_variable("cache", "cached_value")
    else:
      k, v = key_projection(keys_values), value_projection(keys_values)
    if cache == "cross" and creating:
      self.put_variable("cache", "cached_key", k)
      self.put_variable("cache", "cached_value", v)
    elif cache == "self":
      shape = (k.shape[0], cache_length, cfg.num_heads, head_dim)
      cached_k = self.variable("cache", "cached_key", jnp.zeros, shape, k.dtype)
      cached_v = self.variable("cache", "cached_value", jnp.zeros, shape, v.dtype)
      if not creating:
        cached_k.value = jax.lax.dynamic_update_slice_in_dim(cached_k.value, k, index, axis=1)
        cached_v.value = jax.lax.dynamic_update_slice_in_dim(cached_v.value, v, index, axis=1)
        k, v = cached_k.value, cached_v.value
    q = nn.with_logical_constraint(q, ("batch", "length", "heads", "kv"))
    if cfg.attention in ("xla", "cudnn") and cache is None:
      if cfg.dropout and not deterministic:
        raise ValueError(f"attention={cfg.attention!r} has no dropout on the attention weights; "
                         "train with dropout=0 or attention='einsum'")
      out = jax.nn.dot_product_attention(q, k, v, mask=mask, is_causal=causal,
                                         implementation=cfg.attention)
      return HeadProjection(cfg, inverse=True, name="out")(out)
    dropout = nn.Dropout(cfg.dropout)
    drop = lambda weights: dropout(weights, deterministic=deterministic)
    if causal and cfg.attention == "blocked" and cache is None:
      out = blocked_causal_attention(q, k, v, mask, cfg.query_block, drop)
    else:
      if causal:
        mask = causal_mask(q.shape[1]) if mask is None else mask & causal_mask(q.shape[1])
      out = einsum_attention(q, k, v, mask, drop)
    return HeadProjection(cfg, inverse=True, name="out")(out)


class FeedForward(nn.Module):
  cfg: TransformerConfig

  @nn.compact
  def __call__(self, x, deterministic: bool):
    cfg = self.cfg
    h = nn.relu(_dense(cfg.d_ff, ("embed", "mlp"), cfg, "wi")(x))
    h = nn.with_logical_constraint(h, ("batch", "length", "mlp"))
    h = nn.Dropout(cfg.dropout)(h, deterministic=deterministic)
    return _dense(cfg.d_model, ("mlp", "embed"), cfg, "wo")(h)


class SubLayer(nn.Module):
  """Residual + dropout + layer norm around a sub-layer (pre- or post-norm)."""
  cfg: TransformerConfig

  @nn.compact
  def __call__(self, x, fn, deterministic: bool):
    norm = nn.LayerNorm(dtype=self.cfg.dtype, scale_init=nn.with_logical_partitioning(
        nn.initializers.ones_init(), ("embed",)), bias_init=nn.with_logical_partitioning(
            nn.initializers.zeros_init(), ("embed",)))
    drop = nn.Dropout(self.cfg.dropout)
    if self.cfg.pre_norm:
      return x + drop(fn(norm(x)), deterministic=deterministic)
    return norm(x + drop(fn(x), deterministic=deterministic))


class EncoderLayer(nn.Module):
  cfg: TransformerConfig

  @nn.compact
  def __call__(self, x, mask, deterministic: bool):
    x = SubLayer(self.cfg, name="attention")(
        x, lambda h: MultiHeadAttention(self.cfg, name="self_attention")(h, h, mask, deterministic), deterministic)
    x = SubLayer(self.cfg, name="ffn")(
        x, lambda h: FeedForward(self.cfg, name="feed_forward")(h, deterministic), deterministic)
    return nn.with_logical_constraint(x, ("batch", "length", "act_embed"))


class DecoderLayer(nn.Module):
  """Masked self-attention, (optional) cross-attention to the encoder, feed-forward.

  `cache_length` > 0: incremental decoding of one position (at `index`) with the key-value
  cache of MultiHeadAttention; `self_mask` then covers the cache's cache_length positions.
  """
  cfg: TransformerConfig
  cross_attention: bool = True

  @nn.compact
  def __call__(self, x, encoded=None, self_mask=None, cross_mask=None, deterministic: bool = True,
               index=None, cache_length: int = 0):
    cfg = self.cfg
    causal = self_mask is None  # the decoder-only LM: causal alone, which fused kernels exploit
    decode = dict(index=index, cache_length=cache_length) if cache_length else {}
    x = SubLayer(cfg, name="self_attention_block")(
        x, lambda h: MultiHeadAttention(cfg, name="self_attention")(
            h, h, self_mask, deterministic, causal, cache="self" if decode else None, **decode),
        deterministic)
    if self.cross_attention:
      x = SubLayer(cfg, name="cross_attention_block")(
          x, lambda h: MultiHeadAttention(cfg, name="cross_attention")(
              h, encoded, cross_mask, deterministic, cache="cross" if decode else None),
          deterministic)
    x = SubLayer(cfg, name="ffn")(
        x, lambda h: FeedForward(cfg, name="feed_forward")(h, deterministic), deterministic)
    return nn.with_logical_constraint(x, ("batch", "length", "act_embed"))


class DecodePosition(nn.Module):
  """The target prefix's state in the "cache" collection: the next position, and which positions
  hold a real token (the full decoder masks PAD keys; incremental decoding must mask the same)."""

  @nn.compact
  def __call__(self, token, cache_length: int):
    """token [batch, 1] -> (self-attention mask [batch, 1, 1, cache_length], its position)."""
    creating = not self.has_variable("cache", "index")
    index = self.variable("cache", "index", lambda: jnp.zeros((), jnp.int32))
    real = self.variable("cache", "real", jnp.zeros, (token.shape[0], cache_length), bool)
    i = index.value
    if creating:
      return jnp.ones((token.shape[0], 1, 1, 1), bool), i
    real.value = jax.lax.dynamic_update_slice_in_dim(real.value, token != PAD, i, axis=1)
    index.value = i + 1
    keys = jnp.arange(cache_length)
    # As in `Transformer.decode`: earlier real tokens, and the position itself.
    mask = ((keys < i) & real.value) | (keys == i)
    return mask[:, None, None, :], i


class Embed(nn.Module):
  """Token embedding scaled by sqrt(d_model) plus sinusoidal positions; `attend` = tied output."""
  cfg: TransformerConfig

  def setup(self):
    self.embedding = self.param(
        "embedding", nn.with_logical_partitioning(nn.initializers.normal(self.cfg.d_model ** -0.5),
                                                  ("vocab", "embed")),
        (self.cfg.padded_vocab_size, self.cfg.d_model), jnp.float32)
    self.positions = sinusoidal_positions(self.cfg.max_len, self.cfg.d_model)

  def __call__(self, tokens, offset: int = 0):
    x = jnp.take(self.embedding, tokens, axis=0).astype(self.cfg.dtype) * jnp.sqrt(self.cfg.d_model)
    positions = jax.lax.dynamic_slice_in_dim(jnp.asarray(self.positions), offset, tokens.shape[1])
    return x + positions[None].astype(self.cfg.dtype)

  def attend(self, x):
    """Logits over the padded vocabulary (see `vocab_logits`)."""
    return matmul_2d(x, self.embedding.astype(self.cfg.dtype), transpose_b=True)  # "bld,vd->blv"


def _final_norm(cfg, name):
  return nn.LayerNorm(dtype=cfg.dtype, name=name, scale_init=nn.with_logical_partitioning(
      nn.initializers.ones_init(), ("embed",)), bias_init=nn.with_logical_partitioning(
          nn.initializers.zeros_init(), ("embed",)))


class Transformer(nn.Module):
  """Encoder-decoder: `__call__(src, tgt_in)` -> logits over the target vocabulary."""
  cfg: TransformerConfig

  def setup(self):
    cfg = self.cfg
    self.src_embed = Embed(cfg)
    self.tgt_embed = self.src_embed if cfg.share_embeddings else Embed(cfg)
    self.encoder_layers = [EncoderLayer(cfg) for _ in range(cfg.num_encoder_layers)]
    self.decoder_layers = [DecoderLayer(cfg) for _ in range(cfg.num_decoder_layers)]
    self.encoder_norm = _final_norm(cfg, "encoder_norm") if cfg.pre_norm else None
    self.decoder_norm = _final_norm(cfg, "decoder_norm") if cfg.pre_norm else None
    self.input_dropout = nn.Dropout(cfg.dropout)
    self.decode_position = DecodePosition()
    if not cfg.share_embeddings and not cfg.tie_output:
      self.output = _dense(cfg.padded_vocab_size, ("embed", "vocab"), cfg, "output", use_bias=False)

  def encode(self, src, deterministic: bool = True):
    mask = padding_mask(src, src)
    x = self.input_dropout(self.src_embed(src), deterministic=deterministic)
    for layer in self.encoder_layers:
      x = layer(x, mask, deterministic)
    return self.encoder_norm(x) if self.encoder_norm is not None else x

  def decode(self, encoded, src, tgt_in, deterministic: bool = True, cache_length: int = 0):
    """Logits of the next target token at every position of `tgt_in`.

    With `cache_length` > 0 (apply with mutable=["cache"]) it decodes incrementally: `tgt_in` is
    [batch, 1], the newest token of each row, and the "cache" collection holds what the earlier
    positions left (see `init_cache`); the first call, on an empty collection, creates it.
    """
    if cache_length:
      self_mask, offset = self.decode_position(tgt_in, cache_length)
    else:
      self_mask = causal_mask(tgt_in.shape[1]) & padding_mask(tgt_in, tgt_in)
      # A position whose own token is PAD still attends to itself, so softmax stays finite.
      self_mask = self_mask | jnp.eye(tgt_in.shape[1], dtype=bool)[None, None]
      offset = 0
    cross_mask = padding_mask(tgt_in, src)
    x = self.input_dropout(self.tgt_embed(tgt_in, offset), deterministic=deterministic)
    for layer in self.decoder_layers:
      x = layer(x, encoded, self_mask, cross_mask, deterministic, index=offset, cache_length=cache_length)
    x = self.decoder_norm(x) if self.decoder_norm is not None else x
    if self.cfg.share_embeddings or self.cfg.tie_output:
      logits = self.tgt_embed.attend(x)
    else:
      logits = self.output(x)
    return vocab_logits(logits, self.cfg)

  def __call__(self, src, tgt_in, deterministic: bool = True):
    return self.decode(self.encode(src, deterministic), src, tgt_in, deterministic)


class LMLayer(nn.Module):
  """A decoder-only block: causal self-attention + feed-forward (x -> x, for stacking/pipelining)."""
  cfg: TransformerConfig
  deterministic: bool = True

  @nn.compact
  def __call__(self, x):
    return DecoderLayer(self.cfg, cross_attention=False, name="block")(x, deterministic=self.deterministic)


class ScannedLMLayer(nn.Module):
  """LMLayer as a scan body: (x, None) -> (x, None)."""
  cfg: TransformerConfig
  deterministic: bool = True

  @nn.compact
  def __call__(self, x, _):
    return LMLayer(self.cfg, self.deterministic, name="layer")(x), None


class TransformerLM(nn.Module):
  """Decoder-only language model: `__call__(tokens)` -> next-token logits."""
  cfg: TransformerConfig

  @nn.compact
  def __call__(self, tokens, deterministic: bool = True):
    cfg = self.cfg
    embed = Embed(cfg, name="embed")
    x = nn.Dropout(cfg.dropout)(embed(tokens), deterministic=deterministic)
    x = nn.with_logical_constraint(x, ("batch", "length", "act_embed"))
    if cfg.num_stages > 1:
      from core.pipeline import Pipeline  # pylint: disable=g-import-not-at-top
      x = Pipeline(layer_cls=LMLayer, layer_kwargs=dict(cfg=cfg, deterministic=deterministic),
                   num_layers=cfg.num_decoder_layers, num_stages=cfg.num_stages,
                   microbatches=cfg.microbatches, remat=cfg.remat, name="layers")(x)
    elif cfg.scan_layers:
      layer = nn.remat(ScannedLMLayer, prevent_cse=False) if cfg.remat else ScannedLMLayer
      x, _ = nn.scan(layer, variable_axes={"params": 0}, split_rngs={"params": True, "dropout": True},
                     length=cfg.num_decoder_layers, metadata_params={nn.PARTITION_NAME: "layers"})(
                         cfg, deterministic, name="layers")(x, None)
    else:
      for i in range(cfg.num_decoder_layers):
        x = LMLayer(cfg, deterministic, name=f"layer_{i}")(x)
    x = _final_norm(cfg, "final_norm")(x) if cfg.pre_norm else x
    logits = embed.attend(x) if cfg.share_embeddings else _dense(
        cfg.padded_vocab_size, ("embed", "vocab"), cfg, "output", use_bias=False)(x)
    return vocab_logits(logits, cfg)


def non_embedding_params(params) -> int:
  """Parameters outside the embedding (Kaplan et al.'s N)."""
  flat = jax.tree_util.tree_flatten_with_path(params)[0]
  return sum(int(np.prod(x.shape)) for path, x in flat if "embed" not in jax.tree_util.keystr(path))


# ---- decoding ---------------------------------------------------------------
#
# Both decoders run the decoder one position a step. With `use_cache` (the default) each step
# feeds only the newest token: the self-attention keys and values of earlier positions and the
# cross-attention projections of the encoder output are read from the "cache" collection
# (`init_cache`), so a step costs O(length) instead of re-running the whole prefix, O(length^2).
# `use_cache=False` recomputes the prefix every step (the reference the cache is tested against).


def init_cache(model: Transformer, params, encoded, src, length: int):
  """The "cache" collection for decoding `length` positions of the rows of `encoded`.

  One call on a dummy token creates it: empty self-attention buffers, position 0, and the
  encoder's keys and values projected once for every cross-attention layer.
  """
  dummy = jnp.full((src.shape[0], 1), PAD, jnp.int32)
  _, variables = model.apply({"params": params}, encoded, src, dummy, cache_length=length,
                             method=Transformer.decode, mutable=["cache"])
  return variables["cache"]


def _step_logits(model, params, encoded, src, tokens, i, cache, use_cache):
  """Next-token logits [rows, vocab] after tokens[:, :i + 1], and the advanced cache."""
  if not use_cache:
    logits = model.apply({"params": params}, encoded, src, tokens, method=Transformer.decode)
    return logits[:, i], cache
  token = jax.lax.dynamic_slice_in_dim(tokens, i, 1, axis=1)
  logits, variables = model.apply({"params": params, "cache": cache}, encoded, src, token,
                                  cache_length=tokens.shape[1], method=Transformer.decode,
                                  mutable=["cache"])
  return logits[:, 0], variables["cache"]


def greedy_decode(model: Transformer, params, src, max_len: int, bos: int, eos: int | None = None,
                  use_cache: bool = True, return_logits: bool = False):
  """Greedy decoding: returns [batch, max_len] tokens (after BOS), PAD after EOS.

  `return_logits` also returns the [batch, max_len, vocab] logits of each step.
  """
  encoded = model.apply({"params": params}, src, method=Transformer.encode)
  batch = src.shape[0]
  tokens = jnp.full((batch, max_len + 1), PAD, jnp.int32).at[:, 0].set(bos)
  cache = init_cache(model, params, encoded, src, max_len + 1) if use_cache else None

  def body(state):
    i, tokens, done, cache, all_logits = state
    logits, cache = _step_logits(model, params, encoded, src, tokens, i, cache, use_cache)
    next_token = jnp.argmax(logits, axis=-1).astype(jnp.int32)
    next_token = jnp.where(done, PAD, next_token)
    if eos is not None:
      done = done | (next_token == eos)
    if return_logits:
      all_logits = all_logits.at[:, i].set(logits)
    return i + 1, tokens.at[:, i + 1].set(next_token), done, cache, all_logits

  # Stops early once every row has emitted EOS: the remaining steps would only append PAD.
  running = lambda state: (state[0] < max_len) & ~jnp.all(state[2])
  all_logits = jnp.zeros((batch, max_len, model.cfg.vocab_size) if return_logits else (), jnp.float32)
  _, tokens, _, _, all_logits = jax.lax.while_loop(
      running, body, (0, tokens, jnp.zeros((batch,), bool), cache, all_logits))
  return (tokens[:, 1:], all_logits) if return_logits else tokens[:, 1:]


def beam_search(model: Transformer, params, src, max_len: int, bos: int, eos: int,
                beam_size: int = 4, alpha: float = 0.6, use_cache: bool = True):
  """Beam search with the GNMT length penalty ((5 + len) / 6)^alpha (the paper: beam 4, alpha 0.6).

  Returns ([batch, max_len] best tokens, [batch] their length-normalised log-probs). The cache
  rows follow their beams: after each step they are gathered by the index of the parent beam.
  """
  batch, k = src.shape[0], beam_size
  encoded = model.apply({"params": params}, src, method=Transformer.encode)
  rep = lambda x: jnp.repeat(x, k, axis=0)  # [batch, ...] -> [batch * k, ...]
  encoded, src_k = rep(encoded), rep(src)
  tokens = jnp.full((batch, k, max_len + 1), PAD, jnp.int32).at[:, :, 0].set(bos)
  cache = init_cache(model, params, encoded, src_k, max_len + 1) if use_cache else None
  # Only beam 0 is live at the start, so the k beams do not start as copies.
  scores = jnp.tile(jnp.array([0.0] + [-1e9] * (k - 1)), (batch, 1))
  finished = jnp.zeros((batch, k), bool)
  lengths = jnp.zeros((batch, k), jnp.int32)

  def gather_rows(x, beam):
    """Rows [batch * k, ...] of the cache -> the rows of the parent beams (scalars unchanged)."""
    if x.ndim == 0:
      return x
    x = x.reshape(batch, k, *x.shape[1:])
    x = jnp.take_along_axis(x, beam.reshape(batch, k, *([1] * (x.ndim - 2))), axis=1)
    return x.reshape(batch * k, *x.shape[2:])

  def body(state):
    i, tokens, scores, finished, lengths, cache = state
    logits, cache = _step_logits(model, params, encoded, src_k, tokens.reshape(batch * k, -1), i,
                                 cache, use_cache)
    log_probs = jax.nn.log_softmax(logits).reshape(batch, k, -1)
    vocab = log_probs.shape[-1]
    # A finished beam extends only with PAD, at no cost.
    pad_only = jnp.full((vocab,), -1e9).at[PAD].set(0.0)
    log_probs = jnp.where(finished[..., None], pad_only, log_probs)
    candidates = (scores[..., None] + log_probs).reshape(batch, k * vocab)
    scores, flat = jax.lax.top_k(candidates, k)
    beam, token = flat // vocab, (flat % vocab).astype(jnp.int32)
    gather = lambda x: jnp.take_along_axis(x, beam if x.ndim == 2 else beam[..., None], axis=1)
    tokens, finished, lengths = gather(tokens), gather(finished), gather(lengths)
    if use_cache:  # the encoder's projections are the same for every beam of a sentence
      cache = jax.tree_util.tree_map_with_path(
          lambda path, x: x if "cross_attention" in jax.tree_util.keystr(path) else gather_rows(x, beam),
          cache)
    tokens = tokens.at[:, :, i + 1].set(token)
    lengths = jnp.where(finished, lengths, lengths + 1)
    finished = finished | (token == eos)
    return i + 1, tokens, scores, finished, lengths, cache

  # Stops early once every beam has finished: finished beams only extend with PAD at no cost.
  running = lambda state: (state[0] < max_len) & ~jnp.all(state[3])
  _, tokens, scores, finished, lengths, _ = jax.lax.while_loop(
      running, body, (0, tokens, scores, finished, lengths, cache))
  normalised = scores / ((5.0 + lengths) / 6.0) ** alpha
  best = jnp.argmax(normalised, axis=1)
  pick = lambda x: jnp.take_along_axis(x, best[:, None] if x.ndim == 2 else best[:, None, None], axis=1)[:, 0]
  return pick(tokens)[:, 1:], pick(normalised)
