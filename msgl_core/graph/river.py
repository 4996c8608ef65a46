"""Typed river edges between direct flow neighbours, for the dynamic-graph models (docs/dynamic_graph.md).

The within-scale adjacency of RGCN and MSGL (:func:`msgl_core.graph.updown_adjacency`) links every
flow-connected pair. The dynamic graph blocks instead need the river's own edges, each with its
direction and channel length: reach j sends to reach i

* with type :data:`FROM_UPSTREAM` when j flows directly into i,
* with type :data:`FROM_DOWNSTREAM` when i flows directly into j,

so every flow link appears once in each direction. They are derived from the same ``updown`` matrix
of along-channel distances (metres, river-dl / delaware-model-prep sign convention; docs/methods.md
§2.3): in a river tree a node's downstream nodes form a chain, and the nearest of them is the one it
flows into.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

#: Edge types (relations) of the dynamic graph: the two river directions, then the feature-space kNN edges.
FROM_UPSTREAM, FROM_DOWNSTREAM, KNN = 0, 1, 2
RELATIONS = ("from_upstream", "from_downstream", "knn")


@dataclass(frozen=True)
class RiverEdges:
    """Direct flow links of a river graph, in both directions, sorted by (target, source).

    Attributes:
        edge_index: (2, edges) int64, PyG convention: row 0 the source j, row 1 the target i.
        edge_type: (edges,) int64, :data:`FROM_UPSTREAM` or :data:`FROM_DOWNSTREAM` (seen from the target).
        channel_km: (edges,) float32, km along the channel between the two nodes' outlets.
        nodes: number of nodes N.
    """

    edge_index: Tensor
    edge_type: Tensor
    channel_km: Tensor
    nodes: int

    def to(self, device: torch.device | str) -> RiverEdges:
        """The same edges on ``device``."""
        return RiverEdges(self.edge_index.to(device), self.edge_type.to(device), self.channel_km.to(device),
                          self.nodes)

    def permuted(self, order: Tensor) -> RiverEdges:
        """The edges of the graph whose node ``n`` is this graph's node ``order[n]``.

        Shapes:
            order: (nodes,) int64, a permutation of 0 .. nodes-1.
        """
        position = torch.empty_like(order)
        position[order] = torch.arange(self.nodes, device=order.device)
        return _sorted(position[self.edge_index], self.edge_type, self.channel_km, self.nodes)


def river_edges(updown: np.ndarray) -> RiverEdges:
    """Typed edges between direct flow neighbours of a river tree.

    Node i flows into the downstream node j with the smallest ``updown[i, j] > 0``; that link gives the
    edge i -> j of type :data:`FROM_UPSTREAM` and j -> i of type :data:`FROM_DOWNSTREAM`, both with
    channel length ``updown[i, j]`` (the distance between the two outlets, i.e. j's length).

    Shapes:
        updown: (nodes, nodes) float, metres; ``+d`` where j is downstream of i, ``-d`` upstream, ``+inf``
            where not flow-connected, 0 on the diagonal.
        returns: :class:`RiverEdges` with 2 (nodes - outlets) edges.

    Raises:
        ValueError: if ``updown`` is not a square 2-D matrix or contains NaN.
    """
    distance = np.asarray(updown, dtype=np.float64)
    if distance.ndim != 2 or distance.shape[0] != distance.shape[1]:
        raise ValueError(f"updown must be a square (nodes, nodes) matrix, got shape {distance.shape}")
    if np.isnan(distance).any():
        raise ValueError("updown contains NaN; use +inf for unconnected pairs")
    nodes = distance.shape[0]
    downstream = np.where(np.isfinite(distance) & (distance > 0), distance, np.inf)
    has_downstream = np.isfinite(downstream).any(axis=1) if nodes else np.zeros(0, dtype=bool)
    upper = np.flatnonzero(has_downstream)
    lower = downstream[upper].argmin(axis=1)
    km = torch.as_tensor(np.concatenate([downstream[upper, lower]] * 2) / 1000.0, dtype=torch.float32)
    index = torch.as_tensor(np.stack([np.concatenate([upper, lower]), np.concatenate([lower, upper])]),
                            dtype=torch.int64)
    kinds = torch.as_tensor([FROM_UPSTREAM] * len(upper) + [FROM_DOWNSTREAM] * len(upper), dtype=torch.int64)
    return _sorted(index.reshape(2, -1), kinds, km, nodes)


def _sorted(edge_index: Tensor, edge_type: Tensor, channel_km: Tensor, nodes: int) -> RiverEdges:
    order = torch.argsort(edge_index[1] * max(nodes, 1) + edge_index[0], stable=True)
    return RiverEdges(edge_index[:, order], edge_type[order], channel_km[order], nodes)
