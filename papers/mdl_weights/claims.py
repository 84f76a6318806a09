"""The claims of papers/mdl_weights, as data for launch.reproduce (see core/claims.py).

The paper's claims are comparative (a noisy-weight net coded by its description length
generalises better than the same net trained plainly, on few cases with many inputs), so the
targets are the task's own reference points, computed here from the generator (not typed):
the no-network code of the training targets (a Gaussian of their mean and variance) and the
noise floor of the relative test error, noise^2 / (1 + noise^2).
"""
from core.claims import Claim, Run
from papers.mdl_weights.data import make_data, no_network_bits, noise_floor

SEED, NOISE, PRECISION = 0, 0.3, 0.01   # configs/mdl_weights.py's defaults
_DATA, _ = make_data(SEED, 128, 8, 2, NOISE, 105, 1024)
NO_NETWORK = no_network_bits(_DATA["train_y"].astype("float64"), PRECISION)
FLOOR = noise_floor(NOISE)

RUNS = {
    "mdl_smoke": Run("configs/mdl_weights.py:mdl", tier="smoke",
                     overrides=("--config.total_steps=1500", "--config.model.kl_warmup_steps=600")),
    "plain_smoke": Run("configs/mdl_weights.py:plain", tier="smoke",
                       overrides=("--config.total_steps=1500",)),
    "mdl": Run("configs/mdl_weights.py:mdl", tier="cpu"),
    "mdl_gauss": Run("configs/mdl_weights.py:mdl_gauss", tier="cpu"),
    "plain": Run("configs/mdl_weights.py:plain", tier="cpu"),
    "decay": Run("configs/mdl_weights.py:decay", tier="cpu"),
}

_NAMES = {"mdl": "noisy weights, mixture prior (MDL)", "mdl_gauss": "noisy weights, one adaptive Gaussian prior",
          "plain": "plain net (maximum likelihood)", "decay": "plain net + weight decay",
          "mdl_smoke": "noisy weights, mixture prior, 1,500 steps",
          "plain_smoke": "plain net, 1,500 steps"}
_SOURCE = "Hinton & van Camp 1993"


def _dl(run, paper, better):
  return Claim(run=run, metric="description_length_bits", paper=paper, source=_SOURCE,
               target=round(NO_NETWORK, 1), better=better, fmt="{:.1f}",
               what=f"{_NAMES[run]}: description length, bits (vs {NO_NETWORK:.1f} with no network)")


def _error(run, paper, **kw):
  return Claim(run=run, metric="test_relative_error", paper=paper, source=_SOURCE, fmt="{:.3f}",
               what=f"{_NAMES[run]}: test error / target variance (noise floor {FLOOR:.3f})", **kw)


CLAIMS = (
    _dl("mdl", "shorter than sending the targets alone", "lower"),
    _error("mdl", "generalises well from 105 cases", target=FLOOR, better="lower", tolerance=0.05),
    Claim(run="mdl", metric="two_part_bits", paper="(a plain code of the simple net's means)",
          source=_SOURCE, target=round(NO_NETWORK, 1), better="lower", fmt="{:.1f}",
          what="noisy weights, mixture prior: its mean weights rounded and sent by the plain nets' two-part code, bits"),
    _dl("mdl_gauss", "(the paper adapts a mixture)", "lower"),
    _error("mdl_gauss", "(the paper adapts a mixture)", target=FLOOR, better="lower", tolerance=0.05),
    _dl("plain", "longer: the weights cost more than they save", "higher"),
    _error("plain", "overfits 105 cases with 521 weights", target=1.0, better="higher"),
    _dl("decay", "(weight decay: a fixed Gaussian prior)", "higher"),
    _error("decay", "(weight decay: a fixed Gaussian prior)", target=FLOOR, better="lower", tolerance=0.05),
    _error("mdl_smoke", "generalises well from 105 cases", target=FLOOR, better="lower", tolerance=0.05),
    _error("plain_smoke", "overfits 105 cases with 521 weights", target=1.0, better="higher"),
)
