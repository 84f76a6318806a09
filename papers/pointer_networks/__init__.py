"""Pointer Networks (Vinyals, Fortunato & Jaitly 2015) and the convex hull, Delaunay and TSP data."""
from papers.pointer_networks.model import PointerNetwork, gather_points, lstm_step
