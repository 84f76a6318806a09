"""The claims of papers/mdl, as data for launch.reproduce (see core/claims.py).

One command (`python -m papers.mdl.experiment`) answers them all; each claim reads one figure
of its results.json. The tutorial's model-selection examples are judged by whether every code
finds the known order / degree of generated data; the Shakespeare rows by whether the chosen
order grows with the amount of text (the tutorial's point that MDL picks richer models only as
the data pay for them).
"""
import math

from core.claims import Claim, Run

RUNS = {
    "quick": Run(tier="smoke", commands=(("papers.mdl.experiment", "--quick", "--out", "{workdir}"),)),
    "full": Run(tier="cpu", commands=(("papers.mdl.experiment", "--out", "{workdir}"),)),
}
_T = "Grünwald 2005"
_FILE = "results.json"


def _claims(run: str, label: str) -> tuple:
  return (
      Claim(run=run, file=_FILE, metric="nml_check.max_relative_error", paper="exact (Shtarkov sum)",
            source="Kontkanen & Myllymäki 2007", target=1e-9, better="lower", fmt="{:.1e}",
            what=f"{label}multinomial NML complexity, recurrence vs all K^n sequences (K<=5, n<=6): max relative error"),
      Claim(run=run, file=_FILE, metric="nml_check.kt_prequential_minus_bayes_bits", paper="equal",
            source=f"{_T}, prequential codes", target=1e-6, better="lower", fmt="{:.1e}",
            what=f"{label}KT prequential plug-in code vs Beta(1/2,1/2) Bayes mixture, 200 bits: absolute difference in bits"),
      Claim(run=run, file=_FILE, metric="markov_synthetic.correct", paper="all codes find it",
            source=f"{_T}, Markov chain example", target=4, better="higher", fmt="{:.0f}",
            what=f"{label}order-2 chain, 3 symbols: codes (of 4) choosing order 2"),
      Claim(run=run, file=_FILE, metric="polynomial.min_correct_fraction", paper="consistent",
            source=f"{_T}, polynomial example", target=0.9, better="higher", fmt="{:.2f}",
            what=f"{label}degree-3 polynomial, n=100, noise 0.3: worst code's fraction of samples choosing degree 3"),
      Claim(run=run, file=_FILE, metric="markov_text.nml_growth", paper="richer models as data grow",
            source=f"{_T}, Markov chain example", target=1, better="higher", fmt="{:.0f}",
            what=f"{label}Shakespeare: NML's chosen order on the longest prefix minus on 1,000 characters"),
      Claim(run=run, file=_FILE, metric="neural.large.bits_per_char", paper="compresses",
            source="Blier & Ollivier 2018", target=round(math.log2(37), 3), better="lower", fmt="{:.3f}",
            what=f"{label}prequential code of a 128-unit char LSTM on a Shakespeare prefix, bits/char "
                 f"(uniform: log2 37)"),
      Claim(run=run, file=_FILE, metric="neural.large_minus_small_bits",
            paper="the larger net codes shorter", source="Blier & Ollivier 2018", target=0.0,
            better="lower", fmt="{:.0f}",
            what=f"{label}prequential code: LSTM 128 minus LSTM 32 units, bits"),
  )


CLAIMS = _claims("quick", "smoke: ") + _claims("full", "")
