"""Typed river edges (direct flow links) on the hand-built 5-reach Y river (0->2, 1->2, 2->3, 3->4) and a tree."""

import numpy as np
import pytest
import torch

from msgl_core.graph import RiverEdges, river_edges
from msgl_core.graph.river import FROM_DOWNSTREAM, FROM_UPSTREAM

Y_TO_INDEX = np.array([2, 2, 3, 4, -1])
Y_LENGTH_M = np.array([1000.0, 3000.0, 2000.0, 1500.0, 500.0])


def as_set(edges: RiverEdges) -> set[tuple[int, int, int, float]]:
    """{(source, target, type, km)}."""
    pairs = zip(edges.edge_index.T, edges.edge_type, edges.channel_km, strict=True)
    return {(int(s), int(t), int(r), round(float(d), 6)) for (s, t), r, d in pairs}


def test_direct_links_in_both_directions_with_midpoint_channel_km() -> None:
    edges = river_edges(Y_TO_INDEX, Y_LENGTH_M)
    links = [(0, 2, 1.5), (1, 2, 2.5), (2, 3, 1.75), (3, 4, 1.0)]  # (upstream, downstream, km between midpoints)
    expected = {(u, d, FROM_UPSTREAM, km) for u, d, km in links} | {(d, u, FROM_DOWNSTREAM, km) for u, d, km in links}
    assert as_set(edges) == expected
    assert edges.nodes == 5 and edges.edge_index.dtype == torch.int64 and edges.channel_km.dtype == torch.float32
    key = edges.edge_index[1] * 5 + edges.edge_index[0]
    assert (key[1:] > key[:-1]).all()  # sorted by (target, source)


def test_permuted_edges_follow_the_nodes() -> None:
    order = np.array([3, 0, 4, 1, 2])  # new node n is old node order[n]
    position = np.argsort(order)
    permuted_to = np.where(Y_TO_INDEX[order] >= 0, position[Y_TO_INDEX[order]], -1)
    expected = river_edges(permuted_to, Y_LENGTH_M[order])
    assert as_set(river_edges(Y_TO_INDEX, Y_LENGTH_M).permuted(torch.as_tensor(order))) == as_set(expected)


def test_outlets_only_and_bad_input() -> None:
    assert river_edges(np.array([-1, -1, -1]), np.ones(3)).edge_index.shape == (2, 0)
    with pytest.raises(ValueError, match="both be"):
        river_edges(Y_TO_INDEX, Y_LENGTH_M[:4])
    with pytest.raises(ValueError, match="node positions"):
        river_edges(np.array([5, -1]), np.ones(2))
    with pytest.raises(ValueError, match="positive and finite"):
        river_edges(np.array([1, -1]), np.array([1.0, 0.0]))


def test_the_prepared_domain_holds_its_river_and_positions(tiny_data: object) -> None:
    from msgl_core.config import RunConfig
    from msgl_core.data.dataset import prepare
    from tests.tiny_bundle import PERIODS

    prepared = prepare(tiny_data, RunConfig.from_dict({"basin": "drb", "window": 20, **PERIODS}))  # type: ignore[arg-type]
    reaches = len(prepared.reach_ids)
    up = prepared.river_fine.edge_type == FROM_UPSTREAM
    assert prepared.river_fine.nodes == reaches and int(up.sum()) == reaches - 1  # one outlet
    assert prepared.positions_fine.shape == (reaches, 2) and prepared.positions_fine.dtype == torch.float32
    # Consecutive reaches of a segment: their midpoints lie about the channel length apart (straight lines).
    source, target = prepared.river_fine.edge_index[:, up]
    gap = (prepared.positions_fine[source] - prepared.positions_fine[target]).norm(dim=1)
    assert (gap <= prepared.river_fine.channel_km[up] * 1.01).all() and (gap > 0).all()
