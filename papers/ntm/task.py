"""The NTM paper's tasks (Section 4): copy, repeat copy, associative recall, priority sort.

Every generator is a pure function of a numpy Generator and returns a batch of
fixed shape: `inputs` (B, T, in), `targets` (B, T, out) and `mask` (B, T), 1
where the network's output is scored. Sequences shorter than the longest are
zero-padded at the end (the padding is never scored). The cost is the paper's:
binary cross-entropy of the sigmoid outputs, in bits, summed over a sequence.
"""
from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from core.task import ConfigError, Task, heldout_rng, spec, step_rng
from papers.ntm.model import NTM, StackedLSTM

REPEAT_MEAN, REPEAT_STD = 5.5, math.sqrt(8.25)  # uniform {1..10}, normalised (Section 4.2)


def copy_batch(rng, batch, min_len=1, max_len=20, width=8, num_steps=None):
  """Section 4.1: L random `width`-bit vectors, a delimiter flag, then L blank steps to copy into.

  Channels: `width` data bits + 1 delimiter. T = 2 * max_len + 1 unless num_steps is given.
  """
  num_steps = num_steps or 2 * max_len + 1
  lengths = rng.integers(min_len, max_len + 1, size=batch)
  bits = rng.integers(0, 2, size=(batch, max_len, width)).astype(np.float32)
  t = np.arange(num_steps)[None, :]
  data = t < lengths[:, None]
  inputs = np.zeros((batch, num_steps, width + 1), np.float32)
  inputs[:, :max_len, :width] = bits * data[:, :max_len, None]
  inputs[np.arange(batch), lengths, width] = 1.0
  mask = (t > lengths[:, None]) & (t <= 2 * lengths[:, None])
  targets = np.zeros((batch, num_steps, width), np.float32)
  for b, n in enumerate(lengths):
    targets[b, n + 1:2 * n + 1] = bits[b, :n]
  return dict(inputs=inputs, targets=targets, mask=mask.astype(np.float32))


def repeat_copy_batch(rng, batch, min_len=1, max_len=10, min_repeats=1, max_repeats=10, width=8):
  """Section 4.2: a sequence, then its repeat count (normalised to mean 0, variance 1) on its own
  channel beside a delimiter flag; the target is the sequence repeated, then an end marker.

  Inputs: `width` bits + delimiter + repeat count. Targets: `width` bits + end marker.
  """
  num_steps = max_len + 1 + max_len * max_repeats + 1
  lengths = rng.integers(min_len, max_len + 1, size=batch)
  repeats = rng.integers(min_repeats, max_repeats + 1, size=batch)
  bits = rng.integers(0, 2, size=(batch, max_len, width)).astype(np.float32)
  inputs = np.zeros((batch, num_steps, width + 2), np.float32)
  targets = np.zeros((batch, num_steps, width + 1), np.float32)
  mask = np.zeros((batch, num_steps), np.float32)
  for b, (n, r) in enumerate(zip(lengths, repeats)):
    inputs[b, :n, :width] = bits[b, :n]
    inputs[b, n, width] = 1.0
    inputs[b, n, width + 1] = (r - REPEAT_MEAN) / REPEAT_STD
    start, end = n + 1, n + 1 + n * r
    targets[b, start:end, :width] = np.tile(bits[b, :n], (r, 1))
    targets[b, end, width] = 1.0
    mask[b, start:end + 1] = 1.0
  return dict(inputs=inputs, targets=targets, mask=mask)


def associative_recall_batch(rng, batch, min_items=2, max_items=6, item_len=3, width=6):
  """Section 4.3: items of `item_len` `width`-bit vectors, each after an item delimiter; then a
  query item between two query delimiters; the target is the item that followed the query.

  Inputs: `width` bits + item delimiter + query delimiter. Targets: `width` bits.
  """
  num_steps = max_items * (item_len + 1) + item_len + 2 + item_len
  counts = rng.integers(min_items, max_items + 1, size=batch)
  items = rng.integers(0, 2, size=(batch, max_items, item_len, width)).astype(np.float32)
  queries = (rng.random(batch) * (counts - 1)).astype(int)  # any item but the last
  inputs = np.zeros((batch, num_steps, width + 2), np.float32)
  targets = np.zeros((batch, num_steps, width), np.float32)
  mask = np.zeros((batch, num_steps), np.float32)
  for b, (n, q) in enumerate(zip(counts, queries)):
    for i in range(n):
      t = i * (item_len + 1)
      inputs[b, t, width] = 1.0
      inputs[b, t + 1:t + 1 + item_len, :width] = items[b, i]
    t = n * (item_len + 1)
    inputs[b, t, width + 1] = 1.0
    inputs[b, t + 1:t + 1 + item_len, :width] = items[b, q]
    inputs[b, t + 1 + item_len, width + 1] = 1.0
    out = t + 2 + item_len
    targets[b, out:out + item_len] = items[b, q + 1]
    mask[b, out:out + item_len] = 1.0
  return dict(inputs=inputs, targets=targets, mask=mask)


def priority_sort_batch(rng, batch, num_inputs=20, num_outputs=16, width=8):
  """Section 4.5: `num_inputs` random vectors with priorities uniform in [-1, 1]; after a
  delimiter, the target is the `num_outputs` highest-priority vectors, highest first.

  Inputs: `width` bits + priority + delimiter. Targets: `width` bits.
  """
  num_steps = num_inputs + 1 + num_outputs
  bits = rng.integers(0, 2, size=(batch, num_inputs, width)).astype(np.float32)
  priority = rng.uniform(-1.0, 1.0, size=(batch, num_inputs)).astype(np.float32)
  inputs = np.zeros((batch, num_steps, width + 2), np.float32)
  inputs[:, :num_inputs, :width] = bits
  inputs[:, :num_inputs, width] = priority
  inputs[:, num_inputs, width + 1] = 1.0
  order = np.argsort(-priority, axis=1)[:, :num_outputs]
  targets = np.zeros((batch, num_steps, width), np.float32)
  targets[:, num_inputs + 1:] = np.take_along_axis(bits, order[..., None], axis=1)
  mask = np.zeros((batch, num_steps), np.float32)
  mask[:, num_inputs + 1:] = 1.0
  return dict(inputs=inputs, targets=targets, mask=mask)


GENERATORS = dict(copy=copy_batch, repeat_copy=repeat_copy_batch,
                  associative_recall=associative_recall_batch, priority_sort=priority_sort_batch)


def sequence_bits(logits, targets, mask):
  """Per-sequence cross-entropy in bits and number of wrong bits (outputs thresholded at 0.5)."""
  nats = jnp.logaddexp(0.0, logits) - targets * logits  # -log p(target) of a sigmoid output
  bits = jnp.sum(nats * mask[..., None], axis=(1, 2)) / math.log(2.0)
  wrong = jnp.sum((logits > 0).astype(jnp.float32) != targets, axis=-1)
  return bits, jnp.sum(wrong * mask, axis=1)


def _require_positive(group, prefix: str, *names: str) -> None:
  for name in names:
    if group[name] < 1:
      raise ConfigError(f"config.{prefix}.{name} must be >= 1, got {group[name]}")


def build_model(config, output_size):
  m = config.model
  if m.name == "ntm":
    if m.controller not in ("lstm", "ff"):
      raise ConfigError(f"config.model.controller must be 'lstm' or 'ff', got {m.controller!r}")
    _require_positive(m, "model", "controller_size", "controller_layers", "memory_locations",
                      "memory_width", "num_heads")
    if not 0 <= m.shift_range < m.memory_locations:
      raise ConfigError(f"config.model.shift_range must be in [0, memory_locations), got {m.shift_range} "
                        f"with {m.memory_locations} locations")
    return NTM(output_size, controller=m.controller, controller_size=m.controller_size,
               controller_layers=m.controller_layers,
               memory_locations=m.memory_locations, memory_width=m.memory_width,
               num_heads=m.num_heads, shift_range=m.shift_range, clip=m.clip)
  if m.name == "lstm":
    if "hidden_size" not in m:
      raise ConfigError("config.model.name='lstm' needs the LSTM baseline's config (model.hidden_size, "
                        "model.num_layers): use an `-lstm` variant of configs/ntm.py")
    _require_positive(m, "model", "hidden_size", "num_layers")
    return StackedLSTM(output_size, hidden_size=m.hidden_size, num_layers=m.num_layers)
  raise ConfigError(f"config.model.name must be 'ntm' or 'lstm', got {m.name!r}")


class NTMTask(Task):
  """One of the paper's tasks (config.data.task) with an NTM or the LSTM baseline.

  Training sequences are fresh every step (`train_batch`, a pure function of (seed, step));
  the held-out sequences and, for copy, the longer generalisation sequences come from
  `heldout_rng(seed, ...)`, a stream no training step draws from.
  """
  # The addressing relies on epsilons (1e-16 inside the cosine norms, 1e-12 in the log of
  # sharpening) and on a 1e-6 memory start that bfloat16 cannot carry beside O(1) writes;
  # the nets are tiny and latency-bound, so a low-precision compute dtype gains nothing.
  supported_dtypes = ("float32",)

  def __init__(self, config):
    super().__init__(config)
    name = config.data.task
    if name not in GENERATORS:
      raise ConfigError(f"config.data.task must be one of {sorted(GENERATORS)}, got {name!r}")
    self.generate = functools.partial(GENERATORS[name], **dict(config.data.get("args", {})))
    d = config.data
    _require_positive(d, "data", "eval_sequences", "eval_batch_size")
    if d.eval_sequences % d.eval_batch_size:
      raise ConfigError(f"config.data.eval_sequences ({d.eval_sequences}) must be a multiple of "
                        f"config.data.eval_batch_size ({d.eval_batch_size})")
    # A batch of zero sequences: every array's shape and dtype, without generating any data.
    self._empty = self.generate(np.random.default_rng(0), 0)
    self.model = build_model(config, self._empty["targets"].shape[-1])
    self.input_size = self._empty["inputs"].shape[-1]

  def init(self, rng):
    num_steps = 3  # parameter shapes do not depend on the sequence length
    return self.model.init(rng, jnp.zeros((1, num_steps, self.input_size)))

  def batch_spec(self):
    b = self.config.batch_size
    return {k: spec((b, *v.shape[1:]), v.dtype) for k, v in self._empty.items()}

  def loss(self, variables, batch, rng, *, train):
    (logits, _), state = self.apply(variables, batch["inputs"], train=train, rng=rng)
    bits, wrong = sequence_bits(logits, batch["targets"], batch["mask"])
    cost = jnp.mean(bits)
    return cost, {"bits_per_sequence": cost, "bit_errors_per_sequence": jnp.mean(wrong)}, state

  def train_batch(self, step):
    return self.generate(step_rng(self.config.seed, step), self.config.batch_size)

  @functools.cached_property
  def _heldout(self):
    d = self.config.data
    rng = heldout_rng(self.config.seed)
    return [self.generate(rng, d.eval_batch_size) for _ in range(d.eval_sequences // d.eval_batch_size)]

  def eval_batches(self):
    """`data.eval_sequences` fixed held-out sequences of the training distribution."""
    return self._heldout

  @functools.cached_property
  def forward(self):
    """The model, jitted once: (variables, inputs) -> (logits, read/write weightings)."""
    return jax.jit(lambda variables, inputs: self.model.apply(variables, inputs))

  def generalisation_batch(self, length):
    """`data.eval_batch_size` held-out copy sequences of exactly `length` vectors."""
    return copy_batch(heldout_rng(self.config.seed, length), self.config.data.eval_batch_size,
                      length, length)

  def generalisation_batches(self):
    """Held-out batches outside the training distribution, keyed by metric suffix: copy, longer
    sequences (Figures 4-5); repeat copy, longer sequences and more repeats (Figure 8);
    associative recall, more items (Figure 11). Empty for priority sort."""
    d, seed, size = self.config.data, self.config.seed, self.config.data.eval_batch_size
    name = d.task
    if name == "copy":
      return {f"len{n}": self.generalisation_batch(n) for n in d.generalisation_lengths}
    if name == "repeat_copy":
      return {f"len{n}_rep{r}": repeat_copy_batch(heldout_rng(seed, n, r), size, n, n, r, r)
              for n, r in d.generalisation_repeats}
    if name == "associative_recall":
      return {f"items{n}": associative_recall_batch(heldout_rng(seed, n), size, n, n)
              for n in d.generalisation_items}
    return {}

  @functools.cached_property
  def _sequence_metrics(self):
    """Jitted once (traced once per sequence length): mean bits and wrong bits of a batch."""
    def metrics(variables, batch):
      logits, _ = self.model.apply(variables, batch["inputs"])
      bits, wrong = sequence_bits(logits, batch["targets"], batch["mask"])
      return jnp.mean(bits), jnp.mean(wrong)
    return jax.jit(metrics)

  def evaluate(self, variables, step):
    """Cost and wrong bits on the generalisation batches (`bits_per_sequence_len120`, ...)."""
    del step
    out = {}
    for suffix, batch in self.generalisation_batches().items():
      bits, wrong = self._sequence_metrics(variables, batch)
      out[f"bits_per_sequence_{suffix}"] = float(bits)
      out[f"bit_errors_per_sequence_{suffix}"] = float(wrong)
    return out
