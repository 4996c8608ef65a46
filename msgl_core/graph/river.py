"""Typed river edges between direct flow neighbours, for the dynamic-graph models (docs/dynamic_graph.md).

The within-scale adjacency of RGCN and MSGL (:func:`msgl_core.graph.updown_adjacency`) links every
flow-connected pair. The dynamic graph blocks instead need the river's own edges, each with its
direction and channel length: reach j sends to reach i

* with type :data:`FROM_UPSTREAM` when j flows directly into i,
* with type :data:`FROM_DOWNSTREAM` when i flows directly into j,

so every flow link appears once in each direction, with the channel length between the two reaches'
midpoints. (The ``updown`` distances of docs/methods.md §2.3 run between outlets, so every tributary of a
reach would be at the same distance from it: the reach's own length.)
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


def river_edges(to_index: np.ndarray, length_m: np.ndarray) -> RiverEdges:
    """Typed edges between direct flow neighbours of a river tree.

    Node i flowing into node j gives the edge i -> j of type :data:`FROM_UPSTREAM` and j -> i of type
    :data:`FROM_DOWNSTREAM`, both with the channel length between the two nodes' midpoints,
    ``(length_i + length_j) / 2``, in km.

    Shapes:
        to_index: (nodes,) int, position of each node's downstream node, -1 at outlets
            (:attr:`msgl_core.data.network.MultiscaleNetwork.reach_to_index`).
        length_m: (nodes,) float, node (reach) lengths, metres.
        returns: :class:`RiverEdges` with 2 (nodes - outlets) edges.

    Raises:
        ValueError: if the shapes differ, an index is out of range, or a length is not positive and finite.
    """
    down = np.asarray(to_index)
    length = np.asarray(length_m, dtype=np.float64)
    nodes = len(down)
    if down.ndim != 1 or length.shape != down.shape:
        raise ValueError(f"to_index and length_m must both be (nodes,), got {down.shape} and {length.shape}")
    if not np.issubdtype(down.dtype, np.integer) or (nodes and (down.min() < -1 or down.max() >= nodes)):
        raise ValueError(f"to_index must hold node positions in [0, {nodes}) or -1 at outlets")
    if not (np.isfinite(length) & (length > 0)).all():
        raise ValueError("length_m must be positive and finite")
    upper = np.flatnonzero(down >= 0)
    lower = down[upper]
    km = torch.as_tensor(np.tile((length[upper] + length[lower]) / 2000.0, 2), dtype=torch.float32)
    index = torch.as_tensor(np.stack([np.concatenate([upper, lower]), np.concatenate([lower, upper])]),
                            dtype=torch.int64)
    kinds = torch.as_tensor([FROM_UPSTREAM] * len(upper) + [FROM_DOWNSTREAM] * len(upper), dtype=torch.int64)
    return _sorted(index, kinds, km, nodes)


def _sorted(edge_index: Tensor, edge_type: Tensor, channel_km: Tensor, nodes: int) -> RiverEdges:
    order = torch.argsort(edge_index[1] * max(nodes, 1) + edge_index[0], stable=True)
    return RiverEdges(edge_index[:, order], edge_type[order], channel_km[order], nodes)
