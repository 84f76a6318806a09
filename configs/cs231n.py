"""Stanford CS231n's classifiers (assignments 1-2), trained on Fashion-MNIST (offline) or CIFAR-10.

Variants (after ':'):
  softmax    (default) linear classifier, softmax loss, L2 reg 1e-4; batch 200 (the course's),
             3,000 steps (10 epochs of Fashion-MNIST's 60,000 training images), Adam 1e-3
  svm        the same linear classifier with the multiclass hinge loss
  two_layer  784-100-10 affine-relu-affine, softmax loss, 5,000 steps
  convnet    (conv 3x3 - batch norm - relu - 2x2 max pool) x 2 with 16 and 32 filters, affine 100 -
             relu - dropout (keep 0.75) - affine, softmax; batch 64, 4,000 steps
  cifar10_softmax, cifar10_svm, cifar10_two_layer, cifar10_convnet
             the same models on CIFAR-10 (TFDS, needs internet once), the course's data set, with
             the convnet at 32 / 64 filters and 500 hidden units

Commands (2-core CPU; measured CPU time: kNN 2 min, each linear run and the two-layer net under
1 min, the convnet 5 min):
  python -m launch.train --config configs/cs231n.py:softmax --workdir runs/cs231n/softmax
  python -m launch.train --config configs/cs231n.py:svm --workdir runs/cs231n/svm
  python -m launch.train --config configs/cs231n.py:two_layer --workdir runs/cs231n/two_layer
  python -m launch.train --config configs/cs231n.py:convnet --workdir runs/cs231n/convnet
  python -m papers.cs231n.knn --out runs/cs231n/knn          (not trained: cross-validated k)
  (or all of them: python -m launch.reproduce --items cs231n --tier cpu)

Expected result: Fashion-MNIST test accuracy near the scikit-learn baselines of Xiao, Rasul &
Vollgraf 2017 (Table 3: kNN 85.4%, LinearSVC 83.6%, logistic regression 84.2%, MLP with 100 relu
units 87.1%) and the 2-conv net of the Fashion-MNIST benchmark table (91.6%); the measured
figures are in papers/cs231n/README.md. The course's CIFAR-10 targets (assignment notebooks):
kNN about 27%, SVM about 39%, softmax over 35%, two-layer net over 48%, convnet at least 70%.
"""
from configs.common import base_config

PAPER_PREFIX = "cifar10_"
MODELS = ("softmax", "svm", "two_layer", "convnet")
# A literal tuple: `launch.train --list` reads it without importing the config.
VARIANTS = ("softmax", "svm", "two_layer", "convnet",
            "cifar10_softmax", "cifar10_svm", "cifar10_two_layer", "cifar10_convnet")


def get_config(arg=None):
  variant = arg or "softmax"
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
  cifar = variant.startswith(PAPER_PREFIX)
  name = variant[len(PAPER_PREFIX):] if cifar else variant
  c = base_config()
  c.task = "papers.cs231n.task:CS231nTask"
  c.seed = 0

  c.model.kind = {"softmax": "linear", "svm": "linear"}.get(name, name)
  c.model.loss = "svm" if name == "svm" else "softmax"
  c.model.hidden = 100
  c.model.channels = (16, 32)
  c.model.batchnorm = name == "convnet"
  c.model.dropout_keep = 0.75 if name == "convnet" else 1.0
  c.model.reg = 1e-4              # the course's reg * sum(W * W), on the training loss

  c.data.name = "cifar10" if cifar else "fashion_mnist"
  c.data.train_examples = 0       # 0 = the whole training split
  c.data.eval_train_examples = 1_000
  c.data.test_examples = 0        # 0 = the whole test split
  c.data.eval_batch_size = 1_000
  c.data.augment = False

  # Adam (the course's Solver offers it; the assignments tune SGD learning rates by hand, which
  # a config cannot), the learning rate divided by 10 for the last quarter.
  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 1e-3
  c.optimizer.schedule = "step_decay"
  c.optimizer.decay_factor = 0.1

  c.batch_size = 64 if name == "convnet" else 200
  c.total_steps = {"softmax": 3_000, "svm": 3_000, "two_layer": 5_000, "convnet": 4_000}[name]
  if cifar:
    c.model.hidden = 500 if name == "convnet" else 100
    c.model.channels = (32, 64)
    c.total_steps *= 2
  c.log_every = 100
  c.eval_every = c.total_steps // 4
  c.checkpoint_every = c.total_steps // 4
  c.optimizer.decay_start = c.total_steps * 3 // 4
  c.optimizer.decay_every = c.total_steps
  return c
