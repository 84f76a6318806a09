"""The claims of papers/relational_rnn, as data for launch.reproduce (see core/claims.py)."""
from core.claims import Claim, Run

# Learning to Execute, addition, at 6x the steps (3.84 M programs): does the budget move it?
_LONG = ("--config.total_steps=60000", "--config.eval_every=5000", "--config.checkpoint_every=2500")

RUNS = {
    "rmc_smoke": Run("configs/relational_rnn.py:rmc", tier="smoke",
                     overrides=("--config.total_steps=500", "--config.eval_every=250")),
    "rmc": Run("configs/relational_rnn.py:rmc", tier="cpu"),
    "lstm": Run("configs/relational_rnn.py:lstm", tier="cpu"),
    "lte_rmc_addition": Run("configs/learning_to_execute.py:rmc_addition", tier="cpu"),
    "lte_lstm_addition": Run("configs/learning_to_execute.py:lstm_addition", tier="cpu"),
    "lte_lstm_addition_long": Run("configs/learning_to_execute.py:lstm_addition", tier="cpu",
                                  overrides=_LONG),
    "lte_rmc_addition_long": Run("configs/learning_to_execute.py:rmc_addition", tier="cpu",
                                 overrides=_LONG),
    "lte_rmc_program": Run("configs/learning_to_execute.py:rmc_program", tier="cpu"),
    "lte_lstm_program": Run("configs/learning_to_execute.py:lstm_program", tier="cpu"),
    "lte_rmc_program_paper": Run("configs/learning_to_execute.py:rmc_program_paper", tier="pod"),
    "rmc_paper": Run("configs/relational_rnn.py:rmc_paper", tier="pod"),
    "lstm_paper": Run("configs/relational_rnn.py:lstm_paper", tier="pod"),
}

_RMC = dict(metric="accuracy", paper="91%", source="Figure 3 / Table 2", target=0.91, tolerance=0.01,
            fmt="{:.1%}")
_LSTM = dict(metric="accuracy", paper="below 30%", source="Figure 3 (LSTM and DNC)", target=0.30,
             better="lower", fmt="{:.1%}")

_LTE = dict(metric="char_accuracy", source="Table 1", tolerance=0.01, fmt="{:.2%}")

CLAIMS = (
    Claim(run="rmc_smoke", what="Nth farthest (8 x 16), RMC, test accuracy after 500 steps x 64", **_RMC),
    Claim(run="rmc", what="Nth farthest (8 x 16), RMC (CPU size), test accuracy after 4,000 steps x 64", **_RMC),
    Claim(run="lstm", what="Nth farthest (8 x 16), LSTM baseline (CPU size), same budget", **_LSTM),
    Claim(run="lte_rmc_addition", paper="99.9%", target=0.999, **_LTE,
          what="Learning to Execute, addition (5 digits), RMC (CPU size): per-character test accuracy after 10,000 steps x 64"),
    Claim(run="lte_lstm_addition", paper="99.8%", target=0.998, **_LTE,
          what="Learning to Execute, addition, LSTM (CPU size), same budget"),
    Claim(run="lte_lstm_addition_long", paper="99.8%", target=0.998, **_LTE,
          what="Learning to Execute, addition, LSTM (CPU size), 6x the steps (60,000 x 64)"),
    Claim(run="lte_rmc_addition_long", paper="99.9%", target=0.999, **_LTE,
          what="Learning to Execute, addition, RMC (CPU size), 6x the steps (60,000 x 64)"),
    Claim(run="lte_rmc_program", paper="79.0%", target=0.79, **_LTE,
          what="Learning to Execute, full programs (length 5, nesting 2), RMC (CPU size): after 3,000 steps x 64"),
    Claim(run="lte_lstm_program", paper="66.1%", target=0.661, **_LTE,
          what="Learning to Execute, full programs, LSTM (CPU size), same budget"),
    Claim(run="lte_rmc_program_paper", paper="79.0%", target=0.79, **_LTE,
          what="Learning to Execute, full programs, RMC at the authors' example's scale"),
    Claim(run="rmc_paper", what="Nth farthest (8 x 16), RMC at the paper's size and batch", **_RMC),
    Claim(run="lstm_paper", what="Nth farthest (8 x 16), LSTM at the paper's size and batch", **_LSTM),
)
