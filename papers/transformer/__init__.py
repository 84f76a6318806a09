"""Attention Is All You Need (Vaswani et al. 2017) and The Annotated Transformer (Rush 2018)."""
from papers.transformer.model import (SIZES, Transformer, TransformerConfig, TransformerLM, beam_search,
                                      greedy_decode, init_cache, non_embedding_params)

__all__ = ["SIZES", "Transformer", "TransformerConfig", "TransformerLM", "beam_search", "greedy_decode",
           "init_cache", "non_embedding_params"]
