"""Keeping neural networks simple by minimising the description length of the weights
(Hinton & van Camp 1993): a 128-4-1 net with Gaussian noisy weights on 105 training cases.

Variants (after ':'):
  mdl        noisy weights, description length with an adaptive mixture-of-3-Gaussians prior (default)
  mdl_gauss  the same with one adaptive Gaussian as the prior
  plain      ordinary weights, maximum likelihood (the misfit alone)
  decay      ordinary weights, weight decay (MAP under a fixed N(0, model.decay_std^2) prior)

Commands:
  python -m launch.train --config configs/mdl_weights.py:mdl --workdir runs/mdl_weights/mdl
  python -m launch.train --config configs/mdl_weights.py:plain --workdir runs/mdl_weights/plain

Each step is the whole training set (full batch; the description length is a sum over all
105 cases). The eval rows of metrics.jsonl hold description_length_bits, weight_bits,
data_bits, test_mse and test_relative_error; papers/mdl_weights/README.md has the results.
"""
from configs.common import base_config

VARIANTS = ("mdl", "mdl_gauss", "plain", "decay")


def get_config(arg=None):
  variant = arg or "mdl"
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
  c = base_config()
  c.task = "papers.mdl_weights.task:DescriptionLengthTask"
  c.seed = 0
  c.total_steps = 5000
  c.batch_size = 108          # the 105 training cases, padded (weight 0) to split over 4 shards
  c.log_every = 100
  c.eval_every = 1000
  c.checkpoint_every = 1000

  c.data.inputs = 128
  c.data.train_cases = 105
  c.data.test_cases = 1024
  c.data.relevant = 8         # inputs the teacher reads
  c.data.teacher_hidden = 2   # the teacher's tanh units, relevant / teacher_hidden inputs each
  c.data.noise = 0.3          # target noise std (the signal has variance 1)
  c.data.precision = 0.01     # targets are coded to this precision (a constant per case)

  c.model.objective = {"mdl": "mdl", "mdl_gauss": "mdl", "plain": "ml", "decay": "map"}[variant]
  c.model.hidden = 4
  c.model.prior_components = 1 if variant == "mdl_gauss" else 3
  c.model.init_std = 0.01     # noisy weights start nearly exact
  c.model.kl_warmup_steps = 2000  # mdl: the weight cost's coefficient rises 0 -> 1 over these steps
  c.model.decay_std = 0.3     # decay: the prior std of weight decay, penalty w^2 / (2 std^2) nats

  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 3e-3
  return c
