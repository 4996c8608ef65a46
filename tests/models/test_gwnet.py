"""Graph WaveNet's own supports and graph convolution on the Y river; the contract it shares (receptive field,
the adaptive adjacency linking every pair of reaches) is in test_fine_baselines.py."""

import torch

from msgl_core.graph.pyg import sparse_operator
from msgl_core.models.gwnet import GraphWaveNet
from tests.models.fine_helpers import edge_matrix, y_adjacency, y_sparse

NODES, DAYS, FEATURES, HIDDEN = 5, 40, 3, 8


def model() -> GraphWaveNet:
    return GraphWaveNet(FEATURES, y_sparse(), hidden=HIDDEN)


def test_supports_are_the_adjacency_and_its_normalised_transpose() -> None:
    gwnet = model()
    a = y_adjacency()
    torch.testing.assert_close(edge_matrix(gwnet.edge_index, gwnet.edge_weight), a)
    backward = edge_matrix(gwnet.backward_edge_index, gwnet.backward_edge_weight)
    torch.testing.assert_close(backward, a.T / a.T.sum(dim=1, keepdim=True))


def test_fused_tagconv_matches_powers_of_the_adjacency() -> None:
    gwnet = model()
    conv = gwnet.graph_convs[0].forward_conv
    with torch.no_grad():
        conv.bias.normal_()
    h = torch.randn(NODES, DAYS, HIDDEN)
    expected = sum(
        lin(torch.einsum("ij,jtc->itc", torch.linalg.matrix_power(y_adjacency(), k), h))
        for k, lin in enumerate(conv.lins)
    )
    operator = sparse_operator(gwnet.edge_index, gwnet.edge_weight, NODES)
    torch.testing.assert_close(conv(h, operator), expected + conv.bias)


def test_adaptive_adjacency_is_row_stochastic() -> None:
    adaptive = model().adaptive_adjacency()
    assert adaptive.shape == (NODES, NODES)
    assert (adaptive > 0).all()
    torch.testing.assert_close(adaptive.sum(dim=1), torch.ones(NODES))
