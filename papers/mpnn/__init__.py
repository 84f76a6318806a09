"""Neural Message Passing for Quantum Chemistry (Gilmer et al. 2017): the enn-s2s MPNN on QM9."""
from papers.mpnn.model import MPNN, EdgeNetwork, Set2Set, node_graph_index
