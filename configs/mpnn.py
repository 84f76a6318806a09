"""MPNN (Gilmer et al. 2017): enn-s2s on QM9, HOMO, LUMO, gap and U0 trained jointly.

Data (once): `pip install qm9pack && python -m papers.mpnn.data` (130,831 molecules, ~1 min).

Variants (after ':'):
  tiny   (default) d=16, H=16, T=2, M=2; 16 molecules a step in 8 rows; 100 steps; scores the
         first 64 test molecules (the 8-device smoke test of every config)
  cpu    d=32, H=16, T=3, M=3; 32 molecules a step in 8 rows; 2,000 steps (64,000 molecules,
         0.58 of an epoch of the 110,831 training molecules), Adam 1e-3 decayed linearly to 0; all 10,000 test
         molecules
  paper  d=200 (the paper's largest d), H=128, T=3, M=3 (inside the ranges of its random
         search, section 7: 3 <= T <= 8, 1 <= M <= 12); batch 20 molecules, Adam 1e-4 (the paper
         draws it from [1e-5, 5e-4]) decayed linearly (the paper holds it constant for 10-90% of
         training, then decays it to a factor in [0.01, 1]), 3 million steps (540 epochs);
         all 13 targets (the paper trains one model per target: --config.data.targets='("u0",)')

Command (2-core CPU):
  python -m launch.train --config configs/mpnn.py:cpu --workdir runs/mpnn/cpu
Expected result: see papers/mpnn/README.md (the generated table); the paper's enn-s2s reaches
error ratios 0.99 / 0.87 / 1.60 / 0.45 (HOMO / LUMO / gap / U0, Table 2) after 540 epochs.
"""
from configs.common import base_config

VARIANTS = ("tiny", "cpu", "paper")


def get_config(arg=None):
  variant = arg or "tiny"
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
  c = base_config()
  c.task = "papers.mpnn.task:QM9Task"
  c.seed = 0
  c.data.targets = ("homo", "lumo", "gap", "u0")
  c.data.eval_split = "test"
  c.data.train_molecules = 0          # 0: the whole training split
  c.optimizer.name = "adam"
  c.optimizer.schedule = "linear"

  if variant == "tiny":
    c.batch_size = 8                  # rows (padded graphs), the data-parallel axis
    c.data.molecules_per_step = 16
    c.data.row_nodes, c.data.row_edges, c.data.row_graphs = 64, 1280, 4
    c.data.eval_molecules = 64
    c.model.features, c.model.edge_hidden, c.model.steps, c.model.readout_steps = 16, 16, 2, 2
    c.total_steps = 100
    c.optimizer.learning_rate = 1e-3
    c.log_every, c.eval_every, c.checkpoint_every = 10, 50, 50
  elif variant == "cpu":
    c.batch_size = 8
    c.data.molecules_per_step = 32    # 4 molecules a row on average
    c.data.row_nodes, c.data.row_edges, c.data.row_graphs = 96, 1700, 6
    c.data.eval_molecules = 0         # all 10,000
    c.model.features, c.model.edge_hidden, c.model.steps, c.model.readout_steps = 32, 16, 3, 3
    c.total_steps = 2000
    c.optimizer.learning_rate = 1e-3
    c.log_every, c.eval_every, c.checkpoint_every = 100, 1000, 500
  else:
    c.data.targets = ("mu", "alpha", "homo", "lumo", "gap", "r2", "zpve", "u0", "u", "h", "g",
                      "cv", "omega")
    c.batch_size = 8
    c.data.molecules_per_step = 20    # the paper's batch of 20 molecules
    c.data.row_nodes, c.data.row_edges, c.data.row_graphs = 96, 1800, 6
    c.data.eval_molecules = 0
    c.model.features, c.model.edge_hidden, c.model.steps, c.model.readout_steps = 200, 128, 3, 3
    c.total_steps = 3_000_000
    c.optimizer.learning_rate = 1e-4
    c.log_every, c.eval_every, c.checkpoint_every = 1000, 50_000, 50_000
  return c
