"""QM9 property regression with the enn-s2s MPNN (Gilmer et al. 2017).

A step reads `data.molecules_per_step` training molecules in the order of a grain index
shuffle of the training split (a new permutation every epoch, seeded by config.seed; step k
reads stream positions [kM, (k+1)M)), and spreads them over `batch_size` rows, each a
jraph.GraphsTuple padded to the fixed budgets data.row_nodes / row_edges / row_graphs: every
batch has one shape, and the batch axis (rows) is the data-parallel axis. A training molecule
that fits in no row is left out of its step (a test checks that none is over 1,000 steps of the
cpu config); evaluation moves such a molecule on to the next batch, so it scores every one.

The loss is the mean squared error of the normalised targets (the paper, section 7), jointly
over `data.targets`. Evaluation scores the held-out split (`data.eval_split`, or a fixed
random subset of `data.eval_molecules` of it) under jit: per target the mean absolute error in the paper's
units (`mae_<target>`) and its ratio to chemical accuracy (`ratio_<target>`, Table 5 of the
paper's supplement), as sums over molecules.
"""
from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from core.data import ArraySource, shuffled_stream
from core.task import ConfigError, Task, spec
from core.validate import check_choice
from papers.mpnn import data as qm9
from papers.mpnn import graphs
from papers.mpnn.model import MPNN


class QM9Task(Task):

  def __init__(self, config):
    super().__init__(config)
    d, m = config.data, config.model
    self.targets = tuple(d.targets)
    unknown = [t for t in self.targets if t not in qm9.TARGETS]
    if not self.targets or unknown:
      raise ConfigError(f"data.targets must be a non-empty subset of {qm9.TARGETS}, got {self.targets}")
    if d.row_graphs < 2 or d.row_nodes < 2 or d.molecules_per_step < 1:
      raise ConfigError("data.row_graphs and data.row_nodes must be >= 2 (one node and one graph "
                        "of each row pad it) and data.molecules_per_step >= 1")
    check_choice(config, "data.eval_split", ("valid", "test"))
    self.columns = np.array([qm9.TARGETS.index(t) for t in self.targets])
    self.accuracy = np.array([qm9.CHEMICAL_ACCURACY[t] for t in self.targets], np.float32)
    self.model = MPNN(num_targets=len(self.targets), features=m.features, edge_hidden=m.edge_hidden,
                      steps=m.steps, readout_steps=m.readout_steps, dtype=self.dtype)
    self._stream = None

  # ---- data -----------------------------------------------------------------
  def check_data(self):
    qm9.load_qm9()

  @functools.cached_property
  def _data(self):
    """(molecules, split indices, mean, std) of the selected targets."""
    molecules = qm9.load_qm9()
    split = qm9.split_indices(len(molecules))
    mean, std = qm9.normalisation(molecules.targets[:, self.columns], split["train"])
    return molecules, split, mean.astype(np.float32), std.astype(np.float32)

  def _budgets(self):
    d = self.config.data
    return int(d.row_nodes), int(d.row_edges), int(d.row_graphs)

  def assign_rows(self, indices) -> np.ndarray:
    return graphs.assign_rows(self._data[0].num_atoms(np.asarray(indices)), self.config.batch_size,
                              *self._budgets())

  def make_batch(self, indices, row_of=None) -> dict[str, np.ndarray]:
    """The molecules `indices` spread over batch_size padded rows (normalised targets)."""
    molecules, _, mean, std = self._data
    indices = np.asarray(indices)
    budgets = self._budgets()
    row_of = self.assign_rows(indices) if row_of is None else row_of
    targets = (molecules.targets[indices][:, self.columns] - mean) / std
    rows = []
    for r in range(self.config.batch_size):
      members = np.flatnonzero(row_of == r)
      rows.append(graphs.pad_row(
          [graphs.molecule_graph(*molecules.molecule(indices[i]), targets[i]) for i in members],
          *budgets, num_targets=len(self.targets)))
    return graphs.rows_to_batch(rows)

  def batch_spec(self):
    b, (n, e, g), t = self.config.batch_size, self._budgets(), len(self.targets)
    return {"nodes": spec((b, n, graphs.NODE_FEATURES), np.float32),
            "edges": spec((b, e, graphs.EDGE_FEATURES), np.float32),
            "senders": spec((b, e), np.int32), "receivers": spec((b, e), np.int32),
            "n_node": spec((b, g), np.int32), "n_edge": spec((b, g), np.int32),
            "targets": spec((b, g, t), np.float32), "graph_mask": spec((b, g), np.float32)}

  def step_molecules(self, step: int) -> np.ndarray:
    """The training molecules of `step`: stream positions [kM, (k+1)M) of the shuffled split."""
    if self._stream is None:
      train = self._data[1]["train"]
      limit = int(self.config.data.get("train_molecules", 0))
      if limit and limit < len(train):  # a fixed random subset, not the smallest molecules
        train = np.sort(np.random.default_rng(qm9.SPLIT_SEED).permutation(train)[:limit])
      self._stream = shuffled_stream(ArraySource({"index": train}), self.config.seed)
    m = int(self.config.data.molecules_per_step)
    return np.array([self._stream[step * m + i]["index"] for i in range(m)])

  def train_batch(self, step):
    return self.make_batch(self.step_molecules(step))

  def eval_indices(self) -> np.ndarray:
    """The held-out split, or a fixed random subset of `data.eval_molecules` of it (QM9 is
    ordered by size: its first molecules are the smallest)."""
    split = self._data[1][self.config.data.eval_split]
    limit = int(self.config.data.eval_molecules)
    if not limit or limit >= len(split):
      return split
    return np.sort(np.random.default_rng(qm9.SPLIT_SEED).permutation(split)[:limit])

  def eval_chunks(self):
    """(molecules, their rows) of each eval batch, covering every held-out molecule once: in a
    fixed random order (QM9 is ordered by size, and a run of large molecules would overflow the
    rows), a molecule that does not fit its batch moves on to the next one."""
    order = list(np.random.default_rng(qm9.SPLIT_SEED).permutation(self.eval_indices()))
    m = int(self.config.data.molecules_per_step)
    while order:
      chunk, order = np.array(order[:m]), order[m:]
      row_of = self.assign_rows(chunk)
      if (row_of < 0).all():
        raise ConfigError(f"a molecule of {self._data[0].num_atoms(chunk).max()} atoms fits no row: "
                          f"raise data.row_nodes / row_edges")
      order = list(chunk[row_of < 0]) + order
      yield chunk[row_of >= 0], row_of[row_of >= 0]

  def eval_batches(self):
    for chunk, row_of in self.eval_chunks():
      yield self.make_batch(chunk, row_of)

  # ---- model ----------------------------------------------------------------
  def init(self, rng):
    row = graphs.pad_row([], 4, 4, 2, len(self.targets))
    return self.model.init(rng, graphs.batch_to_graph(graphs.rows_to_batch([row]), 0))

  def predict(self, variables, batch):
    """Normalised predictions, (rows, row_graphs, targets): the model on each row."""
    return jax.vmap(lambda g: self.model.apply(variables, g))(graphs.batch_to_graph(batch))

  def loss(self, variables, batch, rng, *, train):
    del rng, train  # no dropout, no batch statistics
    error = self.predict(variables, batch) - batch["targets"]
    mask = batch["graph_mask"][..., None]
    count = jnp.maximum(mask.sum(), 1.0)
    loss = jnp.sum(mask * jnp.square(error)) / (count * len(self.targets))
    mae = jnp.sum(mask * jnp.abs(error), axis=(0, 1)) / count * self._data[3]
    return loss, {f"mae_{t}": mae[k] for k, t in enumerate(self.targets)}, {}

  def eval_metrics(self, variables, batch):
    """Sums over the batch's molecules: squared error (normalised), per-target MAE and ratio."""
    error = self.predict(variables, batch) - batch["targets"]
    mask = batch["graph_mask"][..., None]
    count = mask.sum()
    absolute = jnp.sum(mask * jnp.abs(error), axis=(0, 1)) * self._data[3]   # physical units
    metrics = {"loss": (jnp.sum(mask * jnp.square(error)) / len(self.targets), count)}
    for k, t in enumerate(self.targets):
      metrics[f"mae_{t}"] = (absolute[k], count)
      metrics[f"ratio_{t}"] = (absolute[k] / self.accuracy[k], count)
    metrics["mean_ratio"] = (jnp.sum(absolute / self.accuracy) / len(self.targets), count)
    return metrics

  def predictions(self, variables) -> tuple[np.ndarray, np.ndarray]:
    """(predicted, true) targets in the paper's units for every eval molecule, in eval order."""
    molecules, _, mean, std = self._data
    apply = jax.jit(self.predict)
    predicted, order = [], []
    for chunk, row_of in self.eval_chunks():
      pred = np.asarray(apply(variables, self.make_batch(chunk, row_of)))
      for r in range(self.config.batch_size):  # a row holds its molecules in index order
        members = chunk[row_of == r]
        order.extend(members)
        predicted.extend(pred[r, :len(members)])
    order = np.array(order)
    return np.stack(predicted) * std + mean, molecules.targets[order][:, self.columns]
