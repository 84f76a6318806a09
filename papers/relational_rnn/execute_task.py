"""Program evaluation (Santoro et al. 2018, section 4.2): Learning to Execute with an RMC or LSTM.

The model reads a generated program (papers/relational_rnn/learning_to_execute.py) character
by character, then a "go" character, then writes the printed answer and an end character,
one per step, seeing the true previous character (teacher forcing), as Zaremba & Sutskever
train and score it. Sequences are left-padded to the longest program of the target level,
so every answer starts at the same position; padding leaves the core's state unchanged.

Training examples come from the curriculum (`data.curriculum`: mix by default), a pure
function of (seed, step); the test set is `data.test_examples` programs at the target level
from `core.task.heldout_rng(seed)`. Metrics: `char_accuracy`, the share of answer characters
predicted right (the paper's per-character accuracy; the end character not counted), and
`answer_accuracy`, the share of answers right in every character and the end (with teacher
forcing, which equals greedy decoding's whole-answer accuracy: if every step's argmax is the
true character, decoding from the model's own characters follows the same path).
"""
from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np
import optax

from core.task import ConfigError, Task, heldout_rng, spec, step_rng
from papers.relational_rnn import learning_to_execute as lte
from papers.relational_rnn.model import CharSeq2Seq
from papers.relational_rnn.task import core_kwargs

_END = lte.encode(lte.END)[0]
_GO = lte.encode(lte.GO)[0]
VOCAB_PADDED = 128  # logits padded to a multiple of 128 so the tensor axis can split them


class LearnToExecuteTask(Task):
  """Per-character cross entropy on the answer; accuracy per character and per answer."""

  def __init__(self, config):
    super().__init__(config)
    d, m = config.data, config.model
    if d.task not in lte.TASKS:
      raise ConfigError(f"config.data.task must be one of {', '.join(lte.TASKS)}, got {d.task!r}")
    if d.curriculum not in lte.CURRICULA:
      raise ConfigError(f"config.data.curriculum must be one of {', '.join(lte.CURRICULA)}, "
                        f"got {d.curriculum!r}")
    if not 1 <= d.length <= 18:  # values stay exact in int64 and the sequences short
      raise ConfigError(f"config.data.length (digits per literal) must be in 1..18, got {d.length}")
    if not 1 <= d.nesting <= lte.MAX_NESTING:
      raise ConfigError(f"config.data.nesting must be in 1..{lte.MAX_NESTING} (one variable name "
                        f"per operation), got {d.nesting}")
    if d.steps_per_level < 1 or not 0.0 <= d.mix_fraction <= 1.0:
      raise ConfigError("config.data.steps_per_level must be >= 1 and config.data.mix_fraction in "
                        f"[0, 1], got {d.steps_per_level} and {d.mix_fraction}")
    if d.eval_batch_size < 1 or d.test_examples < 1 or d.test_examples % d.eval_batch_size:
      raise ConfigError(f"config.data.test_examples ({d.test_examples}) must be a positive multiple "
                        f"of config.data.eval_batch_size ({d.eval_batch_size})")
    kwargs = core_kwargs(m)
    sizes = ((m.mem_slots, m.head_size, m.num_heads, m.num_blocks) if m.core == "rmc"
             else (m.hidden_size,))
    if min(sizes + (m.embed_size,) + tuple(m.mlp_sizes)) < 1:
      raise ConfigError("config.model sizes (slots, heads, head_size, blocks, hidden_size, "
                        "embed_size, mlp_sizes) must be >= 1")
    self.source_length = lte.max_source_length(d.task, d.length, d.nesting)
    self.answer_length = lte.max_answer_length(d.task, d.length, d.nesting) + 1  # + END
    self.model = CharSeq2Seq(vocab_size=VOCAB_PADDED, core=m.core, core_kwargs=kwargs,
                             embed_size=m.embed_size, mlp_sizes=tuple(m.mlp_sizes), unroll=m.unroll,
                             dtype=self.dtype)

  @property
  def sequence_length(self) -> int:
    """Model steps: the program, the go character, the answer (its end is only a target)."""
    return self.source_length + self.answer_length

  def examples(self, rng, lengths, nestings):
    """{"inputs" [B, T], "targets" [B, answer_length]} int32 for programs at these levels."""
    s, a = self.source_length, self.answer_length
    tokens = np.zeros((len(lengths), s + 1 + a), np.int32)
    for i, (length, nesting) in enumerate(zip(lengths, nestings)):
      program = lte.generate(rng, self.config.data.task, int(length), int(nesting))
      source, answer = lte.encode(program.source), lte.encode(program.target + lte.END)
      tokens[i, s - len(source):s] = source
      tokens[i, s] = _GO
      tokens[i, s + 1:s + 1 + len(answer)] = answer
    return {"inputs": tokens[:, :-1], "targets": tokens[:, s + 1:]}

  def init(self, rng):
    return self.model.init(rng, jnp.zeros((1, self.sequence_length), jnp.int32))

  def batch_spec(self):
    b = self.config.batch_size
    return {"inputs": spec((b, self.sequence_length), np.int32),
            "targets": spec((b, self.answer_length), np.int32)}

  def _scores(self, variables, batch, train, rng=None):
    """Per-position cross entropy, correctness, and the masks of answer characters and ends."""
    logits, state = self.apply(variables, batch["inputs"], train=train, rng=rng)
    logits = logits[:, self.source_length:]  # at the go character and each answer character
    targets = batch["targets"]
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, targets)
    correct = jnp.argmax(logits, -1) == targets
    scored = targets != lte.PAD                  # answer characters and the end
    chars = scored & (targets != _END)           # answer characters only
    return losses, correct, scored, chars, state

  def loss(self, variables, batch, rng, *, train):
    losses, correct, scored, chars, state = self._scores(variables, batch, train, rng)
    scored_f, chars_f = scored.astype(jnp.float32), chars.astype(jnp.float32)
    loss = jnp.sum(losses * scored_f) / jnp.maximum(jnp.sum(scored_f), 1.0)
    char_accuracy = jnp.sum(correct * chars_f) / jnp.maximum(jnp.sum(chars_f), 1.0)
    return loss, {"char_accuracy": char_accuracy}, state

  def eval_metrics(self, variables, batch):
    losses, correct, scored, chars, _ = self._scores(variables, batch, False)
    scored_f, chars_f = scored.astype(jnp.float32), chars.astype(jnp.float32)
    rows = correct.shape[0]
    solved = jnp.all(correct | ~scored, axis=-1).astype(jnp.float32)
    return {"loss": (jnp.sum(losses * scored_f), jnp.sum(scored_f)),
            "char_accuracy": (jnp.sum(correct * chars_f), jnp.sum(chars_f)),
            "answer_accuracy": (jnp.sum(solved), rows)}

  def train_batch(self, step):
    d = self.config.data
    rng = step_rng(self.config.seed, step)
    lengths, nestings = lte.curriculum_levels(rng, self.config.batch_size, d.curriculum, d.length,
                                              d.nesting, step, d.steps_per_level, d.mix_fraction)
    return self.examples(rng, lengths, nestings)

  @functools.cached_property
  def test_set(self):
    """`data.test_examples` programs at the target level, from the held-out stream."""
    d = self.config.data
    n = d.test_examples
    return self.examples(heldout_rng(self.config.seed), np.full(n, d.length), np.full(n, d.nesting))

  def eval_batches(self):
    test, size = self.test_set, self.config.data.eval_batch_size
    return [{k: v[i:i + size] for k, v in test.items()}
            for i in range(0, self.config.data.test_examples, size)]
