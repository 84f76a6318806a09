"""RNNsearch and RNNencdec (Bahdanau, Cho and Bengio 2015, appendix A).

RNNsearch: a bidirectional GRU encoder gives each source word j an annotation
h_j = [->h_j; <-h_j]; the decoder scores them against its previous state,

    e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j),   alpha_ij = softmax_j(e_ij),   c_i = sum_j alpha_ij h_j,

and reads the context c_i in its GRU, s_i = f(s_{i-1}, y_{i-1}, c_i), and in a maxout readout
t_i = max-pool-2(U_o s_{i-1} + V_o E y_{i-1} + C_o c_i), p(y_i) = softmax(W_o t_i) (A.2.2).
The decoder starts from s_0 = tanh(W_s <-h_1).

RNNencdec (Cho et al. 2014): a forward GRU encoder whose last state gives one fixed context
c = tanh(V h_T) for every target word; the decoder is the same GRU and maxout readout.

Parameters carry logical axis names only; the modules run unsharded under plain `jax.jit`.
"""
from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

PAD, BOS, EOS = 0, 1, 2
NEG = -1e9  # a score no real hypothesis reaches; finite, so sums of it never give NaN

# The paper's initialisation (appendix B.1): N(0, 0.01^2) weights, N(0, 0.001^2) for the
# alignment model's W_a and U_a, zero v_a and biases, orthogonal recurrent matrices.
WEIGHT_INIT = nn.initializers.normal(0.01)
ALIGN_INIT = nn.initializers.normal(0.001)


def dense(features: int, axes: tuple[str | None, str | None], name: str, *, use_bias: bool = True,
          init=WEIGHT_INIT, dtype=jnp.float32) -> nn.Dense:
  return nn.Dense(features, use_bias=use_bias, name=name, dtype=dtype,
                  kernel_init=nn.with_logical_partitioning(init, axes),
                  bias_init=nn.with_logical_partitioning(nn.initializers.zeros, (axes[1],)))


class GRUCell(nn.RNNCellBase):
  """The gated recurrent unit of Cho et al. (2014), as the paper's appendix A.1.1 writes it:

      r = sigma(W_r x + U_r h),  z = sigma(W_z x + U_z h),  h~ = tanh(W x + U (r * h)),
      h' = (1 - z) * h + z * h~.

  (flax's nn.GRUCell applies r after U and gates the other way round.) The input side,
  [W_r x; W_z x; W x] plus biases (3n numbers), comes precomputed: for a whole sequence
  it is one matrix product outside the recurrence.
  """
  features: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, h, x_proj):
    n = self.features
    gates = x_proj[..., :2 * n] + dense(2 * n, ("hidden", "mlp"), "recurrent_gates", use_bias=False,
                                        init=nn.initializers.orthogonal(), dtype=self.dtype)(h)
    r, z = jnp.split(nn.sigmoid(gates), 2, axis=-1)
    candidate = jnp.tanh(x_proj[..., 2 * n:] + dense(
        n, ("hidden", "mlp"), "recurrent_candidate", use_bias=False,
        init=nn.initializers.orthogonal(), dtype=self.dtype)(r * h))
    h = (1.0 - z) * h + z * candidate
    return h, h

  @nn.nowrap
  def initialize_carry(self, rng, input_shape):
    del rng
    return jnp.zeros((*input_shape[:-1], self.features), self.dtype)

  @property
  def num_feature_axes(self) -> int:
    return 1


class Encoder(nn.Module):
  """Source words -> annotations (B, Tx, 2n) [->h; <-h], or (B, Tx, n) if not bidirectional."""
  hidden: int
  bidirectional: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, embedded, lengths):
    n = self.hidden
    inputs = dense(3 * n, ("embed", "mlp"), "forward_input", dtype=self.dtype)(embedded)
    forward = nn.RNN(GRUCell(n, self.dtype), name="forward")(inputs, seq_lengths=lengths)
    if not self.bidirectional:
      return forward
    inputs = dense(3 * n, ("embed", "mlp"), "backward_input", dtype=self.dtype)(embedded)
    backward = nn.RNN(GRUCell(n, self.dtype), reverse=True, keep_order=True, name="backward")(
        inputs, seq_lengths=lengths)
    return jnp.concatenate([forward, backward], axis=-1)


class DecoderStep(nn.Module):
  """One target word: (s_{i-1}, y_{i-1}) -> (s_i, logits of y_i, alignment alpha_i)."""
  hidden: int
  align: int
  maxout: int
  vocab: int
  attention: bool = True
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, encoded, s, target_proj):
    n, l = self.hidden, self.maxout
    if self.attention:
      # e_ij = v_a^T tanh(W_a s_{i-1} + U_a h_j); U_a h_j is precomputed in `encoded["keys"]`.
      query = dense(self.align, ("hidden", "mlp"), "align_query", use_bias=False, init=ALIGN_INIT,
                    dtype=self.dtype)(s)
      v = self.param("align_v", nn.with_logical_partitioning(nn.initializers.zeros, ("mlp",)),
                     (self.align,))
      scores = jnp.tanh(encoded["keys"] + query[:, None, :]) @ v.astype(self.dtype)
      scores = jnp.where(encoded["mask"], scores.astype(jnp.float32), NEG)
      alpha = jax.nn.softmax(scores, axis=-1)
      context = jnp.einsum("bj,bjd->bd", alpha.astype(self.dtype), encoded["annotations"])
    else:
      alpha = jnp.zeros(encoded["mask"].shape, jnp.float32)
      context = encoded["context"]
    # C_r c, C_z c, C c for the GRU and C_o c for the readout, in one product.
    context_proj = dense(3 * n + 2 * l, ("embed", "mlp"), "context", use_bias=False,
                         dtype=self.dtype)(context)
    readout = (target_proj[..., 3 * n:] + context_proj[..., 3 * n:]
               + dense(2 * l, ("hidden", "mlp"), "readout_state", use_bias=False, dtype=self.dtype)(s))
    t = readout.reshape(*readout.shape[:-1], l, 2).max(-1)  # maxout over pairs of units
    logits = dense(self.vocab, ("mlp", "vocab"), "output", dtype=self.dtype)(t)
    s, _ = GRUCell(n, self.dtype, name="gru")(s, target_proj[..., :3 * n] + context_proj[..., :3 * n])
    return s, (logits.astype(jnp.float32), alpha)


class RNNSearch(nn.Module):
  """RNNsearch (`attention=True`) or RNNencdec (`attention=False`).

  `model.apply(v, src, tgt_in)` gives teacher-forced logits (B, Ty, vocab); `encode`,
  `decode` (also the alignments) and `step` (one word, for search) are methods.
  """
  src_vocab: int
  tgt_vocab: int
  embed: int = 620
  hidden: int = 1000
  align: int = 1000
  maxout: int = 500
  attention: bool = True
  dtype: Any = jnp.float32

  def setup(self):
    def embedding(vocab, name):
      return nn.Embed(vocab, self.embed, name=name, dtype=self.dtype,
                      embedding_init=nn.with_logical_partitioning(WEIGHT_INIT, ("vocab", "embed")))
    self.src_embed = embedding(self.src_vocab, "src_embed")
    self.tgt_embed = embedding(self.tgt_vocab, "tgt_embed")
    self.encoder = Encoder(self.hidden, bidirectional=self.attention, dtype=self.dtype)
    n = self.hidden
    self.keys = dense(self.align, ("embed", "mlp"), "align_keys", use_bias=False, init=ALIGN_INIT,
                      dtype=self.dtype)
    self.summary = dense(n, ("embed", "mlp"), "summary", dtype=self.dtype)  # RNNencdec's V
    self.init_state = dense(n, ("hidden", "mlp"), "init_state", dtype=self.dtype)
    # W E y (the GRU's 3n inputs) and V_o E y (the readout's 2l), for every target position at once.
    self.target_input = dense(3 * n + 2 * self.maxout, ("embed", "mlp"), "target_input",
                              dtype=self.dtype)
    self.decoder = DecoderStep(n, self.align, self.maxout, self.tgt_vocab, self.attention,
                               self.dtype)

  def encode(self, src) -> dict:
    mask = src != PAD
    lengths = jnp.maximum(mask.sum(-1), 1)
    annotations = self.encoder(self.src_embed(src), lengths)
    n = self.hidden
    if self.attention:
      s0 = jnp.tanh(self.init_state(annotations[:, 0, n:]))  # s_0 = tanh(W_s <-h_1)
      return {"annotations": annotations, "keys": self.keys(annotations), "mask": mask, "s0": s0}
    last = jnp.take_along_axis(annotations, (lengths - 1)[:, None, None], axis=1)[:, 0]
    context = jnp.tanh(self.summary(last))  # Cho et al.: c = tanh(V h_T)
    return {"context": context, "mask": mask, "s0": jnp.tanh(self.init_state(context))}

  def decode(self, encoded, tgt_in):
    """Teacher forcing: logits (B, Ty, vocab) and alignments (B, Ty, Tx)."""
    target_proj = self.target_input(self.tgt_embed(tgt_in))

    def body(step, s, x, enc):
      return step(enc, s, x)
    scan = nn.scan(body, variable_broadcast="params", split_rngs={"params": False},
                   in_axes=(1, nn.broadcast), out_axes=1)
    _, (logits, alphas) = scan(self.decoder, encoded["s0"], target_proj, encoded)
    return logits, alphas

  def step(self, encoded, s, token):
    """One decoding step from state `s` (B, n) after word `token` (B,): (s', logits, alpha)."""
    s, (logits, alpha) = self.decoder(encoded, s, self.target_input(self.tgt_embed(token)))
    return s, logits, alpha

  def __call__(self, src, tgt_in):
    return self.decode(self.encode(src), tgt_in)[0]


# ---- search -------------------------------------------------------------------------------

def _emittable(logits):
  """Log-probabilities with PAD and BOS ruled out (never targets)."""
  logp = jax.nn.log_softmax(logits, axis=-1)
  return logp.at[..., PAD].set(NEG).at[..., BOS].set(NEG)


def greedy_decode(model: RNNSearch, variables, src, max_len: int):
  """The most likely word at each step: tokens (B, max_len), PAD after the first EOS."""
  encoded = model.apply(variables, src, method=RNNSearch.encode)
  batch = src.shape[0]

  def body(carry, _):
    s, token, done = carry
    s, logits, _ = model.apply(variables, encoded, s, token, method=RNNSearch.step)
    token = jnp.where(done, PAD, _emittable(logits).argmax(-1)).astype(jnp.int32)
    return (s, token, done | (token == EOS)), token

  init = (encoded["s0"], jnp.full((batch,), BOS, jnp.int32), jnp.zeros((batch,), bool))
  _, tokens = jax.lax.scan(body, init, None, length=max_len)
  return tokens.T


def beam_search(model: RNNSearch, variables, src, max_len: int, beam_size: int):
  """Beam search for the target of highest log-probability ending in EOS within `max_len` words.

  Keeps `beam_size` unfinished hypotheses and the `beam_size` best finished ones; stops when
  no unfinished hypothesis can still beat the worst finished one (scores only fall). Returns
  (tokens (B, K, max_len) best first, PAD after EOS; scores (B, K)); a row with no finished
  hypothesis returns its unfinished ones.
  """
  k = beam_size
  encoded = model.apply(variables, src, method=RNNSearch.encode)
  batch = src.shape[0]
  tile = lambda x: jnp.repeat(x, k, axis=0)  # (B, ...) -> (B*K, ...)
  encoded = jax.tree.map(tile, encoded)
  state = {
      "step": jnp.array(0),
      "s": encoded["s0"].reshape(batch, k, -1),
      "alive": jnp.zeros((batch, k, max_len), jnp.int32),
      # Only the first beam is live at the start, so the first step does not pick duplicates.
      "alive_score": jnp.tile(jnp.array([0.0] + [NEG] * (k - 1)), (batch, 1)),
      "finished": jnp.zeros((batch, k, max_len), jnp.int32),
      "finished_score": jnp.full((batch, k), NEG),
  }

  def not_done(st):
    can_improve = jnp.any(st["alive_score"].max(-1) > st["finished_score"].min(-1))
    return (st["step"] < max_len) & can_improve

  def body(st):
    i = st["step"]
    previous = jnp.where(i == 0, BOS, st["alive"][:, :, jnp.maximum(i - 1, 0)])
    s, logits, _ = model.apply(variables, encoded, st["s"].reshape(batch * k, -1),
                               previous.reshape(-1), method=RNNSearch.step)
    vocab = logits.shape[-1]
    scores = st["alive_score"][..., None] + _emittable(logits).reshape(batch, k, vocab)
    scores = scores.reshape(batch, k * vocab)
    top_scores, top = jax.lax.top_k(scores, 2 * k)  # enough to keep k unfinished ones
    beam, token = top // vocab, (top % vocab).astype(jnp.int32)
    seqs = jnp.take_along_axis(st["alive"], beam[..., None], axis=1).at[:, :, i].set(token)
    ends = token == EOS
    # Finished: the old ones and the candidates that end here, best k.
    pool = jnp.concatenate([st["finished"], seqs], axis=1)
    pool_scores = jnp.concatenate([st["finished_score"], jnp.where(ends, top_scores, NEG)], axis=1)
    best_scores, best = jax.lax.top_k(pool_scores, k)
    finished = jnp.take_along_axis(pool, best[..., None], axis=1)
    # Alive: the best k candidates that do not end.
    alive_scores, keep = jax.lax.top_k(jnp.where(ends, NEG, top_scores), k)
    alive = jnp.take_along_axis(seqs, keep[..., None], axis=1)
    s = jnp.take_along_axis(s.reshape(batch, k, -1), jnp.take_along_axis(beam, keep, 1)[..., None],
                            axis=1)
    return {"step": i + 1, "s": s, "alive": alive, "alive_score": alive_scores,
            "finished": finished, "finished_score": best_scores}

  st = jax.lax.while_loop(not_done, body, state)
  any_finished = (st["finished_score"][:, :1] > NEG / 2)
  tokens = jnp.where(any_finished[..., None], st["finished"], st["alive"])
  scores = jnp.where(any_finished, st["finished_score"], st["alive_score"])
  return tokens, scores
