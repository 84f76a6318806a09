"""The claims of papers/vlae, as data for launch.reproduce (see core/claims.py)."""
from core.claims import Claim, Run

_CONFIG = "configs/vlae.py:{}"

RUNS = {
    "fashion_af_smoke": Run(_CONFIG.format("fashion_af"), tier="smoke",
                            overrides=("--config.total_steps=200", "--config.eval_every=200",
                                       "--config.data.test_examples=200",
                                       "--config.data.importance_samples=10")),
    "fashion_af": Run(_CONFIG.format("fashion_af"), tier="cpu"),
    "fashion_gaussian": Run(_CONFIG.format("fashion_gaussian"), tier="cpu"),
    # Reads the two runs above: the NLL gap between the priors.
    "compare": Run(tier="cpu", commands=(("papers.vlae.compare", "--runs", "{workdir}/..",
                                          "--out", "{workdir}"),)),
    "paper": Run(_CONFIG.format("paper"), tier="pod"),
}

_T1 = "Chen et al. 2017, Table 1"
_NATS = "{:.2f}"
_FASHION = "Fashion-MNIST (dynamically binarized), 800 steps of 32"

CLAIMS = (
    Claim(run="fashion_af_smoke", metric="nll", paper="79.03 (MNIST)", source=_T1, target=79.03,
          better="lower", fmt=_NATS,
          what="VLAE, AF prior, Fashion-MNIST, 200 steps: test NLL, nats (K = 10, 200 images)"),
    Claim(run="fashion_af", metric="nll", paper="79.03 (MNIST)", source=_T1, target=79.03,
          better="lower", fmt=_NATS,
          what=f"VLAE, AF prior, {_FASHION}: test NLL, nats (K = 50 importance samples)"),
    Claim(run="fashion_gaussian", metric="nll", paper="79.03 (MNIST, AF prior)", source=_T1,
          target=79.03, better="lower", fmt=_NATS,
          what="same, standard Gaussian prior: test NLL, nats"),
    Claim(run="compare", file="compare.json", metric="nll_gap", paper="AF prior better",
          source="Chen et al. 2017, AF vs Gaussian prior", target=0.0, better="higher", fmt=_NATS,
          what="test NLL of the Gaussian-prior run minus the AF-prior run (same budget), nats"),
    Claim(run="fashion_af", metric="kl", paper="a lossy code", source="Chen et al. 2017, lossy code",
          target=0.0, better="higher", fmt=_NATS,
          what="AF prior run: KL from q(z given x) to p(z), the nats per image the code carries"),
    Claim(run="fashion_gaussian", metric="kl", paper="a lossy code",
          source="Chen et al. 2017, lossy code", target=0.0, better="higher", fmt=_NATS,
          what="Gaussian prior run: KL, nats per image the code carries"),
    Claim(run="paper", metric="nll", paper="79.03", source=_T1, target=79.03, better="lower",
          fmt=_NATS, what="VLAE, AF prior, statically binarized MNIST: test NLL, nats"),
)
