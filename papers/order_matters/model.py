"""Read-Process-Write (Vinyals, Bengio, Kudlur 2016, section 4) and the Ptr-Net baseline.

    read      m_i = MLP(x_i)                       the same small network for every element
    process   q_t = LSTM(q*_{t-1})                 an LSTM with no input of its own, P steps  (3)
              e_{i,t} = f(m_i, q_t)                content-based attention (additive here)    (4)
              a_{i,t} = softmax_i(e_{i,t})                                                    (5)
              r_t = sum_i a_{i,t} m_i                                                         (6)
              q*_t = [q_t, r_t]                                                               (7)
    write     an LSTM pointer network started from q*_P: at each output step one glimpse
              (an attention read of the memories, sec. 4.3) and then a pointer, a softmax
              over the memories, which is the output distribution.

Nothing in read or process depends on the order of the elements, so permuting the input
permutes the pointers the same way and changes nothing else. `encoder="lstm"` is the
baseline of Table 1: an LSTM reads the elements in their given order and its outputs are the
memories (a Ptr-Net, Vinyals et al. 2015), so the result depends on that order.

Pure and mesh-free: parameters carry logical axis names only.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

NEG_INF = -1e9  # logit of an element already pointed at


def _dense(features: int, axes: tuple, name: str, dtype, use_bias: bool = True) -> nn.Dense:
  return nn.Dense(features, use_bias=use_bias, dtype=dtype, name=name,
                  kernel_init=nn.with_logical_partitioning(nn.initializers.lecun_normal(), axes),
                  bias_init=nn.with_logical_partitioning(nn.initializers.zeros, axes[-1:]))


class LSTMCell(nn.Module):
  """One LSTM step on [x, h]; gates i, f, g, o; the forget gate's bias starts at 1."""
  hidden: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, carry, x):
    c, h = carry
    gates = _dense(4 * self.hidden, ("embed", "mlp"), "gates", self.dtype)(
        jnp.concatenate([x, h], axis=-1)).astype(jnp.float32)
    i, f, g, o = jnp.split(gates, 4, axis=-1)
    c = jax.nn.sigmoid(f + 1.0) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return (c, h), h


class Attention(nn.Module):
  """Additive content-based attention: e_i = v . tanh(W_k m_i + W_q q + b).

  `keys(memories)` projects the memories once; `__call__(keys, query, mask)` gives the
  logits e (masked entries at NEG_INF), in float32.
  """
  hidden: int
  dtype: Any = jnp.float32

  def setup(self):
    self.key_proj = _dense(self.hidden, ("embed", "mlp"), "key", self.dtype, use_bias=False)
    self.query_proj = _dense(self.hidden, ("embed", "mlp"), "query", self.dtype)
    self.v = self.param("v", nn.with_logical_partitioning(nn.initializers.normal(0.1), ("mlp",)),
                        (self.hidden,))

  def keys(self, memories):
    return self.key_proj(memories)

  def __call__(self, keys, query, mask=None):
    hidden = jnp.tanh(keys + self.query_proj(query)[:, None, :]).astype(jnp.float32)
    logits = hidden @ self.v
    return logits if mask is None else jnp.where(mask, logits, NEG_INF)


def attend(logits, memories):
  """r = sum_i softmax(e)_i m_i."""
  weights = jax.nn.softmax(logits, axis=-1).astype(memories.dtype)
  return jnp.einsum("bn,bnh->bh", weights, memories)


class SetPointerNet(nn.Module):
  """Read-Process-Write (`encoder="set"`) or the LSTM-encoder Ptr-Net (`encoder="lstm"`).

  inputs: [B, N] numbers. `__call__(inputs, pointers, ranks)` scores a target under teacher
  forcing: pointer logits [B, T, N] (and rank logits [B, T, R] when `num_ranks` > 0, for an
  output emitted as a set of (index, rank) tuples in any order). `greedy(inputs)` decodes:
  pointers [B, N] and ranks [B, N] (the position itself when `num_ranks` is 0).

  `mask_pointed` forbids pointing twice at one element. The paper's sorting results are
  without it (off by default): with it, sorting needs no more than one score per element that
  is monotone in its value ("point at the smallest element left"), which even a randomly
  initialised read block can give.
  """
  hidden: int = 64
  process_steps: int = 1
  glimpses: int = 1
  encoder: str = "set"
  num_ranks: int = 0
  mask_pointed: bool = False
  dtype: Any = jnp.float32

  def setup(self):
    h, dt = self.hidden, self.dtype
    self.read_in = _dense(h, (None, "mlp"), "read_in", dt)
    self.read_out = _dense(h, ("mlp", "embed"), "read_out", dt)
    if self.encoder == "lstm":
      self.encoder_lstm = LSTMCell(h, dt)
    else:
      self.process_lstm = LSTMCell(h, dt)
      self.process_attention = Attention(h, dt)
      self.write_init = _dense(h, ("embed", "mlp"), "write_init", dt)
    self.decoder_lstm = LSTMCell(h, dt)
    self.glimpse_attention = [Attention(h, dt, name=f"glimpse_{k}") for k in range(self.glimpses)]
    self.pointer_attention = Attention(h, dt)
    self.start = self.param("start", nn.with_logical_partitioning(nn.initializers.normal(1.0), ("embed",)),
                            (h,))
    if self.num_ranks:
      self.rank_embed = nn.Embed(self.num_ranks + 1, h, dtype=dt, embedding_init=nn.with_logical_partitioning(
          nn.initializers.normal(1.0), (None, "embed")))
      self.rank_head = _dense(self.num_ranks, ("embed", None), "rank_head", dt)

  def read(self, inputs):
    """m_i = MLP(x_i): [B, N] -> [B, N, H]."""
    return self.read_out(nn.relu(self.read_in(inputs[..., None].astype(self.dtype))))

  def _scan(self, body, carry, xs, length=None):
    """lax.scan of `body(module, carry, x)` with the parameters shared by every step: one step
    to compile however large N and P are."""
    return nn.scan(body, variable_broadcast="params", split_rngs={"params": False},
                   length=length)(self, carry, xs)

  def encode(self, inputs):
    """(embeddings [B, N, H], memories [B, N, H], the write block's initial LSTM carry)."""
    embeddings = self.read(inputs)
    batch = inputs.shape[0]
    zeros = jnp.zeros((batch, self.hidden), jnp.float32)
    carry = (zeros, zeros)
    if self.encoder == "lstm":
      carry, outputs = self._scan(lambda mdl, c, x: mdl.encoder_lstm(c, x), carry,
                                  jnp.swapaxes(embeddings, 0, 1))
      return embeddings, jnp.swapaxes(outputs, 0, 1).astype(self.dtype), carry
    memories = embeddings
    q_star = jnp.zeros((batch, 2 * self.hidden), self.dtype)
    if self.process_steps:
      keys = self.process_attention.keys(memories)

      def process_step(mdl, state, _):
        carry, q_star = state
        carry, q = mdl.process_lstm(carry, q_star)                        # (3)
        r = attend(mdl.process_attention(keys, q), memories)              # (4)-(6)
        return (carry, jnp.concatenate([q.astype(mdl.dtype), r], axis=-1)), None   # (7)
      (carry, q_star), _ = self._scan(process_step, (carry, q_star), None, length=self.process_steps)
    # The write block starts from q*_P (and the process LSTM's cell); with P = 0 it is
    # unconditioned on the set except through its glimpses and pointers.
    return embeddings, memories, (carry[0], self.write_init(q_star).astype(jnp.float32))

  def _write_step(self, carry, step_input, memories, keys, mask):
    carry, query = self.decoder_lstm(carry, step_input)
    for attention, glimpse_keys in zip(self.glimpse_attention, keys[:-1]):
      query = attend(attention(glimpse_keys, query, mask), memories)
    return carry, query, self.pointer_attention(keys[-1], query, mask)

  def _keys(self, memories):
    return [a.keys(memories) for a in (*self.glimpse_attention, self.pointer_attention)]

  def _step_input(self, embeddings, previous, rank):
    """The embedding of the element pointed at last, plus that of its rank (if emitted)."""
    x = jnp.take_along_axis(embeddings, previous[:, None, None], axis=1)[:, 0]
    return x + self.rank_embed(rank) if self.num_ranks else x

  def _first_input(self, batch):
    """A learned start vector (and the start rank) at t = 0."""
    x = jnp.broadcast_to(self.start.astype(self.dtype), (batch, self.hidden))
    return x + self.rank_embed(jnp.full((batch,), self.num_ranks)) if self.num_ranks else x

  def _rank_logits(self, query, memories, pointer):
    pointed = jnp.take_along_axis(memories, pointer[:, None, None], axis=1)[:, 0]
    return self.rank_head(jnp.concatenate([query, pointed], axis=-1)).astype(jnp.float32)

  def __call__(self, inputs, pointers, ranks=None):
    embeddings, memories, carry = self.encode(inputs)
    keys = self._keys(memories)
    batch, n = inputs.shape
    steps = pointers.shape[1]
    ranks = jnp.zeros_like(pointers) if ranks is None else ranks
    # Teacher forcing: every step's input and mask are known before the loop.
    step_inputs = jnp.stack([self._first_input(batch)] + [
        self._step_input(embeddings, pointers[:, t], ranks[:, t]) for t in range(steps - 1)])
    pointed = jax.nn.one_hot(pointers, n, dtype=jnp.int32)                 # [B, T, N]
    before = jnp.cumsum(pointed, axis=1) - pointed                         # pointed before step t
    masks = jnp.swapaxes(before == 0, 0, 1) if self.mask_pointed else jnp.ones((steps, batch, n), bool)

    def write_step(mdl, carry, xs):
      step_input, mask, pointer = xs
      carry, query, logits = mdl._write_step(carry, step_input, memories, keys, mask)
      rank_logits = mdl._rank_logits(query, memories, pointer) if mdl.num_ranks else None
      return carry, (logits, rank_logits)
    _, (logits, rank_logits) = self._scan(write_step, carry, (step_inputs, masks, pointers.T))
    rank_logits = jnp.swapaxes(rank_logits, 0, 1) if self.num_ranks else None
    return jnp.swapaxes(logits, 0, 1), rank_logits

  def greedy(self, inputs):
    embeddings, memories, carry = self.encode(inputs)
    keys = self._keys(memories)
    batch, n = inputs.shape

    def write_step(mdl, state, t):
      carry, step_input, mask = state
      carry, query, logits = mdl._write_step(carry, step_input, memories, keys, mask)
      pointer = jnp.argmax(logits, axis=-1)
      rank = (jnp.argmax(mdl._rank_logits(query, memories, pointer), axis=-1) if mdl.num_ranks
              else jnp.full((batch,), t))
      if mdl.mask_pointed:
        mask = mask & (jnp.arange(n) != pointer[:, None])
      return (carry, mdl._step_input(embeddings, pointer, rank), mask), (pointer, rank)
    state = (carry, self._first_input(batch), jnp.ones((batch, n), bool))
    _, (pointers, ranks) = self._scan(write_step, state, jnp.arange(n))
    return pointers.T, ranks.T
