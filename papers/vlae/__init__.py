"""Variational Lossy Autoencoder (Chen et al. 2017): local PixelCNN decoder, autoregressive-flow prior."""
from papers.vlae.model import (MADE, VLAE, AutoregressiveFlowPrior, Encoder, GaussianPrior,
                               LocalPixelCNN, MaskedConv, importance_sampled_log_likelihood,
                               made_masks, pixelcnn_mask, receptive_field)
