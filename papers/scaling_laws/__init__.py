"""Scaling laws for neural language models (Kaplan et al. 2020): fits and analysis.

The sweep itself runs through `launch.sweep` with configs/scaling_laws.py; the model is
the decoder-only Transformer LM of papers.transformer.
"""
from papers.scaling_laws import fit
from papers.scaling_laws.fit import (Fit, bootstrap, compute_frontier, fit_loss_nd,
                                     fit_power_law, holdout_prediction)
