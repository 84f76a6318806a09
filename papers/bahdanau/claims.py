"""The claims of papers/bahdanau, as data for launch.reproduce (see core/claims.py).

The paper's figures are BLEU on WMT14 English -> French news (newstest2014, all sentences);
ours are BLEU on 500 verses of held-out Bible books, English -> Spanish: the same kind of
measurement on other data, so the comparison that matters is RNNsearch against RNNencdec.
"""
from core.claims import Claim, Run

RUNS = {
    "rnnencdec": Run("configs/bahdanau.py:rnnencdec_cpu", tier="cpu"),
    "rnnsearch": Run("configs/bahdanau.py:rnnsearch_cpu", tier="cpu"),
    "rnnencdec_smoke": Run("configs/bahdanau.py:rnnencdec", tier="smoke"),
    "rnnsearch_smoke": Run("configs/bahdanau.py:rnnsearch", tier="smoke"),
    "rnnencdec_paper": Run("configs/bahdanau.py:rnnencdec_paper", tier="pod"),
    "rnnsearch_paper": Run("configs/bahdanau.py:rnnsearch_paper", tier="pod"),
}

_SEARCH = dict(metric="bleu", paper="26.75 (RNNsearch-50, WMT14 En-Fr)", source="Table 1",
               target=26.75, fmt="{:.2f}")
_ENCDEC = dict(metric="bleu", paper="17.82 (RNNencdec-50, WMT14 En-Fr)", source="Table 1",
               target=17.82, fmt="{:.2f}")

CLAIMS = (
    Claim(run="rnnsearch", what="RNNsearch (CPU size, 1,500 steps), Bible En-Es: BLEU, beam 12, "
          "500 test verses", **_SEARCH),
    Claim(run="rnnencdec", what="RNNencdec (CPU size, 1,500 steps), the same", **_ENCDEC),
    Claim(run="rnnsearch", metric="bleu_len_30_40", paper="flat past 30 words (figure 2)",
          source="Figure 2", target=26.75, fmt="{:.2f}",
          what="RNNsearch, test verses of 31-40 source words"),
    Claim(run="rnnencdec", metric="bleu_len_30_40", paper="falls past 20 words (figure 2)",
          source="Figure 2", target=17.82, fmt="{:.2f}",
          what="RNNencdec, test verses of 31-40 source words"),
    Claim(run="rnnsearch_smoke", what="tiny RNNsearch (hidden 16, 200 steps): BLEU, 8 test verses",
          **_SEARCH),
    Claim(run="rnnencdec_smoke", what="tiny RNNencdec (hidden 16, 200 steps): BLEU, 8 test verses",
          **_ENCDEC),
    Claim(run="rnnsearch_paper", what="RNNsearch-50 at the paper's size, WMT14 En-Fr", **_SEARCH),
    Claim(run="rnnencdec_paper", what="RNNencdec-50 at the paper's size, WMT14 En-Fr", **_ENCDEC),
)
