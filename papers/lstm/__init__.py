"""Understanding LSTM networks (Olah 2015; Hochreiter & Schmidhuber 1997): recurrent cells and one scan driver."""
from papers.lstm.cells import CELL_CLASSES, CIFG, GRU, LSTM, PeepholeLSTM, SimpleRNN
from papers.lstm.rnn import CELLS, RNN

__all__ = ["CELLS", "CELL_CLASSES", "CIFG", "GRU", "LSTM", "PeepholeLSTM", "RNN", "SimpleRNN"]
