"""The claims of papers/scaling_laws, as data for launch.reproduce (see core/claims.py).

A run is a sweep (launch.sweep) followed by its fit (papers.scaling_laws.analyze, which writes
fits.json into the sweep directory); the claims read the fitted exponents.
"""
from core.claims import Claim, Run


def _sweep(variant: str, only: str = "", holdout: int = 2) -> tuple:
  sweep = ("launch.sweep", "--config", f"configs/scaling_laws.py:{variant}", "--sweep_dir", "{workdir}")
  return (sweep + (("--only", only) if only else ()),
          ("papers.scaling_laws.analyze", "--sweep_dir", "{workdir}", "--holdout", str(holdout)))


SMALLEST_FIVE = "L1_d8,L1_d16,L2_d16,L2_d24,L2_d32"  # 888 to 25,472 parameters: minutes on a CPU


RUNS = {
    "smallest_five": Run(commands=_sweep("cpu", SMALLEST_FIVE, holdout=1), tier="smoke"),
    "cpu": Run(commands=_sweep("cpu"), tier="cpu"),
    "pod": Run(commands=_sweep("pod"), tier="pod"),
}

_ALPHA_N = dict(file="fits.json", metric="L(N).alpha_N", paper="0.076", source="eq. 1.1", target=0.076,
                tolerance=0.01, fmt="{:.3f}")

CLAIMS = (
    Claim(run="smallest_five", what="alpha_N of L(N), the 5 smallest models of the cpu sweep (888 to 25,472 parameters)",
          **_ALPHA_N),
    Claim(run="cpu", what="alpha_N of L(N), 8 models of 888 to 447,552 parameters, 400 steps each", **_ALPHA_N),
    Claim(run="cpu", file="fits.json", metric="L(C_min).alpha_C", paper="0.050", source="eq. 1.3",
          target=0.050, tolerance=0.01, fmt="{:.3f}", what="alpha_C of L(C_min), same sweep"),
    Claim(run="pod", what="alpha_N of L(N), 25 k to 151 M parameters (TPU slices)", **_ALPHA_N),
)
