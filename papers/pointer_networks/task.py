"""Ptr-Net on the paper's three geometric problems: convex hull, Delaunay triangulation, TSP.

Training data is a fixed set of `data.train_examples` labelled examples (the paper: 1M),
example i a pure function of (seed, "train", i) (papers.pointer_networks.geometry); batch k
draws `batch_size` indices from it by (seed, k). Labels are made on the host, never in the
jitted step; TSP labels (Held-Karp) are kept once made, since the set is revisited.

The held-out set is `data.eval_examples` examples of the "test" split. `eval_batches` scores
it teacher-forced under the trainer's jit (loss, per-token accuracy); `evaluate` decodes it
on the host and reports the paper's metrics:
  exact_accuracy        whole output sequence right, greedy decoding, unconstrained
  hull:     area_coverage     mean area(predicted polygon) / area(true hull), over the
                              predictions that are simple polygons (paper, section 4.2)
            area_failure_rate fraction of predictions that are not simple polygons
            (a mean over no rows, e.g. before any simple polygon, is not reported)
  delaunay: triangle_coverage mean fraction of the true triangles predicted
  tsp:      tour_length, invalid_tour_rate   greedy, unconstrained (an invalid tour: not a
                              permutation of the points; its length is not averaged)
            tour_length_beam  beam search restricted to valid tours (as the paper, section 4.4)
            optimal_tour_length  the labels' mean tour length (exact for n <= 12)
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax

from core.task import ConfigError, Task, spec, step_rng
from core.validate import check_choice
from papers.pointer_networks import geometry
from papers.pointer_networks.model import PointerNetwork

CHUNK = 256  # TSP examples labelled together and kept


class PointerTask(Task):

  def __init__(self, config):
    super().__init__(config)
    d, m = config.data, config.model
    check_choice(config, "data.problem", tuple(geometry.PROBLEMS))
    if not 3 <= d.min_points <= d.max_points:
      raise ConfigError(f"need 3 <= data.min_points <= data.max_points, got {d.min_points}, {d.max_points}")
    if d.problem == "delaunay" and d.min_points != d.max_points:
      raise ConfigError("data.problem='delaunay' takes one size: set data.min_points = data.max_points")
    limit = geometry.max_output_length(d.problem, d.max_points)
    self.max_output = int(d.max_output_len) or limit
    if not 2 <= self.max_output <= limit:
      raise ConfigError(f"data.max_output_len must be in [2, {limit}] (0 = {limit}), got {d.max_output_len}")
    if d.eval_examples % d.eval_batch_size or d.eval_batch_size % 8:
      raise ConfigError(f"data.eval_examples {d.eval_examples} must be a multiple of data.eval_batch_size "
                        f"{d.eval_batch_size}, itself a multiple of 8 rows")
    self.model = PointerNetwork(hidden_size=m.hidden_size, attention_size=m.attention_size,
                                init_scale=m.init_scale, dtype=self.dtype)
    self._examples = functools.partial(
        geometry.examples, d.problem, config.seed, min_points=d.min_points, max_points=d.max_points,
        max_output=self.max_output)
    # The exact TSP solver is the slow part: label the fixed set once, a chunk at a time.
    self._chunk = functools.lru_cache(maxsize=None)(
        lambda split, chunk: self._examples(split, range(chunk * CHUNK, (chunk + 1) * CHUNK)))
    self._decoders = {}

  def examples(self, split: str, indices) -> dict[str, np.ndarray]:
    d = self.config.data
    if d.problem == "hull" and d.min_points == d.max_points <= geometry.VECTORISED_HULL_MAX:
      return geometry.hull_batch(self.config.seed, split, [int(i) for i in indices], d.max_points,
                                 self.max_output)
    if d.problem == "tsp":
      rows = [self._chunk(split, int(i) // CHUNK)[int(i) % CHUNK] for i in indices]
    else:
      rows = self._examples(split, [int(i) for i in indices])
    return {key: np.stack([r[key] for r in rows]) for key in rows[0]}

  # ---- model ----------------------------------------------------------------
  def init(self, rng):
    d = self.config.data
    return self.model.init(rng, jnp.zeros((2, d.max_points, 2)), jnp.ones((2, d.max_points), bool),
                           jnp.zeros((2, self.max_output), jnp.int32))

  def _token_losses(self, variables, batch):
    logits, _ = self.apply(variables, batch["points"], batch["point_mask"], batch["targets"],
                           train=False)
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["targets"])
    mask = batch["target_mask"].astype(jnp.float32)
    correct = (logits.argmax(-1) == batch["targets"]).astype(jnp.float32) * mask
    return losses * mask, correct, mask

  def loss(self, variables, batch, rng, *, train):
    # No dropout or running statistics: training and evaluation compute the same thing.
    losses, correct, mask = self._token_losses(variables, batch)
    tokens = jnp.maximum(mask.sum(), 1.0)
    sequence = (correct.sum(1) == mask.sum(1)).astype(jnp.float32).mean()
    # The paper's objective (eq. 2): the log-likelihood of whole output sequences, so the
    # loss is summed over a sequence's tokens and averaged over the batch's sequences.
    return losses.sum() / mask.shape[0], {"token_accuracy": correct.sum() / tokens,
                                   "sequence_accuracy_forced": sequence}, {}

  def eval_metrics(self, variables, batch):
    losses, correct, mask = self._token_losses(variables, batch)
    rows = mask.shape[0]
    return {"loss": (losses.sum(), rows), "token_accuracy": (correct.sum(), mask.sum()),
            "sequence_accuracy_forced": ((correct.sum(1) == mask.sum(1)).sum(), rows)}

  # ---- data -----------------------------------------------------------------
  def batch_spec(self):
    b, n, t = self.config.batch_size, self.config.data.max_points, self.max_output
    return {"points": spec((b, n, 2), np.float32), "point_mask": spec((b, n), bool),
            "targets": spec((b, t), np.int32), "target_mask": spec((b, t), bool)}

  def train_batch(self, step):
    rng = step_rng(self.config.seed, step)
    return self.examples("train", rng.integers(0, self.config.data.train_examples, self.config.batch_size))

  def eval_batches(self):
    d = self.config.data
    for start in range(0, d.eval_examples, d.eval_batch_size):
      yield self.examples("test", range(start, start + d.eval_batch_size))

  # ---- decoding and the paper's metrics --------------------------------------
  def decoder(self, beam_size: int, tour: bool):
    """A jitted (variables, points, point_mask) -> (tokens, log-prob) decoder."""
    if (beam_size, tour) not in self._decoders:
      self._decoders[beam_size, tour] = jax.jit(functools.partial(
          self.model.apply, method=PointerNetwork.decode, max_len=self.max_output,
          beam_size=beam_size, tour=tour))
    return self._decoders[beam_size, tour]

  def decode(self, variables, batch, beam_size: int = 1, tour: bool = False) -> np.ndarray:
    tokens, _ = self.decoder(beam_size, tour)(variables, batch["points"], batch["point_mask"])
    return np.asarray(tokens)

  def evaluate(self, variables, step):
    del step
    variables = {"params": variables["params"]}
    d = self.config.data
    batches = list(self.eval_batches())
    greedy = [self.decode(variables, b) for b in batches]
    beam = []
    if d.problem == "tsp" and d.beam_size:
      beam = [self.decode(variables, b, d.beam_size, tour=True) for b in batches]
    return score(d.problem, batches, greedy, beam)


def sequence_of(tokens) -> list[int]:
  """0-based point indices of one decoded row, up to its first END."""
  out = []
  for t in np.asarray(tokens).tolist():
    if t == geometry.END:
      break
    out.append(t - 1)
  return out


def score(problem: str, batches, greedy, beam=()) -> dict[str, float]:
  """The paper's metrics of decoded sequences against the labels (host-side numpy)."""
  exact, coverage, failures, lengths, invalid, optimal, beam_lengths = [], [], [], [], [], [], []
  for b, batch in enumerate(batches):
    for r in range(len(batch["targets"])):
      points = batch["points"][r][batch["point_mask"][r]]
      truth = sequence_of(batch["targets"][r])
      pred = sequence_of(greedy[b][r])
      exact.append(pred == truth)
      if problem == "hull":
        simple = geometry.is_simple_polygon(points, pred)
        failures.append(not simple)
        if simple:
          coverage.append(abs(geometry.polygon_area(points[pred])) /
                          geometry.polygon_area(points[truth]))
      elif problem == "delaunay":
        true_set = {tuple(t) for t in np.reshape(truth, (-1, 3)).tolist()}
        whole = len(pred) - len(pred) % 3
        pred_set = {tuple(sorted(t)) for t in np.reshape(pred[:whole], (-1, 3)).tolist()}
        coverage.append(len(true_set & pred_set) / len(true_set))
        exact[-1] = pred_set == true_set and whole == len(pred) == len(truth)
      else:
        optimal.append(geometry.tour_length(points, truth))
        valid = sorted(pred) == list(range(len(points)))
        invalid.append(not valid)
        if valid:
          lengths.append(geometry.tour_length(points, pred))
        if len(beam):
          beam_lengths.append(geometry.tour_length(points, sequence_of(beam[b][r])))
  out = {"exact_accuracy": float(np.mean(exact))}
  mean = lambda xs: float(np.mean(xs)) if xs else float("nan")
  if problem == "hull":
    out.update(area_coverage=mean(coverage), area_failure_rate=float(np.mean(failures)))
  elif problem == "delaunay":
    out.update(triangle_coverage=mean(coverage))
  else:
    out.update(tour_length=mean(lengths), invalid_tour_rate=float(np.mean(invalid)),
               optimal_tour_length=mean(optimal))
    if beam_lengths:
      out["tour_length_beam"] = mean(beam_lengths)
  # A mean over no rows (e.g. no simple polygon yet) is left out rather than logged as NaN.
  return {k: v for k, v in out.items() if not np.isnan(v)}
