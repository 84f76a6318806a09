"""The claims of papers/ntm, as data for launch.reproduce (see core/claims.py).

The paper's copy curves (Figure 3) fall to near-zero cost; "near zero" is read here as under
one bit per sequence of held-out cost (eval `bits_per_sequence`; chance is about 84).
"""
from core.claims import Claim, Run

RUNS = {
    "copy-ntm_lstm-smoke": Run("configs/ntm.py:copy-ntm_lstm", tier="smoke",
                               overrides=("--config.total_steps=1000", "--config.eval_every=500")),
    "copy-ntm_lstm": Run("configs/ntm.py:copy-ntm_lstm", tier="cpu"),
    "copy-ntm_ff": Run("configs/ntm.py:copy-ntm_ff", tier="cpu", overrides=("--config.total_steps=10000",)),
    "copy-lstm": Run("configs/ntm.py:copy-lstm", tier="cpu"),
    "copy-ntm_lstm-paper": Run("configs/ntm.py:copy-ntm_lstm-paper", tier="pod"),
    "copy-ntm_ff-paper": Run("configs/ntm.py:copy-ntm_ff-paper", tier="pod"),
}

_NEAR_ZERO = dict(metric="bits_per_sequence", paper="near-zero cost", source="Figure 3", target=1.0,
                  better="lower", fmt="{:.2f} bits")

CLAIMS = (
    Claim(run="copy-ntm_lstm-smoke", what="Copy, NTM with LSTM controller: held-out cost after 1,000 updates x 4",
          **_NEAR_ZERO),
    Claim(run="copy-ntm_lstm", what="Copy, NTM with LSTM controller: held-out cost after 4,000 updates x 4",
          **_NEAR_ZERO),
    Claim(run="copy-ntm_ff", what="Copy, NTM with feed-forward controller: after 10,000 updates x 4",
          **_NEAR_ZERO),
    Claim(run="copy-lstm", metric="bits_per_sequence", paper="learns slowly, far above both NTMs",
          source="Figure 3", target=1.0, better="higher", fmt="{:.2f} bits",
          what="Copy, LSTM baseline (3 x 256): held-out cost after 4,000 updates x 4"),
    Claim(run="copy-ntm_lstm-paper", what="Copy, NTM with LSTM controller, the paper's schedule", **_NEAR_ZERO),
    Claim(run="copy-ntm_ff-paper", what="Copy, NTM with feed-forward controller, the paper's schedule",
          **_NEAR_ZERO),
)
