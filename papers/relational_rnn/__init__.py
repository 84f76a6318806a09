"""Relational recurrent neural networks (Santoro et al. 2018): the Relational Memory Core."""
from papers.relational_rnn.model import (LSTMCore, MultiHeadAttention, RelationalMemoryCore,
                                         SequenceClassifier, dot_product_attention)

__all__ = ["LSTMCore", "MultiHeadAttention", "RelationalMemoryCore", "SequenceClassifier",
           "dot_product_attention"]
