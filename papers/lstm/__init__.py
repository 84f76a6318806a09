"""Understanding LSTM networks (Olah 2015): five recurrent cells, one scan driver, long-lag tasks."""
from papers.lstm.cells import CELL_CLASSES, CIFG, GRU, LSTM, PeepholeLSTM, SimpleRNN
from papers.lstm.model import LanguageModel, SequenceModel
from papers.lstm.rnn import CELLS, RNN

__all__ = ["CELLS", "CELL_CLASSES", "CIFG", "GRU", "LSTM", "LanguageModel", "PeepholeLSTM", "RNN",
           "SequenceModel", "SimpleRNN"]
