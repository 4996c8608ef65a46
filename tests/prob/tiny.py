"""The tiny two-scale river of the probabilistic tests, built in code.

Three segments with 1, 2 and 4 reaches (7 reaches) of unequal lengths, Y-shaped: segment 0 (reach 0)
and segment 1 (reaches 1 → 2) join segment 2 (reaches 3 → 4 → 5 → 6, outlet).
"""

from __future__ import annotations

import numpy as np
import torch

from msgl_core.graph.coarsening import CoarseningOperator

PARENT = np.array([0, 1, 1, 2, 2, 2, 2])
LENGTHS = np.array([1500.0, 700.0, 1300.0, 400.0, 900.0, 1100.0, 2000.0])  # m
N_SEGMENTS = 3
#: Directed reach → downstream reach edges, (2, edges).
DOWNSTREAM_EDGES = torch.tensor([[0, 1, 2, 3, 4, 5], [3, 2, 3, 4, 5, 6]])
#: Channel distance of each edge, km (the downstream reach's length).
EDGE_KM = torch.tensor(LENGTHS[[3, 2, 3, 4, 5, 6]] / 1000.0)


def operator(lengths: np.ndarray = LENGTHS) -> CoarseningOperator:
    """C' of the tiny river (optionally with other reach lengths)."""
    return CoarseningOperator.from_crosswalk(PARENT, lengths, N_SEGMENTS)
