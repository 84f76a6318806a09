"""Relation Networks (Santoro et al. 2017): CNN+RN vs CNN+MLP on Sort-of-CLEVR.

Variants (after ':'):
  rn          (default) CPU-sized CNN+RN: 32x32 images with 6-pixel shapes, 3 convs x 24
              kernels (a 4x4 grid of objects), g 4x64, f 64,64, batch 32, 8,000 steps
  mlp         CPU-sized CNN+MLP baseline: the same CNN, an MLP with the same layers and units
  rn_paper    the paper's Sort-of-CLEVR model (appendix D): convs 32/64/128/256 with batch norm,
              g 4x2000, f 2000/1000/500/100 + linear, Adam 1e-4, batch 64; bf16 compute (for an
              accelerator: 176 steps/s, 56% MFU on one H200)
  mlp_paper   the paper's CNN+MLP baseline: the same CNN and an MLP of the same layers and units

Command (2-core CPU, run together: RN 26.5 min, MLP 13.5 min on a busy shared machine):
  python -m launch.train --config configs/relation_networks.py:rn --workdir runs/rn_rn
  python -m launch.train --config configs/relation_networks.py:mlp --workdir runs/rn_mlp

Expected result at step 8000 (test, 4,000 questions): CNN+RN 69.2% relational / 57.6%
non-relational; CNN+MLP 43.7% / 51.8%, i.e. still at the question-type prior (43.75% / 50%)
(measured on the test split before it moved to core.task.heldout_rng: expect sampling noise).
The paper, at full scale: CNN+RN above 94% on both; CNN+MLP 63% relational.

Paper size on one H200 (`bash benchmarks/gpu_check.sh soclevr`, both runs on one GPU, stopped
by the time limit): rn_paper 93.8% relational / 100% non-relational at step 64,000 (7.9 min);
mlp_paper 42.5% / 61.4% at step 36,000 (3.4 min). See papers/relation_networks/README.md.
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
  c.total_steps = 8000
  c.batch_size = 32
  c.log_every = 100
  c.eval_every = 2000
  c.checkpoint_every = 2000

  # CPU scale: 32x32 images (the paper: 75x75 with 10-pixel shapes) keep the RN's pairs at
  # 16^2 = 256 instead of 25^2 = 625 and the CNN 6x cheaper.
  c.data.image_size = 32
  c.data.object_size = 3          # half the side of a square, the radius of a circle
  c.data.train_images = 9800      # the paper: 10,000 images, 200 of them held out
  c.data.test_images = 200
  # 400 questions a batch: a multiple of 8 rows, so an eval batch splits over up to 8 devices
  # (an even number of images per batch keeps it so). Batch norm uses each batch's statistics.
  c.data.eval_images_per_batch = 20

  c.model.head = "mlp" if variant.startswith("mlp") else "rn"
  c.model.channels = (24, 24, 24)
  c.model.g_units = (64, 64, 64, 64)
  c.model.f_units = (64, 64)

  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 1e-3
  c.optimizer.schedule = "cosine"
  c.optimizer.warmup_steps = 100

  if variant.endswith("_paper"):
    c.batch_size = 64
    c.data.image_size = 75
    c.data.object_size = 5
    c.model.channels = (32, 64, 128, 256)
    c.model.g_units = (2000, 2000, 2000, 2000)
    c.model.f_units = (2000, 1000, 500, 100)
    c.optimizer.learning_rate = 1e-4
    c.optimizer.schedule = "constant"
    c.optimizer.warmup_steps = 0
    c.total_steps = 200_000
    c.dtype = "bfloat16"  # an accelerator config
    c.log_every = 1000
    c.eval_every = 4000
    c.checkpoint_every = 4000
  return c
