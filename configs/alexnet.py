"""AlexNet (Krizhevsky, Sutskever, Hinton 2012): ReLU, LRN, overlapping pooling, dropout, augmentation.

Variants (after ':'):
  tiny        (default) a tiny AlexNet on Fashion-MNIST for tests: 40 training images, batch 8
  fashion     the CPU reproduction: the small AlexNet (conv 24-48-64-64-48, dense 256-256, 28 x 28
              input) on all 60,000 Fashion-MNIST training images with the paper's crops, flips
              and PCA colour jitter, batch 64, 300 steps (0.32 epochs), SGD momentum 0.9,
              weight decay 5e-4, lr 0.01 divided by 10 after 200 steps; test error on all
              10,000 test images
  fashion_no_lrn, fashion_no_overlap
              the same run without local response normalisation / with 2x2 stride-2 pooling
              (the ablations of sections 3.3 and 3.4)
  fashion_relu_small, fashion_tanh
              Figure 1: the small net with ReLU / tanh units, no dropout, no augmentation, no
              weight decay (the paper's Figure 1 net used no regularisation), the same lr,
              300 steps, training error on 1,000 training images every 10 steps
  cifar10     the fashion run on CIFAR-10 (TFDS, needs internet), 32 x 32 crops of 4-pixel-padded
              images
  imagenet    paper scale: the ImageNet network (227 x 227 x 3, two towers, 60,965,224
              parameters), ILSVRC-2012 through TFDS (manual download), batch 128, SGD momentum 0.9,
              weight decay 5e-4, lr 0.01 divided by 10 three times over 90 epochs (section 5)

The paper divides the learning rate by 10 "when the validation error rate stopped improving"
(three times in 90 epochs); here a step schedule does it at fixed steps.

Commands (2-core CPU, one at a time):
  python -m launch.train --config configs/alexnet.py:fashion --workdir runs/alexnet/fashion
  python -m launch.train --config configs/alexnet.py:fashion_no_lrn --workdir runs/alexnet/fashion_no_lrn
  python -m launch.train --config configs/alexnet.py:fashion_no_overlap --workdir runs/alexnet/fashion_no_overlap
  python -m launch.train --config configs/alexnet.py:fashion_relu_small --workdir runs/alexnet/fashion_relu_small
  python -m launch.train --config configs/alexnet.py:fashion_tanh --workdir runs/alexnet/fashion_tanh
  (or all, with the Figure 1 plot: python -m launch.reproduce --items alexnet --tier cpu)

Expected result: the measured figures are in papers/alexnet/README.md. The paper: ILSVRC-2012
validation top-1 / top-5 error 40.7% / 18.2% for one CNN (Table 2); ReLU reaches 25% training
error on CIFAR-10 six times faster than tanh (Figure 1); LRN lowers top-1 / top-5 error by
1.4% / 1.2% (section 3.3), overlapping pooling by 0.4% / 0.3% (section 3.4).
"""
from configs.common import base_config

VARIANTS = ("tiny", "fashion", "fashion_no_lrn", "fashion_no_overlap", "fashion_relu_small",
            "fashion_tanh", "cifar10", "imagenet")


def get_config(arg=None):
  variant = arg or "tiny"
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
  c = base_config()
  c.task = "papers.alexnet.task:AlexNetTask"
  c.seed = 0
  c.model.size = "small"
  c.model.activation = "relu"
  c.model.lrn = True
  c.model.overlap_pool = True
  c.model.towers = 1
  c.model.dropout = 0.5

  c.data.name = "fashion_mnist"
  c.data.train_examples = 0           # 0 = the whole training split
  c.data.eval_train_examples = 1_000  # training images scored for the training error
  c.data.test_examples = 0            # 0 = the whole test split
  c.data.eval_batch_size = 1_000
  c.data.augment = True               # random crops and flips (section 4.1)
  c.data.pca_jitter = True            # the PCA colour shift (section 4.1)
  c.data.pca_examples = 0             # training images for the RGB covariance; 0 = all
  c.data.crop = 28                    # crop side; images are zero-padded by `pad` first
  c.data.pad = 2

  # Section 5: SGD, batch 128, momentum 0.9, weight decay 5e-4, lr 0.01 divided by 10 when the
  # validation error stopped improving (a step schedule here).
  c.optimizer.name = "momentum"
  c.optimizer.momentum = 0.9
  c.optimizer.weight_decay = 5e-4
  c.optimizer.learning_rate = 0.01
  c.optimizer.schedule = "step_decay"
  c.optimizer.decay_factor = 0.1

  c.batch_size = 64
  c.total_steps = 300
  c.log_every = 50
  c.eval_every = 300
  c.checkpoint_every = 150
  c.optimizer.decay_start = 200
  c.optimizer.decay_every = 10**9     # one division

  if variant == "tiny":
    c.model.size = "tiny"
    c.data.train_examples = 40
    c.data.eval_train_examples = 16
    c.data.test_examples = 16
    c.data.eval_batch_size = 16
    c.data.pca_examples = 40
    c.batch_size = 8
    c.total_steps = 20
    c.log_every = 10
    c.eval_every = c.checkpoint_every = 20
    c.optimizer.decay_start = 10
  elif variant == "fashion_no_lrn":
    c.model.lrn = False
  elif variant == "fashion_no_overlap":
    c.model.overlap_pool = False
  elif variant in ("fashion_relu_small", "fashion_tanh"):
    c.model.activation = "tanh" if variant == "fashion_tanh" else "relu"
    c.model.dropout = 0.0
    c.data.augment = False
    c.optimizer.weight_decay = 0.0
    c.optimizer.schedule = "constant"
    c.data.test_examples = 1_000
    c.total_steps = 300
    c.eval_every = 10
    c.log_every = 10
    c.checkpoint_every = 100
  elif variant == "cifar10":
    c.data.name = "cifar10"
    c.data.crop, c.data.pad = 32, 4
  elif variant == "imagenet":
    c.model.size = "imagenet"
    c.model.towers = 2
    c.data.name = "imagenet2012"
    c.data.crop, c.data.pad = 227, 0
    c.data.eval_train_examples = 10_000
    c.data.eval_batch_size = 256
    c.data.pca_examples = 10_000       # the paper used the whole training set
    c.batch_size = 128
    steps_per_epoch = 1_281_167 // 128
    c.total_steps = 90 * steps_per_epoch  # "roughly 90 cycles through the training set"
    c.optimizer.decay_start = 30 * steps_per_epoch
    c.optimizer.decay_every = 30 * steps_per_epoch
    c.log_every = 500
    c.eval_every = c.checkpoint_every = 10_000
  return c
