"""The claims of papers/relation_networks, as data for launch.reproduce (see core/claims.py)."""
from core.claims import Claim, Run

RUNS = {
    "rn_smoke": Run("configs/relation_networks.py:rn", tier="smoke",
                    overrides=("--config.total_steps=1000", "--config.eval_every=500")),
    "rn": Run("configs/relation_networks.py:rn", tier="cpu"),
    "mlp": Run("configs/relation_networks.py:mlp", tier="cpu"),
    "rn_paper": Run("configs/relation_networks.py:rn_paper", tier="pod"),
    "mlp_paper": Run("configs/relation_networks.py:mlp_paper", tier="pod"),
}

# Held within 2 points of the paper's figure.
_RN = dict(metric="relational_accuracy", paper="above 94%", source="section 5.3", target=0.94, tolerance=0.02,
           fmt="{:.1%}")
_MLP = dict(metric="relational_accuracy", paper="63%", source="section 5.3", target=0.63, tolerance=0.02,
            fmt="{:.1%}")

CLAIMS = (
    Claim(run="rn_smoke", what="Sort-of-CLEVR, CNN+RN (CPU size, 32 x 32): relational accuracy after 1,000 steps",
          **_RN),
    Claim(run="rn", what="Sort-of-CLEVR, CNN+RN (CPU size, 32 x 32): relational accuracy after 8,000 steps",
          **_RN),
    Claim(run="rn", metric="non_relational_accuracy", paper="above 94%", source="section 5.3", target=0.94,
          fmt="{:.1%}", what="same run, non-relational accuracy"),
    Claim(run="mlp", what="Sort-of-CLEVR, CNN+MLP baseline (CPU size): relational accuracy", **_MLP),
    Claim(run="rn_paper", what="Sort-of-CLEVR, CNN+RN at the paper's size (75 x 75)", **_RN),
    Claim(run="rn_paper", metric="non_relational_accuracy", paper="above 94%", source="section 5.3",
          target=0.94, tolerance=0.02, fmt="{:.1%}", what="same run, non-relational accuracy"),
    Claim(run="mlp_paper", what="Sort-of-CLEVR, CNN+MLP at the paper's size", **_MLP),
)
