"""Molecules as graphs (the paper's section 6, without RDKit), packed into fixed-size rows.

Nodes are all atoms, hydrogens included (the paper's best input). Node features, after the
paper's Table 1, as far as the geometry gives them:
    one-hot H, C, N, O, F | atomic number | number of bonded hydrogens | donor | acceptor
where two atoms are bonded when closer than 1.2 x the sum of their covalent radii, a donor is
an N or O with a bonded H and an acceptor is any N, O or F (a simplification of RDKit's
feature definitions). Aromaticity and sp/sp2/sp3 hybridisation need bond-order perception
and are left out. Edges join every ordered pair of distinct atoms (the complete graph of the
paper's spatial variant); edge features are the paper's "raw distance feature" with the bond
type reduced to bonded / not bonded: (distance in Angstrom, bonded).

A training row is one jraph.GraphsTuple of several molecules, padded by jraph.pad_with_graphs
to fixed node, edge and graph budgets, so every batch has one shape and the step compiles once.
"""
from __future__ import annotations

import jraph
import numpy as np

from papers.mpnn.data import ELEMENTS, ATOMIC_NUMBER

NODE_FEATURES = len(ELEMENTS) + 4
EDGE_FEATURES = 2
COVALENT_RADIUS = {1: 0.31, 6: 0.76, 7: 0.71, 8: 0.66, 9: 0.57}   # Angstrom (Cordero et al. 2008)
BOND_TOLERANCE = 1.2
_ONE_HOT = {ATOMIC_NUMBER[e]: k for k, e in enumerate(ELEMENTS)}
_RADIUS = np.zeros(10)
for _z, _r in COVALENT_RADIUS.items():
  _RADIUS[_z] = _r


def molecule_graph(atomic_numbers: np.ndarray, positions: np.ndarray, targets: np.ndarray):
  """One molecule -> a jraph.GraphsTuple (numpy) with globals {"targets", "mask"}."""
  z = np.asarray(atomic_numbers, np.int64)
  n = len(z)
  distance = np.linalg.norm(positions[:, None, :] - positions[None, :, :], axis=-1)
  bonded = (distance < BOND_TOLERANCE * (_RADIUS[z][:, None] + _RADIUS[z][None, :])) & ~np.eye(n, dtype=bool)
  hydrogens = (bonded & (z == 1)[None, :]).sum(1)
  nodes = np.zeros((n, NODE_FEATURES), np.float32)
  nodes[np.arange(n), [_ONE_HOT[int(a)] for a in z]] = 1
  nodes[:, 5] = z
  nodes[:, 6] = hydrogens
  nodes[:, 7] = np.isin(z, (7, 8)) & (hydrogens > 0)
  nodes[:, 8] = np.isin(z, (7, 8, 9))
  receivers, senders = np.nonzero(~np.eye(n, dtype=bool))   # edge w -> v carries A(e_vw) h_w
  edges = np.stack([distance[receivers, senders], bonded[receivers, senders]], -1).astype(np.float32)
  return jraph.GraphsTuple(
      nodes=nodes, edges=edges, senders=senders.astype(np.int32), receivers=receivers.astype(np.int32),
      n_node=np.array([n], np.int32), n_edge=np.array([len(senders)], np.int32),
      globals={"targets": np.asarray(targets, np.float32)[None], "mask": np.ones((1,), np.float32)})


def assign_rows(num_atoms: np.ndarray, rows: int, max_nodes: int, max_edges: int, max_graphs: int):
  """Spreads molecules over `rows` padded rows: largest first, each into the least filled row
  that still has room (a row keeps one node for padding and one graph for the padding graph).
  Returns the row of each molecule, -1 for a molecule that fits nowhere (dropped)."""
  nodes, edges, graphs = np.zeros(rows, int), np.zeros(rows, int), np.zeros(rows, int)
  row_of = np.full(len(num_atoms), -1)
  for i in np.argsort(-np.asarray(num_atoms), kind="stable"):
    n = int(num_atoms[i])
    fits = ((nodes + n <= max_nodes - 1) & (edges + n * (n - 1) <= max_edges)
            & (graphs + 1 <= max_graphs - 1))
    if fits.any():
      r = int(np.flatnonzero(fits)[np.argmin(nodes[fits])])
      row_of[i] = r
      nodes[r] += n
      edges[r] += n * (n - 1)
      graphs[r] += 1
  return row_of


def pad_row(graphs: list[jraph.GraphsTuple], max_nodes: int, max_edges: int, max_graphs: int,
            num_targets: int) -> jraph.GraphsTuple:
  if graphs:
    row = jraph.batch_np(graphs)
  else:  # an empty row: only padding
    row = jraph.GraphsTuple(
        nodes=np.zeros((0, NODE_FEATURES), np.float32), edges=np.zeros((0, EDGE_FEATURES), np.float32),
        senders=np.zeros(0, np.int32), receivers=np.zeros(0, np.int32),
        n_node=np.zeros(0, np.int32), n_edge=np.zeros(0, np.int32),
        globals={"targets": np.zeros((0, num_targets), np.float32), "mask": np.zeros(0, np.float32)})
  return jraph.pad_with_graphs(row, max_nodes, max_edges, max_graphs)


def rows_to_batch(rows: list[jraph.GraphsTuple]) -> dict[str, np.ndarray]:
  """Padded rows -> the task's batch: every array with a leading row axis."""
  return {
      "nodes": np.stack([r.nodes for r in rows]), "edges": np.stack([r.edges for r in rows]),
      "senders": np.stack([r.senders for r in rows]).astype(np.int32),
      "receivers": np.stack([r.receivers for r in rows]).astype(np.int32),
      "n_node": np.stack([r.n_node for r in rows]).astype(np.int32),
      "n_edge": np.stack([r.n_edge for r in rows]).astype(np.int32),
      "targets": np.stack([r.globals["targets"] for r in rows]).astype(np.float32),
      "graph_mask": np.stack([r.globals["mask"] for r in rows]).astype(np.float32),
  }


def batch_to_graph(batch, row: int | None = None) -> jraph.GraphsTuple:
  """The GraphsTuple of one row of a batch (or, with row=None, of each row's arrays as given)."""
  take = (lambda x: x) if row is None else (lambda x: x[row])
  return jraph.GraphsTuple(
      nodes=take(batch["nodes"]), edges=take(batch["edges"]), senders=take(batch["senders"]),
      receivers=take(batch["receivers"]), n_node=take(batch["n_node"]), n_edge=take(batch["n_edge"]),
      globals=None)
