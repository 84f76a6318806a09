"""The claims of papers/universal_intelligence, as data for launch.reproduce (see core/claims.py).

Legg & Veness (2011, "An Approximation of the Universal Intelligence Measure", the figure of AIQ
against episode length) order their agents: random scores 0 (by construction of the antithetic
estimate), tabular Q(lambda) well above it, MC-AIXI-CTW above Q(lambda). Each ordering is read as
the lower end of the 95% CI of a paired difference (same programs for both agents) being above 0.
"""
from core.claims import Claim, Run

_EXP = "papers.universal_intelligence.experiment"
RUNS = {
    "smoke": Run(tier="smoke", commands=(
        (_EXP, "--out", "{workdir}", "--samples", "400", "--horizon", "50", "--agents", "random,q_learning",
         "--pool", "50000"),)),
    "cpu": Run(tier="cpu", commands=(
        (_EXP, "--out", "{workdir}", "--samples", "2000", "--horizon", "100", "--aixi_samples", "100",
         "--aixi_simulations", "50", "--aixi_depth", "12", "--aixi_lookahead", "3"),)),
}

_SRC = "Legg & Veness 2011, AIQ vs episode length figure"
_ZERO = dict(file="results.json", metric="random_ci_contains_zero", paper="0 (by construction)",
             source="Legg & Veness 2011, sec. on antithetic variates", target=1.0, fmt="{:.0f}")
_ABOVE = dict(file="results.json", target=0.0, fmt="{:.2f}")

CLAIMS = (
    Claim(run="smoke", what="random agent: 95% CI of its estimate contains 0 (1 = yes); 400 programs, 50 cycles",
          **_ZERO),
    Claim(run="smoke", metric="q_minus_random_ci_low", paper="Q(lambda) > random", source=_SRC,
          what="Q-learning minus random, lower 95% CI end (> 0: ordered); 400 programs, 50 cycles", **_ABOVE),
    Claim(run="cpu", what="random agent: 95% CI of its estimate contains 0 (1 = yes); 2,000 programs, 100 cycles",
          **_ZERO),
    Claim(run="cpu", metric="q_minus_random_ci_low", paper="Q(lambda) > random", source=_SRC,
          what="Q-learning minus random, lower 95% CI end; 2,000 programs, 100 cycles", **_ABOVE),
    Claim(run="cpu", metric="mcaixi_minus_random_ci_low", paper="MC-AIXI > random", source=_SRC,
          what="MC-AIXI-CTW minus random, lower 95% CI end; 100 programs, 100 cycles", **_ABOVE),
    Claim(run="cpu", metric="mcaixi_minus_q_ci_low", paper="MC-AIXI > Q(lambda)", source=_SRC,
          what="MC-AIXI-CTW (depth 12, 50 simulations, 3 cycles ahead) minus Q-learning, lower 95% CI end",
          **_ABOVE),
)
