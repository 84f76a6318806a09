"""Deep residual networks (He et al. 2015) and pre-activation ResNets (He et al. 2016).

Variants (after ':'):
  resnet20    (default) ResNet-20 on Fashion-MNIST at CPU scale: the first 10,000 training
              images with the paper's augmentation, batch 32, 800 steps, SGD momentum 0.9,
              weight decay 1e-4, lr 0.025 (the paper's 0.1 per 128 images) divided by 10 at
              50% and 75% of the steps (the paper's 32k / 48k of 64k)
  resnet56, plain20, plain56, resnet32, resnet44, resnet110, plain32, ..., preact_resnet56,
  preact_resnet110, preact_resnet164
              the same run with another network of papers/resnet/model.py VARIANTS
              (preact_resnet<6n+2>: the v1 CIFAR net with pre-activated blocks, He 2016 Fig. 4e)
  resnet20_long, resnet56_long, plain20_long, plain56_long (any CPU net + "_long")
              the same run with 3x the steps (2,400) and the same relative schedule: lr / 10
              at steps 1,200 and 1,800
  cifar10_resnet20, cifar10_resnet56, cifar10_resnet110, cifar10_preact_resnet110,
  cifar10_preact_resnet164, cifar10_preact_resnet1001, cifar10_plain20, cifar10_plain56, ...
              paper scale: CIFAR-10 (TFDS, needs internet), batch 128, 64,000 iterations,
              lr 0.1 divided by 10 at 32k and 48k (He 2015 section 4.2, He 2016 section 5).
              ResNet-110 and -1001 (plain, v1 and pre-activation) warm up at lr 0.01 for the
              first 400 iterations, then 0.1 (He 2015 section 4.2: until training error is below
              80%, about 400 iterations; He 2016 the same for 1001 layers).

Options: --config.model.scan_blocks=True (any variant) runs blocks 2..n of each stage under one
nn.scan, the same network compiled once per stage; --config.model.remat=nothing_saveable also
recomputes each scanned block in the backward pass (needs scan_blocks). Measured 2026-11-27 on
a 2-core CPU (shared), papers/resnet/README.md: one training step of preact_resnet1001 (batch 8)
compiles in 13 CPU-s scanned, unrolled not in 5.2 CPU-min (20 min wall); for a v5p-8
(launch.compile) scanned in 232 s, unrolled not in 40 min. But the scanned step ran 6-9x slower
on CPU (preact_resnet164, batch 8) and XLA's estimate of its HBM traffic on v5p is 13x the
unrolled one's, so scanning is off by default: use it to compile-check the deepest nets.

Commands (2-core CPU, one at a time; the degradation experiment of He 2015 Fig. 1 / 6):
  python -m launch.train --config configs/resnet.py:plain20 --workdir runs/resnet/plain20
  python -m launch.train --config configs/resnet.py:plain56 --workdir runs/resnet/plain56
  python -m launch.train --config configs/resnet.py:resnet20 --workdir runs/resnet/resnet20
  python -m launch.train --config configs/resnet.py:resnet56 --workdir runs/resnet/resnet56
  (or all of them: python -m launch.reproduce --items resnet --tier cpu)
The ResNet pair at 3x the steps (2,400; lr / 10 at 1,200 and 1,800), then its curves:
  python -m launch.train --config configs/resnet.py:resnet56_long --workdir runs/resnet/resnet56_long
  python -m launch.train --config configs/resnet.py:resnet20_long --workdir runs/resnet/resnet20_long
  python -m papers.resnet.plot --runs runs/resnet --suffix _long --kinds resnet --out runs/resnet/degradation_long
Pre-activation against the original at 56 layers (He 2016 Table 3), after resnet56:
  python -m launch.train --config configs/resnet.py:preact_resnet56 --workdir runs/resnet/preact_resnet56
  python -m papers.resnet.compare --runs runs/resnet --original resnet56 --preact preact_resnet56

Expected result: train_error of plain56 above plain20 and of resnet56 at or below resnet20; the
measured figures are in papers/resnet/README.md. The _long pair (measured 2026-11-27, 2-core CPU
(shared); ResNet-56 25 CPU-min, ResNet-20 7 CPU-min): train_error 10.2% (resnet56_long) vs
10.1% (resnet20_long), test error 11.75% vs 11.7%: still a tie (the paper has ResNet-56 lower),
well inside the 1.3-point binomial s.e. of the difference on the 1,000 scored images. Pre-activation vs original, 56 layers,
seed 0 (measured 2026-11-27, 2-core CPU (shared), about 8 CPU-min each): test error 19.60% vs
20.00%, -0.40 points, the paper's direction but within one seed's noise (binomial s.e. 1.26
points). The paper (CIFAR-10 test error, He 2015 Table 6): ResNet-20 8.75%, -56 6.97%, -110
6.43%; He 2016 Table 3: ResNet-110 original 6.61% vs pre-act 6.37%, ResNet-164 5.93% vs 5.46%,
pre-act ResNet-1001 4.92%.
"""
from configs.common import base_config
from papers.resnet.model import VARIANTS as NETWORKS

PAPER_PREFIX = "cifar10_"
# "<net>_long": the CPU run with LONG_FACTOR times the steps (the same relative lr schedule).
LONG_SUFFIX = "_long"
LONG_FACTOR = 3
# The depths the papers warm up at lr 0.01 for 400 iterations before 0.1.
WARMED_UP = ("resnet110", "plain110", "preact_resnet110", "preact_resnet1001")
# The named runs (`launch.train --list`); get_config accepts every network of
# papers/resnet/model.py VARIANTS, with or without the cifar10_ prefix.
VARIANTS = ("resnet20", "resnet56", "plain20", "plain56", "resnet32", "resnet44", "resnet110",
            "resnet20_long", "resnet56_long", "plain20_long", "plain56_long", "preact_resnet56",
            "preact_resnet110", "preact_resnet164", "cifar10_resnet20", "cifar10_resnet32",
            "cifar10_resnet44",
            "cifar10_resnet56", "cifar10_resnet110", "cifar10_plain20", "cifar10_plain56",
            "cifar10_preact_resnet110", "cifar10_preact_resnet164", "cifar10_preact_resnet1001")


def get_config(arg=None):
  variant = arg or "resnet20"
  paper = variant.startswith(PAPER_PREFIX)
  network = variant[len(PAPER_PREFIX):] if paper else variant
  long = not paper and network.endswith(LONG_SUFFIX)
  network = network[:-len(LONG_SUFFIX)] if long else network
  if network not in NETWORKS:
    raise ValueError(f"unknown variant {variant!r}; use a network of papers/resnet/model.py "
                     f"({', '.join(NETWORKS)}), optionally prefixed by {PAPER_PREFIX!r} "
                     f"or (CPU runs) suffixed by {LONG_SUFFIX!r}")
  c = base_config()
  c.task = "papers.resnet.task:ImageClassificationTask"
  c.seed = 0
  c.model.variant = network
  # Blocks 2..n of each stage under one nn.scan: compile time flat in depth (model.py).
  c.model.scan_blocks = False
  c.model.remat = ""                  # with scan_blocks: a jax.checkpoint_policies name

  c.data.name = "fashion_mnist"
  c.data.train_examples = 10_000     # 0 = the whole training split
  c.data.eval_train_examples = 1_000  # training images scored for the training error
  c.data.test_examples = 2_000        # 0 = the whole test split
  c.data.eval_batch_size = 1_000
  c.data.augment = True

  # He 2015 section 4.2: SGD, momentum 0.9, weight decay 1e-4, lr 0.1 divided by 10 at 32k
  # and 48k iterations, terminated at 64k.
  c.optimizer.name = "momentum"
  c.optimizer.momentum = 0.9
  c.optimizer.weight_decay = 1e-4
  c.optimizer.learning_rate = 0.1
  c.optimizer.schedule = "step_decay"
  c.optimizer.decay_factor = 0.1

  if paper:
    c.data.name = "cifar10"
    c.data.train_examples = 0
    c.data.eval_train_examples = 10_000
    c.data.test_examples = 0
    c.batch_size = 128
    c.total_steps = 64_000
    c.log_every = 200
    c.eval_every = 4_000
    c.checkpoint_every = 4_000
    if network in WARMED_UP:
      c.optimizer.warmup_steps = 400
      c.optimizer.warmup_learning_rate = 0.01
  else:
    # Sized for 2 shared CPU cores: a 56-layer step of 32 images takes about 1.3 s. The
    # learning rate is the paper's per image: 0.1 for 128 images, 0.025 for 32.
    c.batch_size = 32
    c.optimizer.learning_rate = 0.025
    c.total_steps = 800 * (LONG_FACTOR if long else 1)
    c.log_every = 50
    c.eval_every = 200
    c.checkpoint_every = 200
  c.optimizer.decay_start = c.total_steps // 2
  c.optimizer.decay_every = c.total_steps // 4
  return c
