"""Graph matrices for the river networks (within-scale adjacency, cross-scale mixing, sparse products, typed
river edges)."""

from msgl_core.graph.adjacency import matmul_operator, mixed_matrix, to_sparse, updown_adjacency
from msgl_core.graph.river import RiverEdges, river_edges

__all__ = ["RiverEdges", "matmul_operator", "mixed_matrix", "river_edges", "to_sparse", "updown_adjacency"]
