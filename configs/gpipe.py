"""GPipe (Huang et al. 2019): a ResNet-style stack of residual blocks, pipelined over `mesh.stage`.

Default (synthetic images, no download; 8 blocks, 16 channels, 300 steps of batch 32):
  python -m launch.train --config configs/gpipe.py --workdir runs/gpipe
  expected: eval accuracy 0.494, loss 1.507 at step 300 on 512 held-out images from
  core.task.heldout_rng (chance 0.1; measured 2026-11-26, 2-core CPU, 6 minutes)
Pipelined on 8 fake CPU devices (data 2 x stage 4, 8 micro-batches), the same numbers to float
rounding (checked before the held-out set moved to heldout_rng, on the identical training stream):
  XLA_FLAGS=--xla_force_host_platform_device_count=8 python -m launch.train --config configs/gpipe.py \
    --workdir runs/gpipe_k4 --config.mesh.data=2 --config.mesh.stage=4 --config.pipeline.microbatches=8

Variants:
  fashion_mnist  real Fashion-MNIST (`apt-get install -y dataset-fashion-mnist`), 8 blocks of 16
                 channels at 14x14, 120 steps of batch 32 from the 60k training images (shuffled
                 each epoch by core.data), scored on the first 1,984 test images (62 batches of 32).
                 Pipelined (K=4, M=8) and unpipelined runs from the same seed give the same loss
                 curve (to 6e-4) and test accuracy (0.341 after this tiny budget; loss 1.859):
                 papers/gpipe/README.md.
  deep           paper-style depth for a pod: 64 blocks of 256 channels at 28x28, K=8 stages, M=32
                 micro-batches (GPipe's bubble (K-1)/(M+K-1) = 18%), bfloat16.
Eval batches have batch_size rows (data.eval_examples is rounded down to whole batches).
Parameters are stored stage-stacked ([K, blocks/K, ...]), so a checkpoint resumes only with the same
mesh.stage. Benchmark of the schedule (bubble, FLOPs, memory): `python -m papers.gpipe.benchmark`.
"""
from configs.common import base_config

VARIANTS = ("fashion_mnist", "deep")


def get_config(arg=None):
  c = base_config()
  c.task = "papers.gpipe.task:ImageClassificationTask"
  c.total_steps = 300
  c.batch_size = 32
  c.log_every = 50
  c.eval_every = 100
  c.checkpoint_every = 100

  c.data.source = "synthetic"
  c.data.dir = "/usr/share/datasets/fashion-mnist"
  c.data.image_size = 16
  c.data.num_classes = 10
  c.data.eval_examples = 512

  c.model.channels = 16
  c.model.num_blocks = 8
  c.model.groups = 8
  c.model.stem_stride = 1

  c.optimizer.name = "adamw"
  c.optimizer.learning_rate = 2e-3
  c.optimizer.schedule = "warmup_cosine"
  c.optimizer.warmup_steps = 30
  c.optimizer.weight_decay = 1e-4
  c.pipeline.microbatches = 1
  c.pipeline.remat = True

  if arg == "fashion_mnist":
    c.data.source = "fashion_mnist"
    c.data.eval_examples = 2000
    c.total_steps = 120
    c.log_every = 20
    c.eval_every = 120
    c.checkpoint_every = 120
    c.model.stem_stride = 2
  elif arg == "deep":
    c.data.source = "fashion_mnist"
    c.data.eval_examples = 10_000
    c.total_steps = 20_000
    c.batch_size = 512
    c.eval_every = 2000
    c.checkpoint_every = 2000
    c.model.channels = 256
    c.model.num_blocks = 64
    c.model.groups = 32
    c.mesh.stage = 8
    c.pipeline.microbatches = 32
    c.dtype = "bfloat16"
  elif arg not in (None, ""):
    raise ValueError(f"unknown variant {arg!r}; use fashion_mnist or deep")
  return c
