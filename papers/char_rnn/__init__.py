"""The Unreasonable Effectiveness of Recurrent Neural Networks (Karpathy 2015): char-rnn."""
from papers.char_rnn.model import CharRNN, TruncatedBPTT

__all__ = ["CharRNN", "TruncatedBPTT"]
