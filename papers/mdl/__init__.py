"""A tutorial introduction to the minimum description length principle (Grünwald 2005):
two-part, Bayes, NML and prequential codes; Markov-order and polynomial-degree selection;
the prequential code length of char LSTMs."""
from papers.mdl.codes import (bayes_bits, complexity_bits, log_complexity, ml_bits, nml_bits,
                              prequential_bits, two_part_bernoulli_bits, two_part_bits)
from papers.mdl.markov import select_order
from papers.mdl.neural import CharLSTM, prequential_code
from papers.mdl.regression import select_degree

__all__ = ["CharLSTM", "bayes_bits", "complexity_bits", "log_complexity", "ml_bits", "nml_bits",
           "prequential_bits", "prequential_code", "select_degree", "select_order",
           "two_part_bernoulli_bits", "two_part_bits"]
