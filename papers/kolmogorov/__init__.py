"""Kolmogorov complexity and algorithmic randomness (Shen, Uspensky & Vereshchagin 2017):
upper bounds on complexity by compression, an LM + arithmetic coder, normalised compression distance.

Modules (imported by name, e.g. `from papers.kolmogorov import codec`): coder (arithmetic
coding), lm (a trained char LM as a probability model), codec (the .lmz format), compress (the
command line), ncd, experiment.
"""
