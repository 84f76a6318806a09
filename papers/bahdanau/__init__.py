"""Neural machine translation by jointly learning to align and translate (Bahdanau et al. 2015)."""
from papers.bahdanau.model import DecoderStep, Encoder, GRUCell, RNNSearch, beam_search, greedy_decode
