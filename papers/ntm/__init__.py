"""Neural Turing Machines (Graves, Wayne & Danihelka 2014)."""
from papers.ntm.model import NTM, StackedLSTM, count_params

__all__ = ["NTM", "StackedLSTM", "count_params"]
