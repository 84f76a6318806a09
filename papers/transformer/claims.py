"""The claims of papers/transformer, as data for launch.reproduce (see core/claims.py)."""
from core.claims import Claim, Run

RUNS = {
    "copy": Run("configs/transformer.py", tier="smoke"),
    "char_lm": Run("configs/transformer_lm.py", tier="cpu"),
    "translate_smoke": Run("configs/transformer.py:translate", tier="smoke",
                           overrides=("--config.total_steps=100", "--config.eval_every=100",
                                      "--config.data.eval_examples=100")),
    "translate": Run("configs/transformer.py:translate", tier="cpu"),
    "translate_base": Run("configs/transformer.py:translate_base", tier="pod"),
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
    Claim(run="translate_smoke", metric="bleu", paper="27.3 BLEU (WMT14 En-De, base model)",
          source="Vaswani et al. 2017, Table 2", target=27.3, tolerance=0.5, fmt="{:.2f}",
          what="Translation smoke run (100 steps): BLEU, beam 4, 100 test verses"),
    Claim(run="translate", metric="bleu", paper="27.3 BLEU (WMT14 En-De, base model)",
          source="Vaswani et al. 2017, Table 2", target=27.3, tolerance=0.5, fmt="{:.2f}",
          what="English -> Spanish Bible (KJV -> RV1909), 3+3 layers of width 128, 600 steps: "
               "BLEU, beam 4, alpha 0.6, 500 test verses (Joshua, Mark, Romans)"),
    Claim(run="translate", metric="bleu", paper="38.1 BLEU (WMT14 En-Fr, base model)",
          source="Vaswani et al. 2017, Table 2", target=38.1, tolerance=0.5, fmt="{:.2f}",
          what="same run, against the paper's English -> French figure (a Romance target too)"),
    Claim(run="translate_base", metric="bleu", paper="27.3 BLEU (WMT14 En-De, base model)",
          source="Vaswani et al. 2017, Table 2", target=27.3, tolerance=0.5, fmt="{:.2f}",
          what="English -> Spanish Bible, the paper's base model and optimiser, 100k steps: BLEU, beam 4"),
)
