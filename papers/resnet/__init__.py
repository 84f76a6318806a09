"""ResNet v1 and plain nets (He et al. 2015), pre-activation ResNet v2 (He et al. 2016)."""
from papers.resnet.model import (VARIANTS, BasicBlock, Bottleneck, Model, PreActBasicBlock,
                                 PreActBottleneck, ResNet, scanned_blocks, zero_pad_shortcut)
