"""The claims of papers/char_rnn, as data for launch.reproduce (see core/claims.py).

The blog post reports samples, not losses; the one number to compare with is nanoGPT's
char-level reference (val loss 1.47 nats/char = 2.12 bits/char on tiny-shakespeare, a
different, smaller corpus and split): a reference point, not the post's figure. The Linux
run has no claim (the post shows its samples only); its figures are in the README.
"""
from core.claims import Claim, Run

RUNS = {
    "shakespeare_smoke": Run("configs/char_rnn.py", tier="smoke",
                             overrides=("--config.total_steps=300", "--config.eval_every=300")),
    "shakespeare": Run("configs/char_rnn.py", tier="cpu"),
    "linux": Run("configs/char_rnn.py:linux", tier="cpu"),
}

CLAIMS = (
    Claim(run="shakespeare_smoke", metric="bits_per_char", paper="2.12 bits/char", better="lower",
          source="nanoGPT char-level on tiny-shakespeare: a reference point", target=2.12, fmt="{:.3f}",
          what="the same network after 300 steps (a smoke run)"),
    Claim(run="shakespeare", metric="bits_per_char", paper="2.12 bits/char", better="lower",
          source="nanoGPT char-level on tiny-shakespeare (1.47 nats): a reference point, not the post",
          target=2.12, fmt="{:.3f}",
          what="2 x 256 LSTM, bytes of the Shakespeare corpus (42 works + 7 of Milton's; last 10% "
               "held out): validation bits/char after 4,000 steps x 32 x 100 bytes"),
)
