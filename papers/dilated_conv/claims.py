"""The claims of papers/dilated_conv, as data for launch.reproduce (see core/claims.py)."""
from core.claims import Claim, Run

_CPU = "configs/dilated_conv.py:{}"
_CONTINUE = ("--config.model.init_from=runs/dilated_conv/front_end", "--config.total_steps=400",
             "--config.eval_every=200", "--config.checkpoint_every=200")

RUNS = {
    "front_end_basic_smoke": Run(_CPU.format("front_end_basic"), tier="smoke",
                                 overrides=("--config.model.init_from=", "--config.model.train_front_end=True",
                                            "--config.total_steps=100", "--config.eval_every=100")),
    "front_end": Run(_CPU.format("front_end"), tier="cpu"),
    # The context modules on top of the front_end run's front end (section 4's second stage).
    "front_end_basic": Run(_CPU.format("front_end_basic"), tier="cpu"),
    "front_end_large": Run(_CPU.format("front_end_large"), tier="cpu"),
    # The control: the front end alone trained 400 more steps from the same checkpoint, so that
    # the modules' gain is not just the extra training.
    "front_end_continued": Run(_CPU.format("front_end"), tier="cpu",
                               overrides=_CONTINUE),
    # The same three second stages with another seed (data order, the large module's noise and
    # the 512 test canvases, so they compare with each other only).
    "front_end_basic_seed1": Run(_CPU.format("front_end_basic"), tier="cpu", overrides=("--config.seed=1",)),
    "front_end_large_seed1": Run(_CPU.format("front_end_large"), tier="cpu", overrides=("--config.seed=1",)),
    "front_end_continued_seed1": Run(_CPU.format("front_end"), tier="cpu",
                                     overrides=(*_CONTINUE, "--config.seed=1")),
    # Reads the runs above: mIoU gains of the context modules and the predictions figure.
    "context_gain": Run(tier="cpu", commands=(("papers.dilated_conv.figures", "--runs", "{workdir}/..",
                                               "--out", "{workdir}"),)),
    "voc_paper": Run(_CPU.format("voc_paper"), tier="pod"),
}

# The reading list's figures (VOC 2012 validation mIoU of the controlled comparison); the
# paper's table number was not checked against its text here.
_SOURCE = "Yu & Koltun 2016, VOC 2012 val"
_PCT = "{:.1%}"

CLAIMS = (
    Claim(run="front_end_basic_smoke", metric="miou", paper="71.3% (VOC)", source=_SOURCE, target=0.713,
          fmt=_PCT, what="front end + basic context trained end to end from scratch, canvases, 100 steps: test mIoU"),
    Claim(run="front_end", metric="miou", paper="69.8% (VOC)", source=_SOURCE, target=0.698, fmt=_PCT,
          what="local front end alone (30 x 30 pixel window), canvases of 32-64 pixel items, 800 steps: test mIoU (11 classes)"),
    Claim(run="front_end_basic", metric="miou", paper="71.3% (VOC)", source=_SOURCE, target=0.713,
          fmt=_PCT, what="basic context module trained 400 steps (SGD, momentum 0.9) on that fixed front end: test mIoU"),
    Claim(run="front_end_large", metric="miou", paper="72.1% (VOC)", source=_SOURCE, target=0.721,
          fmt=_PCT, what="large context module trained 400 steps on that fixed front end: test mIoU"),
    Claim(run="context_gain", file="context_gain.json", metric="gain_basic", paper="+1.5 points",
          source=_SOURCE, target=0.0, better="higher", fmt=_PCT,
          what="mIoU of front end + basic minus front end alone (above 0: the module helps)"),
    Claim(run="context_gain", file="context_gain.json", metric="gain_large", paper="+2.3 points",
          source=_SOURCE, target=0.0, better="higher", fmt=_PCT,
          what="mIoU of front end + large minus front end alone"),
    Claim(run="context_gain", file="context_gain.json", metric="gain_basic_vs_continued",
          paper="+1.5 points", source=_SOURCE, target=0.0, better="higher", fmt=_PCT,
          what="mIoU of front end + basic minus the front end trained the same 400 extra steps"),
    Claim(run="context_gain", file="context_gain.json", metric="gain_large_vs_continued",
          paper="+2.3 points", source=_SOURCE, target=0.0, better="higher", fmt=_PCT,
          what="mIoU of front end + large minus the front end trained the same 400 extra steps"),
    *(Claim(run=f"{name}_seed1", metric="miou", paper=paper, source=_SOURCE, target=target, fmt=_PCT,
            what=f"{what}, seed 1 (other test canvases: compare within seed 1)")
      for name, paper, target, what in (
          ("front_end_basic", "71.3% (VOC)", 0.713, "basic context module on the fixed front end"),
          ("front_end_large", "72.1% (VOC)", 0.721, "large context module on the fixed front end"),
          ("front_end_continued", "69.8% (VOC)", 0.698, "front end alone, 400 more steps (control)"))),
    Claim(run="voc_paper", metric="miou", paper="72.1%", source=_SOURCE, target=0.721, fmt=_PCT,
          what="VGG-16 front end + large context module, VOC 2012 val mIoU"),
)
