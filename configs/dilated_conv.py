"""Dilated convolutions for semantic segmentation (Yu & Koltun 2016): front end + context module.

Variants (after ':'):
  tiny             (default) a tiny front end + basic context module on 32 x 32 canvases: the
                   test of every config
  front_end        the local front end alone (conv1-conv3 and 3 pools of the scaled-down VGG,
                   fc6 as a 1x1: each class score reads a 30 x 30 pixel window) on 64 x 64
                   canvases of 1-3 Fashion-MNIST items drawn 32-64 pixels wide (11 classes),
                   Adam 1e-3, batch 16, 800 steps
  front_end_basic  the basic context module (identity init) on top of the front end of the
                   front_end run (model.init_from, its newest checkpoint), which stays fixed:
                   400 steps of the module alone with the paper's SGD, momentum 0.9, lr 1e-3
                   (section 4's second stage)
  front_end_large  the same with the large context module (generalised identity init)
                   (--config.model.init_from= --config.model.train_front_end=True trains a
                   context variant end to end from scratch instead; --config.model.front_end=small
                   and --config.data.canvas.{min_objects=2,max_objects=4,min_side=16,max_side=40}
                   give the first setup, where the front end's 142 x 142 window already covers
                   the whole canvas)
  voc_paper        paper scale: VGG-16 front end + large context module on Pascal VOC 2012
                   (a VOCdevkit folder: --config.data.voc_dir=...), crops of 504 x 504, SGD
                   momentum 0.9, lr 1e-3, 60,000 iterations

Commands (2-core CPU, one at a time):
  python -m launch.train --config configs/dilated_conv.py:front_end --workdir runs/dilated_conv/front_end
  python -m launch.train --config configs/dilated_conv.py:front_end_basic --workdir runs/dilated_conv/front_end_basic
  python -m launch.train --config configs/dilated_conv.py:front_end_large --workdir runs/dilated_conv/front_end_large
  (or all three and the comparison: python -m launch.reproduce --items dilated_conv --tier cpu)

front_end must have finished before the two context variants start (they read its checkpoint).

Expected result: test mIoU of front_end_basic and front_end_large above front_end; the measured
figures are in papers/dilated_conv/README.md. The paper (VOC 2012 validation mIoU): front end
69.8, + basic context 71.3, + large context 72.1.
"""
import ml_collections

from configs.common import base_config

VARIANTS = ("tiny", "front_end", "front_end_basic", "front_end_large", "voc_paper")
CONTEXT = {"tiny": "basic", "front_end": "none", "front_end_basic": "basic",
           "front_end_large": "large", "voc_paper": "large"}


def get_config(arg=None):
  variant = arg or "tiny"
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
  c = base_config()
  c.task = "papers.dilated_conv.task:SegmentationTask"
  c.seed = 0
  # The C class-score channels (11 or 21) are split by no mesh axis.
  c.sharding.rules = tuple(c.sharding.rules) + (("classes", None),)
  # The local front end (a 30 x 30 pixel window per score) on items drawn 32-64 pixels wide:
  # its scores cannot see a whole item, so the context module has something to add. (The
  # small front end sees 142 x 142, all of a 64 x 64 canvas: nothing is left to aggregate.)
  c.model.front_end = "local"
  c.model.context = CONTEXT[variant]
  c.model.dropout = 0.0
  c.model.identity_noise = 1e-3    # eq. 5's sigma
  # Section 4's two stages: a context variant starts from the front end of the run in
  # `init_from` (its newest checkpoint) and, with train_front_end False, trains only the module.
  c.model.init_from = ""
  c.model.train_front_end = True

  c.data.name = "canvases"
  c.data.canvas = ml_collections.ConfigDict(dict(size=64, min_objects=1, max_objects=3, min_side=32,
                                                 max_side=64, threshold=32))
  c.data.train_canvases = 100_000
  c.data.test_canvases = 512
  c.data.eval_batch_size = 128
  c.data.voc_dir = ""
  c.data.crop = 504

  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 1e-3
  c.batch_size = 16
  # Sized for 2 shared CPU cores: a step of the large module takes ~2 s there.
  c.total_steps = 800
  c.log_every = 50
  c.eval_every = 400
  c.checkpoint_every = 400

  if variant in ("front_end_basic", "front_end_large"):
    c.model.init_from = "runs/dilated_conv/front_end"
    c.model.train_front_end = False
    # The module's optimiser in the paper and its released code: SGD, momentum 0.9, lr 1e-3.
    c.optimizer.name = "momentum"
    c.optimizer.momentum = 0.9
    c.total_steps = 400
    c.eval_every = 200
    c.checkpoint_every = 200
  if variant == "tiny":
    c.model.front_end = "tiny"
    c.data.canvas.update(size=32, min_objects=1, max_objects=2, min_side=12, max_side=24)
    c.data.test_canvases = 16
    c.data.eval_batch_size = 16
    c.total_steps = 100
    c.log_every = 10
    c.eval_every = 50
    c.checkpoint_every = 50
  elif variant == "voc_paper":
    c.model.front_end = "vgg16"
    c.model.dropout = 0.5
    c.data.name = "voc2012"
    c.data.eval_batch_size = 8
    c.optimizer.name = "momentum"
    c.optimizer.momentum = 0.9
    c.optimizer.learning_rate = 1e-3
    c.batch_size = 16  # the paper's 14, rounded up so that it splits over 8 or 16 devices
    c.total_steps = 60_000
    c.log_every = 200
    c.eval_every = 5_000
    c.checkpoint_every = 5_000
  return c
