"""Relation Networks (Santoro et al. 2017): CNN+RN vs CNN+MLP on Sort-of-CLEVR.

Variants (after ':'):
  rn          (default) CPU-sized CNN+RN: 4 convs x 24 kernels, g 4x128, f 128,128
  mlp         CPU-sized CNN+MLP baseline: same CNN, an MLP with the same layers and units
  rn_paper    the paper's Sort-of-CLEVR model (appendix D): convs 32/64/128/256 with batch norm,
              g 4x2000, f 2000/1000/500/100 + linear, Adam 1e-4, batch 64
  mlp_paper   the paper's CNN+MLP baseline: the same CNN and an MLP of the same layers and units

Command (2-core CPU):
  python -m launch.train --config configs/relation_networks.py:rn --workdir runs/rn_rn
  python -m launch.train --config configs/relation_networks.py:mlp --workdir runs/rn_mlp

Expected result: see papers/relation_networks/README.md (the paper: CNN+RN above 94% on both
relational and non-relational questions; CNN+MLP similar on non-relational, 63% relational).
"""
from configs.common import base_config

VARIANTS = ("rn", "mlp", "rn_paper", "mlp_paper")


def get_config(arg=None):
  variant = arg or "rn"
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
  c = base_config()
  c.task = "papers.relation_networks.task:SortOfClevrTask"
  c.seed = 0
  c.total_steps = 3000
  c.batch_size = 64
  c.log_every = 50
  c.eval_every = 500
  c.checkpoint_every = 500

  c.data.image_size = 75          # the paper's 75x75 images ...
  c.data.object_size = 5          # ... with 10-pixel squares and circles
  c.data.train_images = 9800      # 10,000 images, 200 of them held out
  c.data.test_images = 200
  c.data.eval_images_per_batch = 25  # 500 questions a batch

  c.model.head = "mlp" if variant.startswith("mlp") else "rn"
  c.model.channels = (24, 24, 24, 24)
  c.model.g_units = (128, 128, 128, 128)
  c.model.f_units = (128, 128)

  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 1e-3
  c.optimizer.schedule = "cosine"
  c.optimizer.warmup_steps = 100

  if variant.endswith("_paper"):
    c.model.channels = (32, 64, 128, 256)
    c.model.g_units = (2000, 2000, 2000, 2000)
    c.model.f_units = (2000, 1000, 500, 100)
    c.optimizer.learning_rate = 1e-4
    c.optimizer.schedule = "constant"
    c.optimizer.warmup_steps = 0
    c.total_steps = 200_000
    c.eval_every = 5000
    c.checkpoint_every = 5000
  return c
