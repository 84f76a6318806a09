"""The claims of papers/transformer, as data for launch.reproduce (see core/claims.py)."""
from core.claims import Claim, Run

RUNS = {
    "copy": Run("configs/transformer.py", tier="smoke"),
    "char_lm": Run("configs/transformer_lm.py", tier="cpu"),
}

CLAIMS = (
    Claim(run="copy", metric="exact_match_greedy", paper="solved", source="Annotated Transformer, copy task",
          target=1.0, tolerance=0.005, fmt="{:.1%}",
          what="Copy task (V=11, length 10): exact-sequence accuracy, greedy decoding, 1,000 held-out sequences"),
    Claim(run="copy", metric="exact_match_beam", paper="solved", source="Annotated Transformer, copy task",
          target=1.0, tolerance=0.005, fmt="{:.1%}", what="same, beam search"),
    Claim(run="char_lm", metric="loss", paper="1.47 nats/char", better="lower", tolerance=0.05,
          source="nanoGPT char-level on tiny-shakespeare: a reference point, not this paper",
          target=1.47, fmt="{:.3f}",
          what="Char-level LM on Shakespeare (last 10% held out): validation loss, nats/char"),
)
