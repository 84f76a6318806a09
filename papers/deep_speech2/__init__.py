"""Deep Speech 2 (Amodei et al. 2016): CTC speech recognition with conv + bidirectional GRU layers."""
from papers.deep_speech2.decode import CharNGram, greedy, prefix_beam_search
from papers.deep_speech2.model import DeepSpeech2, MaskedBatchNorm

__all__ = ["CharNGram", "DeepSpeech2", "MaskedBatchNorm", "greedy", "prefix_beam_search"]
