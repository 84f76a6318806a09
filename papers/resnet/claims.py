"""The claims of papers/resnet, as data for launch.reproduce (see core/claims.py)."""
from core.claims import Claim, Run

_CPU = "configs/resnet.py:{}"
_PAPER = "configs/resnet.py:cifar10_{}"

RUNS = {
    "resnet20_smoke": Run(_CPU.format("resnet20"), tier="smoke",
                          overrides=("--config.total_steps=100", "--config.eval_every=100")),
    # The degradation experiment (He 2015 Fig. 1 and 6).
    "plain56": Run(_CPU.format("plain56"), tier="cpu"),
    "plain20": Run(_CPU.format("plain20"), tier="cpu"),
    "resnet20": Run(_CPU.format("resnet20"), tier="cpu"),
    "resnet56": Run(_CPU.format("resnet56"), tier="cpu"),
    # Reads the four runs above: training-error curves (PNG) and the two gaps.
    "degradation": Run(tier="cpu", commands=(("papers.resnet.plot", "--runs", "{workdir}/..",
                                              "--out", "{workdir}"),)),
    # The ResNet pair (and, if trained, the plain pair) at 3x the steps, the same relative lr
    # schedule (configs/resnet.py "<net>_long"), and their curves and gaps.
    "resnet20_long": Run(_CPU.format("resnet20_long"), tier="cpu"),
    "resnet56_long": Run(_CPU.format("resnet56_long"), tier="cpu"),
    "degradation_long": Run(tier="cpu", commands=(("papers.resnet.plot", "--runs", "{workdir}/..",
                                                   "--suffix", "_long", "--kinds", "resnet",
                                                   "--out", "{workdir}"),)),
    # The two long runs scored on all 10,000 training images, paired (McNemar).
    "paired_long": Run(tier="cpu", commands=(("papers.resnet.paired", "--runs",
                                              "{workdir}/../resnet20_long", "{workdir}/../resnet56_long",
                                              "--out", "{workdir}"),)),
    # The same pair and comparison with another seed (initialisation, data order, augmentation).
    "resnet20_long_seed1": Run(_CPU.format("resnet20_long"), tier="cpu", overrides=("--config.seed=1",)),
    "resnet56_long_seed1": Run(_CPU.format("resnet56_long"), tier="cpu", overrides=("--config.seed=1",)),
    "paired_long_seed1": Run(tier="cpu", commands=(("papers.resnet.paired", "--runs",
                                                    "{workdir}/../resnet20_long_seed1",
                                                    "{workdir}/../resnet56_long_seed1",
                                                    "--out", "{workdir}"),)),
    # Pre-activation against the original block at the same depth (He 2016 Table 3).
    "preact_resnet56": Run(_CPU.format("preact_resnet56"), tier="cpu"),
    "preact_vs_original": Run(tier="cpu", commands=(("papers.resnet.compare", "--runs", "{workdir}/..",
                                                     "--original", "resnet56", "--preact",
                                                     "preact_resnet56", "--out", "{workdir}"),)),
    **{f"cifar10_{net}": Run(_PAPER.format(net), tier="pod")
       for net in ("resnet20", "resnet56", "resnet110", "preact_resnet110", "preact_resnet164",
                   "preact_resnet1001")},
}

_PCT = "{:.2%}"
_TABLE6 = "He 2015 Table 6"
_TABLE3 = "He 2016 Table 3"

CLAIMS = (
    Claim(run="resnet20_smoke", metric="test_error", paper="8.75% (CIFAR-10)", source=_TABLE6,
          target=0.0875, better="lower", fmt=_PCT,
          what="ResNet-20, Fashion-MNIST, 100 steps: test error (first 2,000 test images)"),
    Claim(run="degradation", file="degradation.json", metric="plain_gap", paper="above 0",
          source="He 2015 Fig. 1, Fig. 6 left", target=0.0, better="higher", fmt=_PCT,
          what="Fashion-MNIST, 800 steps: training error of plain-56 minus plain-20 "
               "(the degradation problem)"),
    Claim(run="degradation", file="degradation.json", metric="residual_gap", paper="above 0",
          source="He 2015 Fig. 6 middle", target=0.0, better="higher", fmt=_PCT,
          what="same budget: training error of ResNet-20 minus ResNet-56 (depth helps with shortcuts)"),
    Claim(run="degradation_long", file="degradation.json", metric="residual_gap", paper="above 0",
          source="He 2015 Fig. 6 middle", target=0.0, better="higher", fmt=_PCT,
          what="3x the steps (2,400, lr / 10 at 1,200 and 1,800): training error of ResNet-20 "
               "minus ResNet-56"),
    Claim(run="paired_long", file="paired.json", metric="train.gap_first_minus_second",
          paper="above 0", source="He 2015 Fig. 6 middle", target=0.0, better="higher", fmt=_PCT,
          what="the same two nets on all 10,000 training images: training error of ResNet-20 minus "
               "ResNet-56, the sign only (its paired McNemar p, in the README, is the evidence)"),
    Claim(run="paired_long_seed1", file="paired.json", metric="train.gap_first_minus_second",
          paper="above 0", source="He 2015 Fig. 6 middle", target=0.0, better="higher", fmt=_PCT,
          what="the same with seed 1 (initialisation, data order, augmentation)"),
    Claim(run="resnet20", metric="test_error", paper="8.75% (CIFAR-10)", source=_TABLE6,
          target=0.0875, better="lower", fmt=_PCT,
          what="ResNet-20, Fashion-MNIST (CPU size): test error (first 2,000 test images)"),
    Claim(run="resnet56", metric="test_error", paper="6.97% (CIFAR-10)", source=_TABLE6,
          target=0.0697, better="lower", fmt=_PCT,
          what="ResNet-56, Fashion-MNIST (CPU size): test error (first 2,000 test images)"),
    Claim(run="resnet20_long", metric="test_error", paper="8.75% (CIFAR-10)", source=_TABLE6,
          target=0.0875, better="lower", fmt=_PCT,
          what="ResNet-20, Fashion-MNIST, 3x the steps (2,400): test error (first 2,000 test images)"),
    Claim(run="resnet56_long", metric="test_error", paper="6.97% (CIFAR-10)", source=_TABLE6,
          target=0.0697, better="lower", fmt=_PCT,
          what="ResNet-56, Fashion-MNIST, 3x the steps (2,400): test error (first 2,000 test images)"),
    Claim(run="preact_resnet56", metric="test_error", paper="6.97% (CIFAR-10, original)",
          source=_TABLE6, target=0.0697, better="lower", fmt=_PCT,
          what="pre-activation ResNet-56, Fashion-MNIST (CPU size): test error (first 2,000 test images)"),
    Claim(run="preact_vs_original", file="preact_vs_original.json", metric="test_gap",
          paper="below 0 (110 layers: 6.37% - 6.61%)", source=_TABLE3, target=0.0, better="lower",
          fmt=_PCT, what="same budget, 56 layers, one seed: test error of pre-activation minus "
                         "original ResNet (binomial s.e. about 1.3 points)"),
    Claim(run="cifar10_resnet20", metric="test_error", paper="8.75%", source=_TABLE6, target=0.0875,
          better="lower", fmt=_PCT, what="ResNet-20, CIFAR-10, 64k iterations: test error"),
    Claim(run="cifar10_resnet56", metric="test_error", paper="6.97%", source=_TABLE6, target=0.0697,
          better="lower", fmt=_PCT, what="ResNet-56, CIFAR-10: test error"),
    Claim(run="cifar10_resnet110", metric="test_error", paper="6.43%", source=_TABLE6, target=0.0643,
          better="lower", fmt=_PCT, what="ResNet-110, CIFAR-10: test error"),
    Claim(run="cifar10_preact_resnet110", metric="test_error", paper="6.37%", source=_TABLE3,
          target=0.0637, better="lower", fmt=_PCT,
          what="pre-activation ResNet-110 (basic blocks), CIFAR-10: test error"),
    Claim(run="cifar10_preact_resnet164", metric="test_error", paper="5.46%", source=_TABLE3,
          target=0.0546, better="lower", fmt=_PCT, what="pre-activation ResNet-164, CIFAR-10: test error"),
    Claim(run="cifar10_preact_resnet1001", metric="test_error", paper="4.92%", source=_TABLE3,
          target=0.0492, better="lower", fmt=_PCT, what="pre-activation ResNet-1001, CIFAR-10: test error"),
)
