"""The claims of papers/order_matters, as data for launch.reproduce (see core/claims.py).

Paper figures are Table 1 of Vinyals, Bengio, Kudlur (ICLR 2016), the columns with one glimpse
(out-of-sample share of sets sorted exactly, after 10,000 training iterations), and sec. 5.1.3
for the output order. Ours: eval `accuracy`, 4,096 held-out sets, greedy decoding.
"""
from core.claims import Claim, Run

_CPU = ("--config.total_steps=2000", "--config.eval_every=500")


def _p(steps: int) -> str:
  return f"--config.model.process_steps={steps}"


RUNS = {
    "sort5_smoke": Run("configs/order_matters.py:sort5", tier="smoke", overrides=_CPU),
    "sort10": Run("configs/order_matters.py:sort10", tier="cpu", overrides=_CPU),
    "sort10_p0": Run("configs/order_matters.py:sort10", tier="cpu", overrides=(*_CPU, _p(0))),
    "sort10_p1": Run("configs/order_matters.py:sort10", tier="cpu", overrides=(*_CPU, _p(1))),
    "sort10_ptrnet": Run("configs/order_matters.py:sort10_ptrnet", tier="cpu", overrides=_CPU),
    "sort5_random": Run("configs/order_matters.py:sort5_random", tier="cpu", overrides=_CPU),
    "sort15": Run("configs/order_matters.py:sort15", tier="cpu", overrides=_CPU),
    "sort10_p10": Run("configs/order_matters.py:sort10", tier="cpu", overrides=(*_CPU, _p(10))),
    "sort5_paper": Run("configs/order_matters.py:sort5_paper", tier="pod"),
    "sort10_paper": Run("configs/order_matters.py:sort10_paper", tier="pod"),
    "sort15_paper": Run("configs/order_matters.py:sort15_paper", tier="pod"),
}


def _acc(run, paper, target, what, source="Table 1, 1 glimpse", **kw):
  return Claim(run=run, metric="accuracy", paper=paper, source=source, target=target, fmt="{:.1%}",
               what=what, **kw)


CLAIMS = (
    _acc("sort5_smoke", "94%", 0.94, "N = 5, read-process-write, P = 5: after 2,000 steps"),
    _acc("sort10", "57%", 0.57, "N = 10, read-process-write, P = 5: after 2,000 steps"),
    _acc("sort15", "10%", 0.10, "N = 15, read-process-write, P = 10: after 2,000 steps"),
    _acc("sort10_p0", "30%", 0.30, "N = 10, P = 0 (write block alone): after 2,000 steps"),
    _acc("sort10_p1", "44%", 0.44, "N = 10, P = 1: after 2,000 steps"),
    _acc("sort10_p10", "50%", 0.50, "N = 10, P = 10: after 2,000 steps"),
    _acc("sort10_ptrnet", "28%", 0.28, "N = 10, Ptr-Net baseline (LSTM reads the input in order): "
         "after 2,000 steps"),
    Claim(run="sort10_ptrnet", metric="order_agreement", paper="order-dependent",
          source="sec. 4.1", target=1.0, better="lower", fmt="{:.1%}",
          what="same run: share of test sets answered alike when presented in another order"),
    Claim(run="sort10", metric="order_agreement", paper="invariant", source="sec. 4.2",
          target=1.0, tolerance=0.001, fmt="{:.2%}",
          what="read-process-write: share of test sets answered alike in another order (float "
               "rounding of the attention sums may flip a near-tie)"),
    _acc("sort5_random", "never reaches the fixed order's accuracy", 0.94, better="lower",
         source="sec. 5.1.3",
         what="N = 5, output as (index, rank) tuples in a random order per example: after 2,000 "
              "steps (compare the first row)"),
    _acc("sort5_paper", "94%", 0.94, "N = 5 at the paper's setting (256 units, 10,000 steps)"),
    _acc("sort10_paper", "57%", 0.57, "N = 10 at the paper's setting"),
    _acc("sort15_paper", "10%", 0.10, "N = 15 at the paper's setting"),
)
