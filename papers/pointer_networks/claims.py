"""The claims of papers/pointer_networks, as data for launch.reproduce (see core/claims.py)."""
from core.claims import Claim, Run

CONFIG = "configs/pointer_networks.py"
RUNS = {
    "hull5": Run(f"{CONFIG}:hull5", tier="smoke"),
    "tsp5": Run(f"{CONFIG}:tsp5", tier="smoke"),
    "tsp10": Run(f"{CONFIG}:tsp10", tier="cpu"),
    "hull50": Run(f"{CONFIG}:hull50", tier="cpu"),
    "hull50_paper": Run(f"{CONFIG}:hull50_paper", tier="pod"),
    "tsp10_paper": Run(f"{CONFIG}:tsp10_paper", tier="pod"),
}

_PCT = "{:.1%}"
_LEN = "{:.3f}"


def _hull(run, steps, accuracy, area, source, note=""):
  return (
      Claim(run=run, metric="exact_accuracy", paper=accuracy, source=source,
            target=float(accuracy.rstrip("%")) / 100, fmt=_PCT,
            what=f"convex hull n={run[4:]}, exact-sequence accuracy (greedy), {steps} steps{note}"),
      Claim(run=run, metric="area_coverage", paper=area, source=source,
            target=float(area.rstrip("%")) / 100, fmt=_PCT, tolerance=0.001,
            what="same run, area of the predicted polygon / true hull (simple polygons only)"),
      Claim(run=run, metric="area_failure_rate", paper="not given", source=source, target=0.0,
            better="lower", tolerance=0.01, fmt=_PCT,
            what="same run, predictions that are not simple polygons"),
  )


def _tsp(run, steps, paper, optimum, size):
  return (
      Claim(run=run, metric="tour_length_beam", paper=paper, source="Table 2", target=float(paper),
            better="lower", tolerance=0.01, fmt=_LEN,
            what=f"TSP n={size}, mean tour length, beam 4 restricted to valid tours, {steps} steps"),
      Claim(run=run, metric="tour_length", paper=paper, source="Table 2", target=float(paper),
            better="lower", tolerance=0.01, fmt=_LEN,
            what="same run, greedy decoding without constraints (valid tours only)"),
      Claim(run=run, metric="invalid_tour_rate", paper="not given", source="Table 2", target=0.0,
            better="lower", fmt=_PCT, what="same run, greedy tours that are not permutations"),
      Claim(run=run, metric="optimal_tour_length", paper=optimum, source="Table 2", target=float(optimum),
            better="lower", tolerance=0.03, fmt=_LEN,
            what="the labels' mean tour length (Held-Karp optimum) on our 1,024 test examples"),
  )


CLAIMS = (
    *_hull("hull5", "2,000", "92.0%", "99.6%", "Table 1",
           note="; the paper's figure is its Ptr-Net trained on n=5-50"),
    *_tsp("tsp5", "3,000", "2.12", "2.12", 5),
    *_tsp("tsp10", "4,000", "2.88", "2.87", 10),
    *_hull("hull50", "2,000", "72.6%", "99.9%", "Table 1"),
    Claim(run="hull50_paper", metric="exact_accuracy", paper="72.6%", source="Table 1", target=0.726,
          fmt=_PCT, what="convex hull n=50 at the paper's scale (512 units, SGD 1.0, 1M examples)"),
    Claim(run="tsp10_paper", metric="tour_length_beam", paper="2.88", source="Table 2", target=2.88,
          better="lower", tolerance=0.01, fmt=_LEN, what="TSP n=10 at the paper's scale"),
)
