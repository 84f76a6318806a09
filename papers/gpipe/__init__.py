"""GPipe (Huang et al. 2019): the schedule is core.pipeline; this is its ResNet-style stack."""
from papers.gpipe.model import PipelinedResNet, ResidualBlock

__all__ = ["PipelinedResNet", "ResidualBlock"]
