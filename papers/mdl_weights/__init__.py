"""Keeping neural networks simple by minimising the description length of the weights
(Hinton & van Camp 1993): noisy weights, bits-back code lengths, an adaptive mixture prior."""
from papers.mdl_weights.model import NoisyMLP
from papers.mdl_weights.task import DescriptionLengthTask

__all__ = ["DescriptionLengthTask", "NoisyMLP"]
