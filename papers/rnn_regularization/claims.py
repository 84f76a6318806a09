"""The claims of papers/rnn_regularization, as data for launch.reproduce (see core/claims.py).

The paper's figures are PTB test perplexities (Table 1). The cpu runs train on the offline
Shakespeare corpus, whose perplexities are not PTB's: there the paper's figures are reference
points, and the claim under test is the comparison (no dropout vs dropout) in the README.
"""
from core.claims import Claim, Run

CONFIG = "configs/rnn_regularization.py"
PTB = ("--config.data.corpus=ptb",)

RUNS = {
    "small": Run(f"{CONFIG}:small", tier="cpu"),
    "medium_cpu": Run(f"{CONFIG}:medium_cpu", tier="cpu"),
    "medium_no_dropout_cpu": Run(f"{CONFIG}:medium_no_dropout_cpu", tier="cpu"),
    "ptb_small": Run(f"{CONFIG}:small", tier="pod", overrides=PTB),
    "ptb_medium": Run(f"{CONFIG}:medium", tier="pod", overrides=PTB),
    "ptb_large": Run(f"{CONFIG}:large", tier="pod", overrides=PTB),
}

_PPL = dict(metric="test_perplexity", better="lower", fmt="{:.1f}")
_SMALL = dict(paper="114.5", target=114.5, **_PPL)
_MEDIUM = dict(paper="82.7", target=82.7, **_PPL)
_LARGE = dict(paper="78.4", target=78.4, **_PPL)
_REFERENCE = "Table 1 (PTB): a reference point, not this corpus"

CLAIMS = (
    Claim(run="small", source=_REFERENCE, **_SMALL,
          what="Shakespeare, small LSTM (200 units, no dropout, 13 epochs): test perplexity"),
    Claim(run="medium_cpu", source=_REFERENCE, **_MEDIUM,
          what="Shakespeare, medium LSTM (650 units, dropout 0.5), 13 of the paper's 39 epochs: test perplexity"),
    Claim(run="medium_no_dropout_cpu", source=_REFERENCE, **_SMALL,
          what="Shakespeare, medium LSTM without dropout (ablation), 6 epochs: test perplexity"),
    Claim(run="ptb_small", source="Table 1, non-regularized LSTM", tolerance=2.0, **_SMALL,
          what="PTB, small LSTM: test perplexity"),
    Claim(run="ptb_medium", source="Table 1, medium regularized LSTM", tolerance=2.0, **_MEDIUM,
          what="PTB, medium LSTM (dropout 0.5): test perplexity"),
    Claim(run="ptb_large", source="Table 1, large regularized LSTM", tolerance=2.0, **_LARGE,
          what="PTB, large LSTM (dropout 0.65): test perplexity"),
)
