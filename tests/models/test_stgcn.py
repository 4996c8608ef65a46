"""STGCN's own layers on the Y river and a chain; the contract it shares is in test_fine_baselines.py."""

import torch

from msgl_core.models.stgcn import STGCN
from tests.models.fine_helpers import chain_adjacency, perturbation_change, y_adjacency

NODES, DAYS, FEATURES, HIDDEN = 5, 12, 3, 8


def test_graph_convolution_is_the_normalised_adjacency_product() -> None:
    adjacency = y_adjacency(torch.float64)
    model = STGCN(FEATURES, adjacency, hidden=HIDDEN).double()
    conv = model.blocks[0].graph_conv
    z = torch.randn(DAYS, NODES, HIDDEN, dtype=torch.float64)
    off_diagonal = adjacency - torch.diag(torch.diagonal(adjacency))
    scale = off_diagonal.sum(dim=0).rsqrt()  # column sums: what each reach sends out
    propagated = (scale[:, None] * off_diagonal * scale[None, :]) @ z
    expected = z @ conv.lins[0].weight.T - propagated @ conv.lins[1].weight.T + conv.bias
    actual = conv(z.transpose(0, 1), model.chebyshev_operator()).transpose(0, 1)
    torch.testing.assert_close(actual, expected, atol=1e-6, rtol=1e-5)  # the Laplacian is computed in float32


def test_temporal_convolution_is_a_causal_gated_linear_unit() -> None:
    gated = STGCN(FEATURES, y_adjacency(), hidden=HIDDEN).blocks[0].temporal_in
    z = torch.randn(DAYS, NODES, FEATURES)
    padded = torch.cat([torch.zeros(2, NODES, FEATURES), z])
    weight = gated.conv.weight  # (2 * HIDDEN, FEATURES, 3), tap 2 is the current day
    conv = sum(padded[k : k + DAYS] @ weight[:, :, k].T for k in range(3)) + gated.conv.bias
    values, gates = conv.chunk(2, dim=-1)
    residual = torch.cat([z, torch.zeros(DAYS, NODES, HIDDEN - FEATURES)], dim=-1)
    out = gated(z.transpose(0, 1)).transpose(0, 1)  # TemporalGLU takes (nodes, time, channels)
    torch.testing.assert_close(out, (values + residual) * torch.sigmoid(gates))


def test_graph_reach_is_one_hop_per_block() -> None:
    model = STGCN(FEATURES, chain_adjacency(), hidden=HIDDEN)
    change = perturbation_change(model, torch.randn(NODES, DAYS, FEATURES), 0, 0)  # reach 0 on day 0
    assert (change[:3].sum(dim=1) > 0).all()  # reach 0 and its 1- and 2-hop neighbours
    assert change[2, 0] > 0  # two hops on the same day
    assert (change[3:] == 0).all()  # two blocks: nothing further, on any day
