"""ASTGCN's own attention and graph convolution on the Y river; the contract it shares (not causal, the
temporal attention pooling over every reach) is in test_fine_baselines.py."""

import torch

from msgl_core.graph.pyg import sparse_operator
from msgl_core.models.astgcn import ASTGCN
from tests.models.fine_helpers import edge_matrix, spread_edge_attention, y_adjacency, y_sparse

NODES, DAYS, FEATURES, HIDDEN = 5, 30, 3, 8


def model() -> ASTGCN:
    return spread_edge_attention(ASTGCN(FEATURES, y_sparse(), hidden=HIDDEN))


def test_edge_buffers_are_the_adjacency() -> None:
    astgcn = model()
    torch.testing.assert_close(edge_matrix(astgcn.edge_index, astgcn.edge_weight), y_adjacency())


def test_attention_matrices_are_normalised() -> None:
    astgcn = model()
    block = astgcn.blocks[0]
    x = torch.randn(NODES, DAYS, FEATURES)
    temporal = block.temporal_attention(x)
    assert temporal.shape == (DAYS, DAYS)
    torch.testing.assert_close(temporal.sum(dim=0), torch.ones(DAYS))  # each day is a convex mix of days
    spatial = block.spatial_attention(x, astgcn.edge_index)
    assert spatial.shape == astgcn.edge_weight.shape and (spatial > 0).all()
    torch.testing.assert_close(edge_matrix(astgcn.edge_index, spatial).sum(dim=1), torch.ones(NODES))


def test_graph_convolution_uses_the_attention_weighted_adjacency() -> None:
    astgcn = model()
    block = astgcn.blocks[0]
    x = torch.randn(NODES, DAYS, FEATURES)
    weight = astgcn.edge_weight * block.spatial_attention(x, astgcn.edge_index)
    a_s = edge_matrix(astgcn.edge_index, weight)
    assert torch.equal(a_s != 0, y_adjacency() != 0)  # S is only used on the edges of A
    conv = block.graph_conv
    expected = sum(
        lin(torch.einsum("ij,jtc->itc", torch.linalg.matrix_power(a_s, k), x)) for k, lin in enumerate(conv.lins)
    )
    torch.testing.assert_close(conv(x, sparse_operator(astgcn.edge_index, weight, NODES)), expected + conv.bias)
