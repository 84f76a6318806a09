"""Pointer Network (Vinyals, Fortunato & Jaitly 2015): attention used as the output.

    encoder   LSTM over the input points P_1..P_n (2-d coordinates)   -> e_1..e_n
    decoder   LSTM started from the encoder's final state; its input at step i is the
              coordinates of the point chosen at step i-1 (a learned GO vector at step 0)
    pointer   u_j^i = v^T tanh(W1 e_j + W2 d_i),  p(C_i | C_<i, P) = softmax_j(u^i)   (eq. 3)

The softmax runs over n + 1 candidates: position 0 is a learned end-of-sequence vector e_0
(the paper's END symbol), positions 1..n are the input points, so a pointer token k >= 1
means point k - 1. Padded input positions (variable n in a batch) are never candidates.

Every parameter starts uniform in [-init_scale, init_scale] (the paper: 0.08). Parameters
name logical axes only. Training uses teacher forcing (`__call__`); `decode` is greedy
(beam_size=1) or beam search, optionally restricted to valid tours (see `decode`).
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

NEG_INF = -1e9


def uniform(scale: float):
  def init(key, shape, dtype=jnp.float32):
    return jax.random.uniform(key, shape, dtype, -scale, scale)
  return init


class LSTMWeights(nn.Module):
  """Parameters of one LSTM layer; gates [i f g o] side by side."""
  input_size: int
  hidden_size: int
  init_scale: float

  @nn.compact
  def __call__(self):
    init, h = uniform(self.init_scale), self.hidden_size
    return (self.param("input_kernel", nn.with_logical_partitioning(init, (None, "mlp")),
                       (self.input_size, 4 * h)),
            self.param("recurrent_kernel", nn.with_logical_partitioning(init, ("embed", "mlp")),
                       (h, 4 * h)),
            self.param("bias", nn.with_logical_partitioning(init, ("mlp",)), (4 * h,)))


def lstm_step(weights, carry, x, dtype):
  """One LSTM step: (c, h) [B, H] float32, x [B, F] -> (c, h)."""
  wx, wh, b = weights
  c, h = carry
  gates = (jnp.dot(x.astype(dtype), wx.astype(dtype)) + jnp.dot(h.astype(dtype), wh.astype(dtype))
           ).astype(jnp.float32) + b
  i, f, g, o = jnp.split(gates, 4, axis=-1)
  c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
  return c, jax.nn.sigmoid(o) * jnp.tanh(c)


def gather_points(points, tokens):
  """Coordinates of pointer tokens: points [B, n, 2], tokens [B, ...] -> [B, ..., 2] (END -> 0)."""
  flat = tokens.reshape(tokens.shape[0], -1)
  picked = jnp.take_along_axis(points, jnp.maximum(flat - 1, 0)[..., None], axis=1)
  picked = jnp.where((flat > 0)[..., None], picked, 0.0)
  return picked.reshape(*tokens.shape, points.shape[-1])


class PointerNetwork(nn.Module):
  """points [B, n, 2], point_mask [B, n] -> pointer logits over [END, P_1..P_n]."""
  hidden_size: int = 256
  attention_size: int = 0       # 0 = hidden_size
  input_size: int = 2
  init_scale: float = 0.08
  dtype: Any = jnp.float32

  def setup(self):
    init, h = uniform(self.init_scale), self.hidden_size
    a = self.attention_size or h
    self.encoder = LSTMWeights(self.input_size, h, self.init_scale)
    self.decoder = LSTMWeights(self.input_size, h, self.init_scale)
    self.w1 = self.param("w1", nn.with_logical_partitioning(init, ("embed", "mlp")), (h, a))
    self.w2 = self.param("w2", nn.with_logical_partitioning(init, ("embed", "mlp")), (h, a))
    self.v = self.param("v", nn.with_logical_partitioning(init, ("mlp",)), (a,))
    self.go = self.param("go", nn.with_logical_partitioning(init, (None,)), (self.input_size,))
    self.end = self.param("end", nn.with_logical_partitioning(init, ("embed",)), (h,))

  def encode(self, points, point_mask):
    """-> (keys W1 e_j [B, n+1, A], candidate mask [B, n+1], final encoder carry)."""
    batch = points.shape[0]
    weights = self.encoder()
    zeros = jnp.zeros((batch, self.hidden_size), jnp.float32)

    def body(carry, inputs):
      x, valid = inputs
      new = lstm_step(weights, carry, x, self.dtype)
      # Padded positions (at the end) leave the state alone: the final carry is the last point's.
      carry = jax.tree.map(lambda n, o: jnp.where(valid[:, None], n, o), new, carry)
      return carry, carry[1]

    carry, outputs = jax.lax.scan(
        body, (zeros, zeros), (jnp.swapaxes(points, 0, 1), jnp.swapaxes(point_mask, 0, 1)))
    outputs = jnp.swapaxes(outputs, 0, 1)                                  # [B, n, H]
    memory = jnp.concatenate([jnp.broadcast_to(self.end, (batch, 1, self.hidden_size)), outputs], 1)
    memory = nn.with_logical_constraint(memory, ("batch", "length", "act_embed"))
    keys = jnp.dot(memory.astype(self.dtype), self.w1.astype(self.dtype))
    candidates = jnp.concatenate([jnp.ones((batch, 1), bool), point_mask], axis=1)
    return keys, candidates, carry

  def pointer_logits(self, keys, candidates, d):
    """u_j = v^T tanh(W1 e_j + W2 d) for decoder states d [B, ..., H] -> [B, ..., n+1]."""
    query = jnp.dot(d.astype(self.dtype), self.w2.astype(self.dtype))
    extra = query.ndim - 2
    keys = keys.reshape(keys.shape[0], *([1] * extra), *keys.shape[1:])
    scores = jnp.tanh(keys + query[..., None, :])
    u = jnp.dot(scores, self.v.astype(self.dtype)).astype(jnp.float32)
    mask = candidates.reshape(candidates.shape[0], *([1] * extra), candidates.shape[-1])
    return jnp.where(mask, u, NEG_INF)

  def decoder_step(self, carry, x):
    return lstm_step(self.decoder(), carry, x, self.dtype)

  def __call__(self, points, point_mask, targets):
    """Teacher forcing: logits [B, T, n+1] of every target token given the previous ones."""
    keys, candidates, carry = self.encode(points, point_mask)
    previous = gather_points(points, targets[:, :-1])                       # [B, T-1, 2]
    go = jnp.broadcast_to(self.go, (points.shape[0], 1, self.input_size))
    inputs = jnp.concatenate([go, previous], axis=1)
    weights = self.decoder()

    def body(carry, x):
      carry = lstm_step(weights, carry, x, self.dtype)
      return carry, carry[1]

    _, states = jax.lax.scan(body, carry, jnp.swapaxes(inputs, 0, 1))
    return self.pointer_logits(keys, candidates, jnp.swapaxes(states, 0, 1))

  def decode(self, points, point_mask, max_len: int, beam_size: int = 1, tour: bool = False):
    """Greedy (beam_size=1) or beam-search decoding -> (tokens [B, max_len], log-prob [B]).

    Always masked: padded input positions, and after END only END (a finished sequence).
    With tour=True (the paper's valid-tour restriction for the TSP) also: no point twice,
    END only once every point is chosen. Beams are ranked by total log-probability.
    """
    batch, n = point_mask.shape
    k = beam_size
    keys, candidates, carry = self.encode(points, point_mask)
    rep = lambda x: jnp.repeat(x, k, axis=0)                                # [B*K, ...]
    keys, cand, pts = rep(keys), rep(candidates), rep(points)
    carry = jax.tree.map(rep, carry)
    x = jnp.broadcast_to(self.go, (batch * k, self.input_size))
    # Only beam 0 is live at the start, so the first top-k picks K different tokens.
    scores = jnp.tile(jnp.where(jnp.arange(k) == 0, 0.0, NEG_INF), (batch, 1))  # [B, K]
    visited = jnp.zeros((batch * k, n + 1), bool)
    done = jnp.zeros((batch * k,), bool)
    tokens = jnp.zeros((batch * k, max_len), jnp.int32)
    end_only = jnp.arange(n + 1) == 0

    def body(state, t):
      carry, x, scores, visited, done, tokens = state
      carry = self.decoder_step(carry, x)
      logits = self.pointer_logits(keys, cand, carry[1])                    # [B*K, n+1]
      allowed = cand
      if tour:
        allowed = allowed & ~visited
        all_chosen = jnp.all(visited[:, 1:] | ~cand[:, 1:], axis=-1)
        allowed = jnp.where(all_chosen[:, None], end_only, allowed & ~end_only)
      allowed = jnp.where(done[:, None], end_only, allowed)
      logp = jax.nn.log_softmax(jnp.where(cand, logits, NEG_INF), axis=-1)
      # A finished beam extends with END at no cost; forbidden tokens get -inf.
      logp = jnp.where(done[:, None], 0.0, logp)
      logp = jnp.where(allowed, logp, NEG_INF)
      total = (scores[..., None] + logp.reshape(batch, k, n + 1)).reshape(batch, k * (n + 1))
      scores, flat = jax.lax.top_k(total, k)                               # [B, K]
      source = (flat // (n + 1) + jnp.arange(batch)[:, None] * k).reshape(-1)
      token = (flat % (n + 1)).reshape(-1)
      carry = jax.tree.map(lambda c: c[source], carry)
      visited = visited[source].at[jnp.arange(batch * k), token].set(True)
      done = done[source] | (token == 0)
      tokens = tokens[source].at[:, t].set(token)
      x = gather_points(pts, token[:, None])[:, 0]
      return (carry, x, scores, visited, done, tokens), None

    state = (carry, x, scores, visited, done, tokens)
    (_, _, scores, _, _, tokens), _ = jax.lax.scan(body, state, jnp.arange(max_len))
    return tokens.reshape(batch, k, max_len)[:, 0], scores[:, 0]
