"""The prequential code length of a neural net (Blier & Ollivier 2018, "The description length
of deep learning models"; Grünwald 2005 sec. 2.6 for the prequential code).

The text is cut at t_0 < t_1 < ... < t_S = n (doubling blocks). The first t_0 symbols are sent
with the uniform code (log2 K each); block s, x[t_s : t_{s+1}], is sent with the predictions
of a model trained on x[:t_s] only, so a receiver that runs the same training can decode it.
The total is a code length for the whole text that charges the model for what it had to learn,
with no parameter cost to guess. Blier & Ollivier retrain from scratch for each block, with
early stopping on held-out data; to fit a small CPU budget this goes on from the previous
block's weights, training on the first 90% of x[:t_s] and keeping the weights that score best
on its last 10% (checked every `check_every` steps, at most `steps` per block). Without that
stop, 400 steps per block overfitted the first 2,000 characters so badly that a 128-unit LSTM
coded the next block at more than the uniform code's 5.2 bits per character. Any rule the
receiver can rerun keeps the code valid; this one is deterministic given the seed.
"""
from __future__ import annotations

import math
import time

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from papers.lstm import RNN


class CharLSTM(nn.Module):
  """Embedding, one LSTM layer, softmax over the K symbols."""
  num_values: int
  hidden: int

  @nn.compact
  def __call__(self, tokens, carry=None):
    x = nn.Embed(self.num_values, min(self.hidden, 32))(tokens)
    out, carry = RNN(self.hidden, cell="lstm")(x, carry)
    return nn.Dense(self.num_values)(out), carry


def block_edges(first: int, n: int) -> list[int]:
  """[first, 2 first, 4 first, ..., n]: where the blocks start, and the end."""
  edges = [first]
  while edges[-1] * 2 < n:
    edges.append(edges[-1] * 2)
  return edges + [n]


def prequential_code(seq: np.ndarray, num_values: int, hidden: int, first: int, steps: int,
                     window: int = 64, batch: int = 32, context: int = 128,
                     learning_rate: float = 3e-3, seed: int = 0, check_every: int = 25) -> dict:
  """{"bits": total, "blocks": [(start, end, bits)], "steps": [steps kept per block], ...}."""
  seq = np.asarray(seq, np.int32)
  model = CharLSTM(num_values, hidden)
  params = model.init(jax.random.key(seed), jnp.zeros((1, window), jnp.int32))["params"]
  tx = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(learning_rate))
  opt_state = tx.init(params)

  @jax.jit
  def train_step(params, opt_state, inputs, targets):
    def loss_fn(p):
      logits, _ = model.apply({"params": p}, inputs)
      return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()
    loss, grads = jax.value_and_grad(loss_fn)(params)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, loss

  @jax.jit
  def code_bits(params, tokens):
    """-log2 P of tokens[1:] given each prefix (one sequence, the carry across all of it)."""
    logits, _ = model.apply({"params": params}, tokens[None, :-1])
    nats = optax.softmax_cross_entropy_with_integer_labels(logits[0], tokens[1:])
    return nats / math.log(2.0)

  def score(params, lo, hi):
    """Bits of x[lo:hi] given x[:lo] (the carry warmed on the `context` symbols before lo)."""
    begin = max(lo - context, 0)
    return float(np.asarray(code_bits(params, jnp.asarray(seq[begin:hi])))[lo - begin - 1:].sum())

  start = time.time()
  edges = block_edges(first, len(seq))
  blocks = [(0, first, first * math.log2(num_values))]
  kept = []
  rng = np.random.default_rng(seed)
  for s in range(len(edges) - 1):
    lo, hi = edges[s], edges[s + 1]
    split = int(0.9 * lo)   # learn from x[:split], stop early on x[split:lo]: nothing past lo
    best, best_params, best_step = score(params, split, lo), params, 0
    for step in range(1, steps + 1):
      at = rng.integers(0, split - window, batch)
      rows = np.stack([seq[a:a + window + 1] for a in at])
      params, opt_state, _ = train_step(params, opt_state, rows[:, :-1], rows[:, 1:])
      if step % check_every == 0:
        held_out = score(params, split, lo)
        if held_out < best:
          best, best_params, best_step = held_out, params, step
        elif step - best_step >= 4 * check_every:   # no better for 4 checks: stop
          break
    params = best_params
    kept.append(best_step)
    blocks.append((lo, hi, score(params, lo, hi)))
  return {"bits": sum(b for _, _, b in blocks), "blocks": blocks, "steps": kept,
          "seconds": time.time() - start, "parameters": int(sum(x.size for x in jax.tree.leaves(params)))}


def kt_prequential_blocks(seq: np.ndarray, num_values: int, order: int, edges: list[int]) -> list:
  """The order-k KT code (papers.mdl.markov's bayes) per block, for comparison: [(lo, hi, bits)]."""
  from papers.mdl.markov import code_lengths  # pylint: disable=g-import-not-at-top
  totals = [0.0] + [code_lengths(seq[:e], num_values, order)["bayes"] for e in edges]
  bounds = [0] + edges
  return [(bounds[i], bounds[i + 1], totals[i + 1] - totals[i]) for i in range(len(edges))]
