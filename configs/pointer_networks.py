"""Pointer Networks (Vinyals, Fortunato & Jaitly 2015): convex hull, Delaunay, planar TSP.

Variants (after ':'):
  hull5       (default, tiny) convex hull of 5 points, 64 hidden units, batch 32
  hull10      convex hull of 10 points
  hull50      convex hull of 50 points (the paper's Table 1 headline: 72.6% exact, 99.9% area)
  hull_mixed  convex hull of 5 to 50 points (padded, masked), tested on the same range
  delaunay5   Delaunay triangulation of 5 points
  tsp5, tsp10 planar TSP with exact Held-Karp labels (the paper's Table 2: 2.12 / 2.88)
  tsp20       planar TSP, labels from 2-opt with 8 random restarts (a heuristic)
  <any>_paper the paper's training (section 4.1): one LSTM layer of 512 units (the paper
              says 256 or 512, not which per problem), SGD lr 1.0, batch 128, uniform init
              in [-0.08, 0.08], gradient-norm clipping 2.0, a fixed set of 1M examples;
              the number of steps is not in the paper: 200,000 here (25.6 passes)

CPU scale (not the paper's): 128 hidden units, Adam 3e-3 with the same clipping, batch 128,
a fixed set of 100,000 examples (1M for the hull), tested on 1,024 held-out examples; the
default hull5 is smaller still (64 units, batch 32, Adam 1e-2, 2,000 steps).

Commands (2-core CPU shared with other jobs, load average about 20, one run at a time):
  python -m launch.train --config configs/pointer_networks.py:tsp10 --workdir runs/pointer_networks/tsp10
  python -m launch.train --config configs/pointer_networks.py:hull50 --workdir runs/pointer_networks/hull50
Expected results: TSP n=10 after 4,000 steps (19 min): mean tour 2.945 with the valid-tour
beam, optimum 2.863 on the same 1,024 test instances (the paper: 2.88 vs 2.87); hull n=50
after 2,000 steps (41 min): 9.0% exact, 99.1% area over the 79.5% of outputs that are simple
polygons (the paper: 72.6%, 99.9%). See papers/pointer_networks/README.md.
"""
from configs.common import base_config

PROBLEMS = {  # variant -> (problem, min points, max points, longest label or 0 = the bound)
    "hull5": ("hull", 5, 5, 0), "hull10": ("hull", 10, 10, 0),
    # 50 uniform points have ~10 hull vertices; 27 or more is > 10 standard deviations away.
    "hull50": ("hull", 50, 50, 28), "hull_mixed": ("hull", 5, 50, 28),
    "delaunay5": ("delaunay", 5, 5, 0),
    "tsp5": ("tsp", 5, 5, 0), "tsp10": ("tsp", 10, 10, 0), "tsp20": ("tsp", 20, 20, 0),
}
VARIANTS = ("hull5", "hull10", "hull50", "hull_mixed", "delaunay5", "tsp5", "tsp10", "tsp20",
            "hull5_paper", "hull10_paper", "hull50_paper", "hull_mixed_paper", "delaunay5_paper",
            "tsp5_paper", "tsp10_paper", "tsp20_paper")
assert set(VARIANTS) == set(PROBLEMS) | {f"{v}_paper" for v in PROBLEMS}


def get_config(arg=None):
  variant = arg or "hull5"
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
  problem_name = variant.removesuffix("_paper")
  c = base_config()
  c.task = "papers.pointer_networks.task:PointerTask"
  c.seed = 0
  problem, c.data.min_points, c.data.max_points, c.data.max_output_len = PROBLEMS[problem_name]
  c.data.problem = problem
  c.data.train_examples = 1_000_000 if problem == "hull" else 100_000
  c.data.eval_examples = 1024
  c.data.eval_batch_size = 256
  c.data.beam_size = 4             # TSP: beam search restricted to valid tours (0 = off)

  c.model.hidden_size = 128
  c.model.attention_size = 0       # 0 = hidden_size
  c.model.init_scale = 0.08        # the paper's uniform init

  c.batch_size = 128
  c.total_steps = 10_000
  c.log_every = 100
  c.eval_every = 2500
  c.checkpoint_every = 2500
  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 3e-3
  c.optimizer.clip_norm = 2.0

  # CPU-tier lengths (launch.reproduce runs these, one at a time, in about 40 minutes or less).
  c.total_steps = {"hull10": 3000, "hull50": 2000, "tsp5": 3000, "tsp10": 4000}.get(variant, 10_000)
  c.eval_every = c.checkpoint_every = c.total_steps // 2

  if variant == "hull5":           # the default: tiny, so that every check runs it quickly
    c.model.hidden_size = 64
    c.batch_size = 32
    c.data.eval_examples = 256
    c.data.eval_batch_size = 128
    c.total_steps = 2000
    c.optimizer.learning_rate = 1e-2  # small model, few steps: a larger step leaves the plateau sooner
    c.eval_every = c.checkpoint_every = 1000

  if variant.endswith("_paper"):
    c.model.hidden_size = 512
    c.batch_size = 128
    c.data.train_examples = 1_000_000
    c.data.eval_examples = 10_240
    c.data.eval_batch_size = 1024
    c.data.beam_size = 10
    c.optimizer.name = "sgd"
    c.optimizer.learning_rate = 1.0
    c.optimizer.clip_norm = 2.0
    c.total_steps = 200_000
    c.eval_every = c.checkpoint_every = 10_000
  return c
