"""The claims of papers/mpnn, as data for launch.reproduce (see core/claims.py).

The paper's figures are the error ratios (MAE / chemical accuracy) of enn-s2s, Gilmer et al.
2017, Table 2; chemical accuracy per target from its supplementary Table 5 (0.043 eV for HOMO,
LUMO, gap and U0). A ratio below 1 is chemical accuracy.
"""
from core.claims import Claim, Run

RUNS = {
    "smoke": Run("configs/mpnn.py:cpu", tier="smoke",
                 overrides=("--config.total_steps=300", "--config.eval_every=300",
                            "--config.data.eval_molecules=1000")),
    "cpu": Run("configs/mpnn.py:cpu", tier="cpu"),
    "paper": Run("configs/mpnn.py:paper", tier="pod"),
}

_PAPER = {"homo": "0.99", "lumo": "0.87", "gap": "1.60", "u0": "0.45"}
_NAMES = {"homo": "HOMO", "lumo": "LUMO", "gap": "gap", "u0": "U0"}


def _claims(run: str, label: str):
  return tuple(
      Claim(run=run, metric=f"ratio_{t}", paper=_PAPER[t], source="Table 2 (enn-s2s)",
            target=float(_PAPER[t]), better="lower", fmt="{:.2f}",
            what=f"QM9 {_NAMES[t]}: test MAE / chemical accuracy, {label}")
      for t in _PAPER)


CLAIMS = (
    _claims("smoke", "CPU model, 300 steps, 1,000 random test molecules")
    + _claims("cpu", "CPU model (d=32), 2,000 steps of 32 molecules")
    + _claims("paper", "paper scale (d=200), 3M steps of 20 molecules, all 13 targets jointly")
)
