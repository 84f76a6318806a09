"""The claims of papers/kolmogorov, as data for launch.reproduce (see core/claims.py).

The reading-list item's claims are textbook facts rather than a paper's table:
- Shannon's source coding theorem with arithmetic coding (Witten, Neal & Cleary 1987;
  Cover & Thomas 2006, sec. 13.3): a model assigning probability p to a text gives a code of
  -log2 p + 2 bits, so a better model of the text gives a shorter code, and an LM trained on
  Shakespeare should code held-out Shakespeare in fewer bits than gzip, bz2 and lzma, which
  model it far more crudely (Shannon 1951 puts English near 1 bit/char; character LMs of this
  size reach 2-2.5, LZ77 coders about 3). Read as ratios LM / compressor, held below 1.
- The coder is exact: the decoded file equals the original, and the file's length is within
  a small overhead of the model's own code length -sum log2 p (quantisation and 2 bits).
- Normalised compression distance (Cilibrasi & Vitanyi 2005) puts two pieces of the same work
  nearest each other.
"""
from core.claims import Claim, Run

_JSON = "kolmogorov.json"


def _experiment(*extra):
  return ("papers.kolmogorov.experiment", "--workdir", "{workdir}/lm", "--out", "{workdir}", *extra)


RUNS = {
    "cpu": Run(tier="cpu", commands=(
        ("launch.train", "--config", "configs/transformer_lm.py", "--workdir", "{workdir}/lm"),
        _experiment("--max_chars", "0"))),
    "smoke": Run(tier="smoke", commands=(
        ("launch.train", "--config", "configs/transformer_lm.py:tiny", "--workdir", "{workdir}/lm",
         "--config.total_steps=100"),
        _experiment("--max_chars", "3000", "--ncd_chars", "3000"))),
}

_SOURCE = "Witten, Neal & Cleary 1987; Cover & Thomas sec. 13.3"
CLAIMS = tuple(
    Claim(run="cpu", file=_JSON, metric=f"ratio.{name}", paper=f"LM code shorter than {name}",
          source=_SOURCE, target=1.0, better="lower", fmt="{:.3f}",
          what=f"held-out Shakespeare (the LM's whole validation split, 646,048 characters): "
               f"LM coder bits/char / {label}")
    for name, label in (("gzip", "gzip -9"), ("bz2", "bz2 -9"), ("lzma", "lzma -9e"))) + (
    Claim(run="cpu", file=_JSON, metric="overhead_bits_per_char", paper="<= 2 bits per file + quantisation",
          source="Witten, Neal & Cleary 1987", target=0.01, better="lower", fmt="{:.4f}",
          what="LM coder: file bits/char minus the model's -log2 p per char (header included)"),
    Claim(run="cpu", file=_JSON, metric="round_trip_ok", paper="exact", source="lossless coding",
          target=1.0, fmt="{:.0f}", what="decode(encode(held-out text)) == text, the 4-layer LM"),
    Claim(run="cpu", file=_JSON, metric="ncd.lzma.same_work_nearest", paper="related texts cluster",
          source="Cilibrasi & Vitanyi 2005", target=1.0, fmt="{:.2f}",
          what="NCD (lzma): fraction of 24 pieces (2 each of 12 works) whose nearest piece is its twin"),
    Claim(run="smoke", file=_JSON, metric="round_trip_ok", paper="exact", source="lossless coding",
          target=1.0, fmt="{:.0f}", what="decode(encode(text)) == text, tiny LM after 100 steps"),
)
