"""QM9 (Ramakrishnan et al. 2014): 130,831 molecules, their geometries and 13 DFT targets.

Two sources behind one loader, `load_qm9()`:
- offline, the PyPI package `qm9pack` (`pip install qm9pack`, a 99 MB wheel of CSV files; we
  read its CSVs directly, its `get_data` needs setuptools' pkg_resources);
- `tfds.data_source("qm9")` for users with internet (or a prepared TFDS_DATA_DIR).
`python -m papers.mpnn.data` parses either once (~1 min) into `qm9.npz` under
core.datasets.data_root()/qm9; a loader that finds neither raises DataMissingError.

Targets are in the units of Gilmer et al. 2017 (appendix 10.2): HOMO, LUMO, gap, ZPVE and the
four energies in eV (QM9 stores Hartree), the energies as atomization energies (the molecule's
energy minus that of its free atoms, QM9's atomref table; the MAE is the same as on the total
energy, since the two differ by a function of the composition), omega the highest harmonic
frequency in cm^-1. The split is the paper's (section 7): 10,000 validation and 10,000 test
molecules drawn at random (seed 0), the rest for training; targets are normalised by the mean
and standard deviation of the training molecules.
"""
from __future__ import annotations

import importlib.util
import json
import os
import sys

import numpy as np

from core import datasets
from core.task import DataMissingError

INSTALL = "pip install qm9pack && python -m papers.mpnn.data"
HARTREE_EV = 27.211386245988
ELEMENTS = ("H", "C", "N", "O", "F")
ATOMIC_NUMBER = {"H": 1, "C": 6, "N": 7, "O": 8, "F": 9}
MAX_ATOMS = 29

# Target name -> chemical accuracy in the paper's units (Gilmer et al. 2017, supplementary
# Table 5, "Chemical Accuracy For Each Target", from Faber et al. 2017).
CHEMICAL_ACCURACY = {
    "mu": 0.1, "alpha": 0.1, "homo": 0.043, "lumo": 0.043, "gap": 0.043, "r2": 1.2,
    "zpve": 0.0012, "u0": 0.043, "u": 0.043, "h": 0.043, "g": 0.043, "cv": 0.050, "omega": 10.0,
}
TARGETS = tuple(CHEMICAL_ACCURACY)
UNITS = {"mu": "D", "alpha": "bohr^3", "r2": "bohr^2", "cv": "cal/mol K", "omega": "cm^-1"}

# qm9pack column -> (target, factor to the paper's unit)
_COLUMNS = {
    "Dipole_debye": ("mu", 1.0), "Polarizability_bohr3": ("alpha", 1.0),
    "HOMO_au": ("homo", HARTREE_EV), "LUMO_au": ("lumo", HARTREE_EV),
    "HOMO_LUMO_gap_au": ("gap", HARTREE_EV), "R2_bohr2": ("r2", 1.0),
    "ZPVE_au": ("zpve", HARTREE_EV), "InternalEnergy_0K_au": ("u0", HARTREE_EV),
    "InternalEnergy_298K_au": ("u", HARTREE_EV), "Enthalphy_298K_au": ("h", HARTREE_EV),
    "GibbsFreeEnergy_298K_au": ("g", HARTREE_EV), "Heatcapacity_Cv_cal_mol_K": ("cv", 1.0),
}
_TFDS_KEYS = {"mu": "mu", "alpha": "alpha", "homo": "homo", "lumo": "lumo", "gap": "gap",
              "r2": "r2", "zpve": "zpve", "u0": "U0", "u": "U", "h": "H", "g": "G", "cv": "Cv"}
# Energies of the free atoms in Hartree (QM9's atomref table, B3LYP/6-31G(2df,p)): U0, U, H, G.
ATOM_REFERENCE = {
    "H": (-0.500273, -0.498857, -0.497912, -0.510927),
    "C": (-37.846772, -37.845355, -37.844411, -37.861317),
    "N": (-54.583861, -54.582445, -54.581501, -54.598897),
    "O": (-75.064579, -75.063162, -75.062219, -75.079532),
    "F": (-99.718730, -99.717314, -99.716370, -99.733544),
}
ENERGIES = ("u0", "u", "h", "g")
SPLIT_SIZES = {"valid": 10_000, "test": 10_000}
SPLIT_SEED = 0


def cache_path() -> str:
  return os.path.join(datasets.data_root(), "qm9", "qm9.npz")


def _qm9pack_dir() -> str | None:
  spec = importlib.util.find_spec("qm9pack")
  if spec is None or not spec.submodule_search_locations:
    return None
  path = os.path.join(list(spec.submodule_search_locations)[0], "data")
  return path if os.path.exists(os.path.join(path, "qm9_part1.csv")) else None


def _pack(numbers: list[np.ndarray], positions: list[np.ndarray], raw: dict[str, np.ndarray]):
  """Per-molecule lists and raw targets (QM9 units) -> the cached arrays (paper units)."""
  counts = np.array([len(z) for z in numbers])
  targets = np.zeros((len(numbers), len(TARGETS)), np.float64)
  for name, values in raw.items():
    targets[:, TARGETS.index(name)] = values
  z_all = np.concatenate(numbers).astype(np.int8)
  # Atomization energies: subtract the free atoms' energies, per element count.
  molecule = np.repeat(np.arange(len(numbers)), counts)
  for k, name in enumerate(ENERGIES):
    reference = np.zeros(10)
    for element, energies in ATOM_REFERENCE.items():
      reference[ATOMIC_NUMBER[element]] = energies[k] * HARTREE_EV
    targets[:, TARGETS.index(name)] -= np.bincount(molecule, reference[z_all], len(numbers))
  return {"atomic_numbers": z_all, "positions": np.concatenate(positions).astype(np.float32),
          "offsets": np.concatenate([[0], np.cumsum(counts)]).astype(np.int64), "targets": targets}


def parse_numbers(text: str) -> np.ndarray:
  """The numbers of a nested list as qm9pack writes it ("[[0.5,0.,1.],...]": not always JSON,
  and QM9's own files write 1.2*^-5 for 1.2e-5)."""
  return np.array(text.replace("*^", "e").replace("[", " ").replace("]", " ").replace(",", " ")
                  .split(), np.float64)


def read_qm9pack(directory: str) -> dict[str, np.ndarray]:
  import pandas as pd  # pylint: disable=g-import-not-at-top  (a dependency of qm9pack)
  frames = [pd.read_csv(os.path.join(directory, f"qm9_part{k}.csv")) for k in (1, 2, 3)]
  df = pd.concat(frames, ignore_index=True).sort_values("Index", kind="stable")
  numbers = [np.array([ATOMIC_NUMBER[e] for e in json.loads(s.replace("'", '"'))])
             for s in df["Elements"]]
  positions = [parse_numbers(s).reshape(-1, 3) for s in df["XYZ_Ang"]]
  raw = {name: df[column].to_numpy(np.float64) * factor
         for column, (name, factor) in _COLUMNS.items()}
  raw["omega"] = np.array([parse_numbers(s).max() for s in df["Harmonic_Freq_cmi"]])
  return _pack(numbers, positions, raw)


def read_tfds(data_dir: str | None = None) -> dict[str, np.ndarray]:
  """All 130,831 molecules of TFDS's `qm9` (its `train` split holds them all)."""
  import tensorflow_datasets as tfds  # pylint: disable=g-import-not-at-top
  source = tfds.data_source("qm9", split="train", data_dir=data_dir)
  numbers, positions, raw = [], [], {name: [] for name in list(_TFDS_KEYS) + ["omega"]}
  for example in source:
    n = int(example["num_atoms"])
    numbers.append(np.asarray(example["charges"][:n]))
    positions.append(np.asarray(example["positions"][:n], np.float64))
    for name, key in _TFDS_KEYS.items():
      factor = HARTREE_EV if name in ("homo", "lumo", "gap", "zpve") + ENERGIES else 1.0
      raw[name].append(float(example[key]) * factor)
    raw["omega"].append(float(np.max(example["frequencies"])))
  return _pack(numbers, positions, {k: np.array(v) for k, v in raw.items()})


def prepare(source: str = "auto") -> str:
  """Parses QM9 once into the cache (qm9pack if installed, else TFDS); returns the path."""
  path = cache_path()
  if os.path.exists(path):
    return path
  directory = _qm9pack_dir()
  if source == "qm9pack" or (source == "auto" and directory):
    if directory is None:
      raise DataMissingError(f"qm9pack is not installed: `{INSTALL}`")
    arrays = read_qm9pack(directory)
  else:
    try:
      arrays = read_tfds()
    except Exception as e:  # pylint: disable=broad-except
      raise DataMissingError(f"QM9 is neither in qm9pack nor readable through TFDS ({e}); "
                             f"install it with `{INSTALL}`") from None
  os.makedirs(os.path.dirname(path), exist_ok=True)
  np.savez(path + ".tmp.npz", **arrays)
  os.replace(path + ".tmp.npz", path)
  return path


class QM9:
  """The cached molecules: `molecule(i)` -> (atomic numbers, positions in Angstrom), targets."""

  def __init__(self, arrays: dict[str, np.ndarray]):
    self.atomic_numbers = arrays["atomic_numbers"]
    self.positions = arrays["positions"]
    self.offsets = arrays["offsets"]
    self.targets = arrays["targets"]

  def __len__(self) -> int:
    return len(self.offsets) - 1

  def num_atoms(self, indices=None) -> np.ndarray:
    counts = np.diff(self.offsets)
    return counts if indices is None else counts[indices]

  def molecule(self, i: int) -> tuple[np.ndarray, np.ndarray]:
    a, b = self.offsets[i], self.offsets[i + 1]
    return self.atomic_numbers[a:b], self.positions[a:b]


_LOADED: dict[str, QM9] = {}


def load_qm9() -> QM9:
  path = cache_path()
  if path not in _LOADED:
    if not os.path.exists(path):
      raise DataMissingError(f"QM9 is not prepared at {path}; run `{INSTALL}` "
                             f"(or set READING_LIST_DATA)")
    with np.load(path) as f:
      _LOADED[path] = QM9({k: f[k] for k in f.files})
  return _LOADED[path]


def split_indices(num_molecules: int, seed: int = SPLIT_SEED) -> dict[str, np.ndarray]:
  """The paper's split: 10,000 validation, 10,000 test, the rest train, at random (sorted)."""
  order = np.random.default_rng(seed).permutation(num_molecules)
  valid, test = SPLIT_SIZES["valid"], SPLIT_SIZES["test"]
  if num_molecules <= valid + test:
    raise ValueError(f"QM9 has {num_molecules} molecules, too few for the paper's split")
  return {"valid": np.sort(order[:valid]), "test": np.sort(order[valid:valid + test]),
          "train": np.sort(order[valid + test:])}


def normalisation(targets: np.ndarray, train: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
  """Mean and standard deviation of each target over the training molecules."""
  return targets[train].mean(0), targets[train].std(0)


if __name__ == "__main__":
  print(prepare(sys.argv[1] if len(sys.argv) > 1 else "auto"))
