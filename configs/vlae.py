"""Variational Lossy Autoencoder (Chen et al. 2017): a VAE with a small-receptive-field
PixelCNN decoder and an autoregressive-flow (AF) prior, on binarized images.

Variants (after ':'):
  tiny              (default) a few-second model on 512 Fashion-MNIST images (the 8-device check)
  fashion_af        CPU scale: dynamically binarized Fashion-MNIST, 32-d code, AF prior (2 MADE
                    layers), a decoder of one 5x5 type-A and two 3x3 type-B masked convolutions
                    (it sees 4 rows up and 4 columns either side), batch 32, Adam 1e-3, 800 steps; test NLL with
                    K = 50 importance samples on the first 512 test images
  fashion_gaussian  the same with a standard Gaussian prior
  digits_af, digits_gaussian
                    the same two on OpenCV's 5,000 handwritten digits (4,000 train / 1,000 test)
  paper             statically binarized MNIST (tfds 'binarized_mnist', needs internet once),
                    64-d code, a larger encoder and decoder, 4 MADE layers of 1024 units,
                    batch 128, 200,000 steps, K = 4096 at test (Burda et al.'s protocol)

Commands (2-core CPU, one at a time; or: python -m launch.reproduce --items vlae --tier cpu):
  python -m launch.train --config configs/vlae.py:fashion_af --workdir runs/vlae/fashion_af
  python -m launch.train --config configs/vlae.py:fashion_gaussian --workdir runs/vlae/fashion_gaussian
  python -m papers.vlae.pictures --config configs/vlae.py:fashion_af --workdir runs/vlae/fashion_af \\
      --out papers/vlae/fashion_af.png

Expected result: the eval `nll` (nats per image) of fashion_af at or below fashion_gaussian's,
with a few nats of `kl` in each (the code is used); the measured figures are in
papers/vlae/README.md. The paper (Chen et al. 2017, Table 1): VLAE with an AF prior, 79.03 nats
on statically binarized MNIST; Table 2: 78.53 nats on dynamically binarized MNIST.
"""
from configs.common import base_config

VARIANTS = ("tiny", "fashion_af", "fashion_gaussian", "digits_af", "digits_gaussian", "paper")


def get_config(arg=None):
  variant = arg or "tiny"
  if variant not in VARIANTS:
    raise ValueError(f"unknown variant {variant!r}; use one of {', '.join(VARIANTS)}")
  c = base_config()
  c.task = "papers.vlae.task:VLAETask"
  c.seed = 0
  c.free_bits = 0.0  # nats for the whole code; 0 = the plain ELBO

  m = c.model
  m.prior = "af"                 # af | gaussian
  m.latent_dim = 32
  m.encoder_channels = (32, 64)
  m.encoder_hidden = 256
  m.decoder_channels = 32
  m.first_kernel = 5             # the type-A masked convolution
  m.kernel = 3                   # each type-B masked convolution
  m.decoder_layers = 2           # window: 5 // 2 + 2 * (3 // 2) = 4 rows up, 4 columns each side
  m.flow_layers = 2
  m.flow_hidden = (256, 256)

  d = c.data
  d.name = "fashion_mnist"       # fashion_mnist | digits | binarized_mnist
  d.train_examples = 0           # 0 = the whole training split
  d.test_examples = 512          # 0 = the whole test split
  d.eval_batch_size = 128
  d.importance_samples = 50      # K of the test NLL

  c.optimizer.name = "adam"
  c.optimizer.learning_rate = 1e-3
  c.optimizer.schedule = "cosine"
  c.optimizer.clip_norm = 100.0
  c.batch_size = 32
  c.total_steps = 800
  c.log_every = 100
  c.eval_every = 800
  c.checkpoint_every = 400

  if variant == "tiny":
    m.latent_dim = 8
    m.encoder_channels = (8, 16)
    m.encoder_hidden = 32
    m.decoder_channels = 8
    m.decoder_layers = 1
    m.flow_layers = 1
    m.flow_hidden = (16,)
    d.train_examples = 512
    d.test_examples = 32
    d.eval_batch_size = 32
    d.importance_samples = 4
    c.batch_size = 16
    c.total_steps = 50
    c.eval_every = 50
    c.checkpoint_every = 50
  elif variant.endswith("_gaussian"):
    m.prior = "gaussian"
  if variant.startswith("digits_"):
    d.name = "digits"
    d.test_examples = 1_000
    d.eval_batch_size = 200
  if variant == "paper":
    d.name = "binarized_mnist"
    d.test_examples = 0
    d.eval_batch_size = 200
    d.importance_samples = 4096
    m.latent_dim = 64
    m.encoder_channels = (64, 128)
    m.encoder_hidden = 512
    m.decoder_channels = 64
    m.decoder_layers = 4
    m.flow_layers = 4
    m.flow_hidden = (1024, 1024)
    c.batch_size = 128
    c.total_steps = 200_000
    c.log_every = 500
    c.eval_every = 20_000
    c.checkpoint_every = 5_000
  return c
