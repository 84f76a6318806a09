"""Relation Networks (Santoro et al. 2017) and the Sort-of-CLEVR data set."""
from papers.relation_networks.model import (ConvEncoder, MLPHead, RelationNetwork, VisualQA,
                                            cells_as_objects, relation_pairs)
