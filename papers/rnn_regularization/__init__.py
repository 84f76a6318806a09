"""Recurrent Neural Network Regularization (Zaremba, Sutskever & Vinyals 2014): word-level LSTM LMs
with dropout on the non-recurrent connections."""
from papers.rnn_regularization.model import WordLM

__all__ = ["WordLM"]
