"""Graph matrices for the river networks (within-scale adjacency, cross-scale mixing, sparse products)."""

from msgl_core.graph.adjacency import matmul_operator, mixed_matrix, to_sparse, updown_adjacency

__all__ = ["matmul_operator", "mixed_matrix", "to_sparse", "updown_adjacency"]
