"""Flow topology on river graphs: downstream indices, acyclicity, along-channel distances.

A river graph here is a forest in which every node (segment or reach) has at most one
downstream node: ``to_index[i]`` is the position of i's downstream node, or -1 at an outlet.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from scipy.sparse import csgraph

from msgl_core.errors import DataError

OUTLET = -1


def downstream_index(ids: Sequence, to_ids: Sequence, source: str = "<network>",
                     field: str = "to") -> np.ndarray:
    """Positions of each node's downstream node.

    Args:
        ids: (nodes,) unique node ids.
        to_ids: (nodes,) downstream id of each node; ``None``/NaN/0/"" marks an outlet.
        source, field: named in the error message.

    Returns:
        (nodes,) int64, -1 at outlets.

    Raises:
        DataError if ids are duplicated or a downstream id is unknown.
    """
    position = {node: k for k, node in enumerate(ids)}
    if len(position) != len(ids):
        raise DataError(source, field, "duplicated node ids")
    out = np.full(len(ids), OUTLET, dtype=np.int64)
    for k, target in enumerate(to_ids):
        if target is None or target == 0 or target == "" or (isinstance(target, float) and np.isnan(target)):
            continue
        if target not in position:
            raise DataError(source, field, f"node {ids[k]!r} flows to unknown node {target!r}")
        out[k] = position[target]
    return out


def flow_graph(to_index: np.ndarray, weight: np.ndarray | None = None) -> sp.csr_matrix:
    """Directed adjacency (nodes, nodes): entry [i, to_index[i]] = weight[to_index[i]] (default 1)."""
    n = len(to_index)
    src = np.flatnonzero(to_index >= 0)
    dst = to_index[src]
    values = np.ones(len(src)) if weight is None else np.asarray(weight, dtype=np.float64)[dst]
    return sp.csr_matrix((values, (src, dst)), shape=(n, n))


def check_acyclic(to_index: np.ndarray, source: str = "<network>", field: str = "to") -> None:
    """Raise DataError naming the nodes of a cycle if the flow graph has one (self-loops included)."""
    if np.any(to_index == np.arange(len(to_index))):
        node = int(np.flatnonzero(to_index == np.arange(len(to_index)))[0])
        raise DataError(source, field, f"topology has a cycle: node at position {node} flows to itself")
    n_comp, labels = csgraph.connected_components(flow_graph(to_index), directed=True, connection="strong")
    if n_comp < len(to_index):
        sizes = np.bincount(labels)
        members = np.flatnonzero(labels == int(np.argmax(sizes)))
        raise DataError(source, field, f"topology has a cycle through node positions {members[:10].tolist()}")


def updown_from_topology(to_index: np.ndarray, length_m: np.ndarray) -> np.ndarray:
    """Along-channel distance between node outlets, river-dl ``updown`` convention.

    The distance from a node's outlet to its downstream node's outlet is the downstream
    node's length. Computed with ``scipy.sparse.csgraph.shortest_path`` on the directed graph.

    Args:
        to_index: (nodes,) int, -1 at outlets; must be acyclic.
        length_m: (nodes,) m.

    Returns:
        updown: (nodes, nodes) float64 m; ``+d`` if j is downstream of i, ``-d`` if upstream,
        ``inf`` if not flow-connected, 0 on the diagonal (as in USGS delaware-model-prep
        ``calc_distance_functions.R`` and river-dl).
    """
    down = csgraph.shortest_path(flow_graph(to_index, length_m), method="D", directed=True)
    up = down.T
    updown = np.where(np.isfinite(down), down, np.where(np.isfinite(up), -up, np.inf))
    np.fill_diagonal(updown, 0.0)
    return updown


def upstream_mask(to_index: np.ndarray, outlet: int) -> np.ndarray:
    """(nodes,) bool: the nodes that drain to node ``outlet``, the outlet included."""
    order = csgraph.breadth_first_order(flow_graph(to_index).T.tocsr(), outlet, directed=True,
                                        return_predecessors=False)
    mask = np.zeros(len(to_index), dtype=bool)
    mask[order] = True
    return mask
