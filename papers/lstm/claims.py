"""The claims of papers/lstm, as data for launch.reproduce (see core/claims.py).

Adding problem: "solved" is read as a held-out MSE under 0.01 (the constant answer 1 costs
1/6 ~ 0.167); "fails" as an MSE still above 0.1 after the run. Copy memory: beating the
memoryless baseline 10 ln 8 / (T + 20) per step. The speed claims are this package's own target
(>= 1.0x torch.nn.LSTM's training tokens/s), not a paper's: in wall-clock time, and per CPU
second (the work done, whatever share of a busy machine each framework got).
"""
import math

from core.claims import Claim, Run

CELLS = ("lstm", "peephole", "cifg", "gru", "rnn")
LAGS = (50, 100, 200)
COPY_LAG = 50

RUNS = {f"adding_{cell}_T{lag}": Run(f"configs/lstm.py:adding_{cell}", tier="cpu",
                                     overrides=(f"--config.data.lag={lag}",))
        for lag in LAGS for cell in CELLS}
RUNS.update({f"copy_{cell}_T{COPY_LAG}": Run(f"configs/lstm.py:copy_{cell}", tier="cpu",
                                             overrides=(f"--config.data.lag={COPY_LAG}",))
             for cell in ("lstm", "gru")})
RUNS["benchmark"] = Run(tier="cpu", commands=(
    ("papers.lstm.benchmark", "--single_thread", "--out", "{workdir}/benchmark.json"),))

_SOLVED = dict(metric="mse", target=0.01, better="lower", fmt="{:.4f}")
_PAPER = {
    "lstm": ("solved, MSE near 0", "Le et al. 2015 Fig. 2, T=150, 200; Arjovsky et al. 2016 Fig. 2, T=100-750"),
    "peephole": ("like the LSTM", "Greff et al. 2017: no variant better than the vanilla LSTM"),
    "cifg": ("like the LSTM", "Greff et al. 2017: coupling the gates does not hurt"),
    "gru": ("like the LSTM", "Chung et al. 2014; Jozefowicz et al. 2015 (other tasks)"),
}
_NAMES = {"lstm": "LSTM", "peephole": "peephole LSTM", "cifg": "CIFG LSTM", "gru": "GRU",
          "rnn": "tanh RNN"}
COPY_BASELINE = 10 * math.log(8) / (COPY_LAG + 20)  # the memoryless cross entropy per step


def _adding(cell: str, lag: int) -> Claim:
  what = f"adding problem, T={lag}, {_NAMES[cell]}: test MSE after 2,000 steps x 64"
  if cell == "rnn" and lag >= 100:
    return Claim(run=f"adding_{cell}_T{lag}", metric="mse", paper="fails, stays at the 0.167 baseline",
                 source="Le et al. 2015 Fig. 2 (T >= 150); Hochreiter & Schmidhuber 1997 sec. 3",
                 target=0.1, better="higher", fmt="{:.4f}", what=what)
  if cell == "rnn":
    return Claim(run=f"adding_{cell}_T{lag}", paper="not reported at T=50", source="-", what=what,
                 **_SOLVED)
  paper, source = _PAPER[cell]
  return Claim(run=f"adding_{cell}_T{lag}", paper=paper, source=source, what=what, **_SOLVED)


CLAIMS = tuple(_adding(cell, lag) for lag in LAGS for cell in CELLS) + tuple(
    Claim(run=f"copy_{cell}_T{COPY_LAG}", metric="loss", target=COPY_BASELINE, better="lower",
          paper=f"memoryless baseline {COPY_BASELINE:.3f}; the LSTM does not beat it at T >= 100",
          source="Arjovsky et al. 2016 Fig. 1 (T=100-500)", fmt="{:.4f}",
          what=f"copy memory, T={COPY_LAG}, {_NAMES[cell]}: test cross entropy per step after 2,000 steps x 64")
    for cell in ("lstm", "gru")) + (
    Claim(run="benchmark", file="benchmark.json", metric="ratio", paper="(target of this item)",
          source="torch.nn.LSTM, same machine", target=1.0, fmt="{:.2f}x",
          what="2 x 650 LSTM LM training, tokens/s: JAX / torch.nn.LSTM (CPU, one thread each)"),
    Claim(run="benchmark", file="benchmark.json", metric="cpu_ratio", paper="(target of this item)",
          source="torch.nn.LSTM, same machine", target=1.0, fmt="{:.2f}x",
          what="the same, tokens per CPU second (the work, whatever share of a busy CPU each got)"),
)
