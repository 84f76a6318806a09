"""The claims of papers/alexnet, as data for launch.reproduce (see core/claims.py)."""
from core.claims import Claim, Run

_CFG = "configs/alexnet.py:{}"
_PLOT = "papers.alexnet.plot"

RUNS = {
    "fashion_smoke": Run(_CFG.format("fashion"), tier="smoke",
                         overrides=("--config.total_steps=100", "--config.eval_every=100",
                                    "--config.data.test_examples=2000")),
    # Figure 1: ReLU against tanh, then the steps-to-25% of both.
    "fashion_relu_small": Run(_CFG.format("fashion_relu_small"), tier="cpu"),
    "fashion_tanh": Run(_CFG.format("fashion_tanh"), tier="cpu"),
    "figure1": Run(tier="cpu", commands=((_PLOT, "figure1", "--runs", "{workdir}/..",
                                          "--out", "{workdir}"),)),
    # The small AlexNet and the ablations of sections 3.3 and 3.4, then the gaps and Figure 3.
    "fashion": Run(_CFG.format("fashion"), tier="cpu"),
    "fashion_no_lrn": Run(_CFG.format("fashion_no_lrn"), tier="cpu"),
    "fashion_no_overlap": Run(_CFG.format("fashion_no_overlap"), tier="cpu"),
    "ablations": Run(tier="cpu", commands=((_PLOT, "ablations", "--runs", "{workdir}/..",
                                            "--out", "{workdir}"),
                                           (_PLOT, "filters", "--workdir", "{workdir}/../fashion"))),
    "imagenet": Run(_CFG.format("imagenet"), tier="pod"),
}

_PCT = "{:.2%}"
_FASHION = "small AlexNet, Fashion-MNIST, 300 steps of 64 (0.32 epochs)"

CLAIMS = (
    Claim(run="fashion_smoke", metric="test_error", paper="40.7% top-1 (ImageNet)", source="Table 2",
          target=0.407, better="lower", fmt=_PCT,
          what="small AlexNet, Fashion-MNIST, 100 steps: test error (first 2,000 test images; "
               "the ImageNet figure for scale only, not comparable)"),
    Claim(run="figure1", file="figure1.json", metric="tanh_over_relu", paper="~6x (CIFAR-10)",
          source="Figure 1", target=6.0, better="higher", tolerance=5.0, fmt="{:.2f}",
          what="steps to 25% training error, tanh over ReLU (small AlexNet, no regularisation, "
               "Fashion-MNIST, same lr); held at 1 or more (ReLU at least as fast)"),
    Claim(run="fashion", metric="test_error", paper="40.7% top-1 (ImageNet)", source="Table 2",
          target=0.407, better="lower", fmt=_PCT,
          what=_FASHION + ": test error (10,000 images; the ImageNet figure for scale only)"),
    Claim(run="ablations", file="ablations.json", metric="lrn_gain", paper="1.4% top-1",
          source="section 3.3", target=0.014, better="higher", fmt=_PCT,
          what="same budget: test error without LRN minus with (binomial sd of the difference ~0.5%)"),
    Claim(run="ablations", file="ablations.json", metric="overlap_gain", paper="0.4% top-1",
          source="section 3.4", target=0.004, better="higher", fmt=_PCT,
          what="same budget: test error with 2x2 pooling minus 3x3 overlapping"),
    Claim(run="imagenet", metric="test_error", paper="40.7%", source="Table 2", target=0.407,
          better="lower", fmt=_PCT, what="AlexNet (two towers), ILSVRC-2012 validation: top-1 error, "
                                         "central crop"),
    Claim(run="imagenet", metric="test_top5_error", paper="18.2%", source="Table 2", target=0.182,
          better="lower", fmt=_PCT, what="same: top-5 error"),
)
