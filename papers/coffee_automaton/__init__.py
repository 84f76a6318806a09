"""The coffee automaton (Aaronson, Carroll & Ouellette 2014): entropy and apparent complexity."""
from papers.coffee_automaton.automaton import (initial_grid, initial_particles, make_mesh, occupancy,
                                               run_interacting, run_interacting_sharded,
                                               run_noninteracting)
from papers.coffee_automaton.measures import coarse_grained, compressed_size, measure

__all__ = ["coarse_grained", "compressed_size", "initial_grid", "initial_particles", "make_mesh",
           "measure", "occupancy", "run_interacting", "run_interacting_sharded", "run_noninteracting"]
