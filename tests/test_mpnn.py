"""MPNN (Gilmer et al. 2017): edge network and set2set against numpy, invariances, QM9 loading."""
import csv
import os

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from configs.mpnn import get_config
from core.task import DataMissingError
from papers.mpnn import data as qm9
from papers.mpnn import graphs
from papers.mpnn.model import MPNN, EdgeNetwork, Set2Set
from papers.mpnn.task import QM9Task
from tests.device_equality import train_on_one_and_on_eight


@pytest.fixture(scope="module")
def molecules():
  try:
    return qm9.load_qm9()
  except DataMissingError as e:
    pytest.skip(str(e))


def sigmoid(x):
  return 1 / (1 + np.exp(-x))


def random_molecule(rng, n):
  """A made-up molecule: random elements (a C first) at random positions, 13 random targets."""
  z = np.concatenate([[6], rng.choice([1, 6, 7, 8, 9], n - 1)])
  return z, rng.normal(scale=1.5, size=(n, 3)).astype(np.float32), rng.normal(size=13)


def as_graph(row):
  return jax.tree.map(jnp.asarray, row._replace(globals=None))


def test_edge_network_messages_match_a_numpy_loop_over_edges():
  rng = np.random.default_rng(0)
  n, d, hidden = 5, 4, 3
  senders = np.array([0, 1, 2, 3, 4, 0, 2], np.int32)
  receivers = np.array([1, 0, 1, 1, 2, 4, 3], np.int32)
  h = rng.normal(size=(n, d)).astype(np.float32)
  edges = rng.normal(size=(len(senders), 2)).astype(np.float32)
  net = EdgeNetwork(d, hidden)

  def messages(module, h, edges):
    return module(h, module.edge_codes(edges), senders, receivers)
  params = nn.meta.unbox(net.init(jax.random.key(1), h, edges, method=messages))["params"]
  params = jax.tree.map(lambda x: x + 0.1 * rng.normal(size=x.shape).astype(np.float32), params)  # nonzero biases
  out = net.apply({"params": params}, h, edges, method=messages)

  w1, b1 = np.asarray(params["edge_hidden"]["kernel"]), np.asarray(params["edge_hidden"]["bias"])
  kernel, bias = np.asarray(params["matrix_kernel"]), np.asarray(params["matrix_bias"])
  expected = np.zeros((n, d))
  for e, (w, v) in enumerate(zip(senders, receivers)):
    z = np.maximum(edges[e] @ w1 + b1, 0)
    a = np.tensordot(z, kernel, axes=1) + bias          # A(e_vw), d x d
    expected[v] += a @ h[w]
  np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_set2set_matches_a_numpy_lstm_with_attention_per_graph():
  rng = np.random.default_rng(2)
  d, steps = 3, 2
  memories = rng.normal(size=(6, d)).astype(np.float32)
  node_graph = np.array([0, 0, 0, 1, 1, 2])        # three graphs of 3, 2, 1 nodes
  net = Set2Set(steps)
  params = nn.meta.unbox(net.init(jax.random.key(0), memories, node_graph, 3))["params"]["lstm"]
  params = jax.tree.map(lambda x: x + 0.1 * rng.normal(size=x.shape).astype(np.float32), params)
  out = net.apply({"params": {"lstm": params}}, memories, node_graph, 3)

  p = jax.tree.map(np.asarray, params)
  gate = lambda k, x, h: x @ p["i" + k]["kernel"] + h @ p["h" + k]["kernel"] + p["h" + k]["bias"]
  for g in range(3):
    m = memories[node_graph == g]
    c, h, q_star = np.zeros(d), np.zeros(d), np.zeros(2 * d)
    for _ in range(steps):
      c = sigmoid(gate("f", q_star, h)) * c + sigmoid(gate("i", q_star, h)) * np.tanh(gate("g", q_star, h))
      h = sigmoid(gate("o", q_star, h)) * np.tanh(c)
      scores = m @ h
      attention = np.exp(scores - scores.max()) / np.exp(scores - scores.max()).sum()
      q_star = np.concatenate([h, attention @ m])
    np.testing.assert_allclose(out[g], q_star, rtol=1e-5, atol=1e-6)


@pytest.fixture(scope="module")
def tiny_mpnn():
  model = MPNN(num_targets=13, features=8, edge_hidden=8, steps=2, readout_steps=2)
  rng = np.random.default_rng(3)
  molecule = graphs.molecule_graph(*random_molecule(rng, 6))
  row = graphs.pad_row([molecule], 8, 40, 2, 13)
  params = nn.meta.unbox(model.init(jax.random.key(0), as_graph(row)))
  return model, jax.jit(model.apply), params


def test_prediction_is_invariant_to_the_order_of_atoms(tiny_mpnn):
  model, apply, params = tiny_mpnn
  rng = np.random.default_rng(4)
  z, pos, y = random_molecule(rng, 7)
  order = rng.permutation(7)
  rows = [graphs.pad_row([graphs.molecule_graph(z[o], pos[o], y)], 10, 60, 2, 13)
          for o in (np.arange(7), order)]
  a, b = (apply(params, as_graph(r))[0] for r in rows)
  np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
  # A different molecule gives a different prediction (the test can fail).
  other = graphs.pad_row([graphs.molecule_graph(z, pos * 1.3, y)], 10, 60, 2, 13)
  assert not np.allclose(a, apply(params, as_graph(other))[0], atol=1e-4)


def test_padding_and_neighbours_in_a_row_do_not_change_a_prediction(tiny_mpnn):
  model, apply, params = tiny_mpnn
  rng = np.random.default_rng(5)
  a, b, c = (graphs.molecule_graph(*random_molecule(rng, n)) for n in (5, 7, 3))
  alone = apply(params, as_graph(graphs.pad_row([a], 6, 20, 2, 13)))
  packed = apply(params, as_graph(graphs.pad_row([b, a, c], 40, 200, 7, 13)))
  np.testing.assert_allclose(packed[1], alone[0], rtol=1e-5, atol=1e-5)
  assert packed.shape == (7, 13)


def test_qm9_units_split_and_normalisation(molecules):
  assert len(molecules) == 130_831 and molecules.num_atoms().max() == qm9.MAX_ATOMS
  # Methane (QM9 index 1), read here straight from qm9pack's CSV, in Hartree.
  path = os.path.join(qm9._qm9pack_dir(), "qm9_part1.csv")  # pylint: disable=protected-access
  with open(path, newline="") as f:
    row = next(csv.DictReader(f))
  assert row["SMILES"] == "C"
  expected = {"homo": float(row["HOMO_au"]) * qm9.HARTREE_EV, "gap": float(row["HOMO_LUMO_gap_au"]) * 27.211386,
              "u0": (float(row["InternalEnergy_0K_au"]) - (-37.846772 + 4 * -0.500273)) * 27.211386,
              "alpha": float(row["Polarizability_bohr3"])}
  for name, value in expected.items():
    np.testing.assert_allclose(molecules.targets[0, qm9.TARGETS.index(name)], value, rtol=1e-6)
  np.testing.assert_array_equal(molecules.molecule(0)[0], [6, 1, 1, 1, 1])

  split = qm9.split_indices(len(molecules))
  assert {k: len(v) for k, v in split.items()} == {"valid": 10_000, "test": 10_000, "train": 110_831}
  union = np.concatenate(list(split.values()))
  assert len(np.unique(union)) == len(molecules)
  np.testing.assert_array_equal(split["test"], qm9.split_indices(len(molecules))["test"])
  # Normalised training targets have mean 0 and deviation 1; a batch holds them.
  task = QM9Task(get_config("tiny"))
  _, _, mean, std = task._data  # pylint: disable=protected-access
  train_targets = molecules.targets[split["train"]][:, task.columns]
  np.testing.assert_allclose(((train_targets - mean) / std).mean(0), 0, atol=1e-4)
  np.testing.assert_allclose(((train_targets - mean) / std).std(0), 1, atol=1e-4)
  batch = task.train_batch(0)
  indices = task.step_molecules(0)
  got = np.sort(batch["targets"][batch["graph_mask"] > 0][:, 0])
  want = np.sort((molecules.targets[indices, task.columns[0]] - mean[0]) / std[0])
  np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
  assert set(indices) <= set(split["train"])


def test_batches_have_one_shape_and_no_molecule_is_dropped(molecules):
  task = QM9Task(get_config("tiny"))
  want = {k: (s.shape, s.dtype) for k, s in task.batch_spec().items()}
  shapes = {tuple((k, v.shape, v.dtype) for k, v in sorted(b.items()))
            for b in [task.train_batch(s) for s in range(3)] + list(task.eval_batches())}
  assert len(shapes) == 1 and dict((k, (s, t)) for k, s, t in shapes.pop()) == want
  # Evaluation scores every held-out molecule once.
  scored = np.concatenate([chunk for chunk, _ in task.eval_chunks()])
  np.testing.assert_array_equal(np.sort(scored), task.eval_indices())
  assert sum(int(b["graph_mask"].sum()) for b in task.eval_batches()) == len(task.eval_indices())
  # Over 1,000 steps of the cpu config (32,000 molecules), every molecule finds a row.
  config = get_config("cpu")
  d = config.data
  split = qm9.split_indices(len(molecules))["train"]
  atoms = molecules.num_atoms(np.random.default_rng(0).permutation(split))
  m = d.molecules_per_step
  dropped = sum(int((graphs.assign_rows(atoms[k * m:(k + 1) * m], config.batch_size, d.row_nodes,
                                        d.row_edges, d.row_graphs) < 0).sum()) for k in range(1000))
  assert dropped == 0
  # A budget that is too small does drop: the check can fail.
  assert (graphs.assign_rows(atoms[:m], config.batch_size, 30, 400, 3) < 0).any()


def test_training_on_8_devices_equals_one_device(molecules):
  assert jax.device_count() >= 8

  def config_for(mesh):
    config = get_config("tiny")
    config.model.steps = config.model.readout_steps = 1   # one of each: a quicker compile
    config.mesh.update(mesh)
    return config

  (init_1, state_1, losses_1), (init_8, state_8, losses_8) = train_on_one_and_on_eight(
      config_for, dict(data=8))
  chex.assert_trees_all_close(init_1.params, init_8.params)
  np.testing.assert_allclose(losses_1, losses_8, rtol=1e-5)
  assert not np.allclose(state_1.params["message"]["matrix_kernel"], init_1.params["message"]["matrix_kernel"])
  chex.assert_trees_all_close(state_1.params, state_8.params, rtol=1e-4, atol=1e-5)


def test_the_tfds_reader_gives_the_same_molecules_as_qm9pack(molecules):
  """Two molecules of qm9pack's CSV, laid out as TFDS's `qm9` features (Hartree, padded to 29
  atoms), read by `read_tfds` through tfds.data_source under tfds.testing.mock_data."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  path = os.path.join(qm9._qm9pack_dir(), "qm9_part1.csv")  # pylint: disable=protected-access
  with open(path, newline="") as f:
    reader = csv.DictReader(f)
    rows = [next(reader), next(reader)]
  examples = []
  for row in rows:
    z = [qm9.ATOMIC_NUMBER[e] for e in row["Elements"].strip("[]").replace("'", "").split(",")]
    positions = qm9.parse_numbers(row["XYZ_Ang"]).reshape(-1, 3)
    example = {"num_atoms": len(z), "charges": np.pad(z, (0, 29 - len(z))),
               "positions": np.pad(positions, ((0, 29 - len(z)), (0, 0))).astype(np.float32),
               "frequencies": qm9.parse_numbers(row["Harmonic_Freq_cmi"])}
    columns = {"mu": "Dipole_debye", "alpha": "Polarizability_bohr3", "homo": "HOMO_au",
               "lumo": "LUMO_au", "gap": "HOMO_LUMO_gap_au", "r2": "R2_bohr2", "zpve": "ZPVE_au",
               "U0": "InternalEnergy_0K_au", "U": "InternalEnergy_298K_au", "H": "Enthalphy_298K_au",
               "G": "GibbsFreeEnergy_298K_au", "Cv": "Heatcapacity_Cv_cal_mol_K"}
    example.update({key: np.float64(row[column]) for key, column in columns.items()})
    examples.append(example)
  with tfds.testing.mock_data(as_data_source_fn=lambda self, split, **kwargs: examples):
    arrays = qm9.read_tfds()
  np.testing.assert_allclose(arrays["targets"], molecules.targets[:2], rtol=1e-6)
  np.testing.assert_array_equal(arrays["offsets"], molecules.offsets[:3])
  np.testing.assert_allclose(arrays["positions"], molecules.positions[:molecules.offsets[2]])
