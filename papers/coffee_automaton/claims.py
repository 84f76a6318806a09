"""The claims of papers/coffee_automaton, as data for launch.reproduce (see core/claims.py).

Each run is one `papers.coffee_automaton.experiment`; the claims read the top-level figures of
its results.json (the interacting model with the adjusted coarse-graining at the largest N,
unless named otherwise). How the paper's words are read as numbers:
- "entropy increases monotonically": no measured entropy sits more than 2% below the highest
  value measured before it (gzip sizes are noisy by a few bytes).
- "complexity increases at first": its peak is at least twice the initial state's size.
- "... then decreases": it falls back by at least 80% of what it rose (1.0 = back to the start).
- "a maximum comparable to the horizontal dimension": the rise of the peak grows like N^a, a near 1.
- "never becomes large when the particles are non-interacting": the non-interacting model's
  rise is under half the interacting model's, with the adjusted coarse-graining.
- The border artefact (the adjusted coarse-graining): the naive 3-bucket coarse-graining charges the non-interacting
  model at least twice the complexity the adjusted one does.
Two coarse-grainings of the same runs: g ~ N/8 (the same picture at every N) and a fixed g = 9.
"""
from core.claims import Claim, Run

_EXPERIMENT = "papers.coffee_automaton.experiment"
CPU_SIZES = "32,64,128,256"

RUNS = {
    "smoke": Run(tier="smoke", commands=(
        (_EXPERIMENT, "--out", "{workdir}", "--sizes", "32,64,128", "--points", "30"),)),
    "scale_free_grain": Run(tier="cpu", commands=(
        (_EXPERIMENT, "--out", "{workdir}", "--sizes", CPU_SIZES, "--points", "60"),)),
    "fixed_grain": Run(tier="cpu", commands=(
        (_EXPERIMENT, "--out", "{workdir}", "--sizes", CPU_SIZES, "--points", "60", "--grain", "9"),)),
}

_FILE = dict(file="results.json")


def _entropy(run: str, sizes: str) -> Claim:
  return Claim(run=run, metric="entropy_max_drop_frac", paper="increases monotonically",
               source="abstract; entropy plots", target=0.02, better="lower", fmt="{:.3f}",
               what=f"entropy (gzip of the fine-grained state), N={sizes.split(',')[-1]}, both models: "
                    "largest drop below the running maximum, fraction of the maximum", **_FILE)


def _complexity(run: str, grain: str) -> tuple:
  n = CPU_SIZES.split(",")[-1]
  return (
      _entropy(run, CPU_SIZES),
      Claim(run=run, metric="peak_over_initial", paper="rises from a simple start",
            source="abstract; complexity plots", target=2.0, fmt="{:.2f}x",
            what=f"interacting, N={n}, {grain}: peak / initial apparent complexity", **_FILE),
      Claim(run=run, metric="fall_over_rise", paper="then falls as equilibrium nears",
            source="abstract; complexity plots", target=1.0, tolerance=0.2, fmt="{:.2f}",
            what=f"interacting, N={n}, {grain}: (peak - end) / (peak - initial)", **_FILE),
      Claim(run=run, metric="peak_exponent", paper="maximum ~ N (the cup's width)",
            source="abstract; scaling with N", target=1.0, tolerance=0.25, fmt="{:.2f}",
            what=f"interacting, {grain}: a in (peak - initial) ~ N^a over N={CPU_SIZES}", **_FILE),
      Claim(run=run, metric="noninteracting_rise_ratio", paper="non-interacting: never large",
            source="abstract; the non-interacting analysis", target=0.5, better="lower", fmt="{:.2f}",
            what=f"N={n}, {grain}: complexity rise, non-interacting / interacting", **_FILE),
      Claim(run=run, metric="noninteracting_naive_over_adjusted_rise",
            paper="border pixels inflate the naive estimate", source="adjusted coarse-graining",
            target=2.0, fmt="{:.1f}x",
            what=f"non-interacting, N={n}, {grain}: complexity rise, naive 3 buckets / adjusted", **_FILE),
  )


CLAIMS = (_entropy("smoke", "32,64,128"),) + _complexity("scale_free_grain", "g ~ N/8") + _complexity(
    "fixed_grain", "g = 9")
