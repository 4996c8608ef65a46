"""Tiny fine graphs and helpers shared by the fine-only model tests (RGCN, DCRNN, STGCN, GWNet, ASTGCN, STGODE).

Every adjacency is row-stochastic, ``A[i, j]`` the weight of reach j in reach i's update, built from the
5-reach Y river of :mod:`tests.graphs` (0 -> 2, 1 -> 2, 2 -> 3 -> 4) unless said otherwise.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from msgl_core.graph import to_sparse, updown_adjacency
from tests.graphs import Y_UPDOWN

#: Reaches of the Y river.
Y_NODES = 5


def y_adjacency(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The Y river's dense (5, 5) adjacency."""
    return torch.as_tensor(updown_adjacency(Y_UPDOWN), dtype=dtype)


def y_sparse() -> torch.Tensor:
    """The Y river's adjacency as the sparse CSR tensor the pipeline builds (:func:`to_sparse`)."""
    return to_sparse(updown_adjacency(Y_UPDOWN))


def chain_adjacency(nodes: int = Y_NODES) -> torch.Tensor:
    """Row-stochastic adjacency of a path 0 - 1 - ... - (nodes-1) with self-loops, uneven weights."""
    weight = torch.eye(nodes)
    for i in range(nodes - 1):
        weight[i, i + 1] = 0.7
        weight[i + 1, i] = 0.3
    return weight / weight.sum(dim=1, keepdim=True)


def y_and_pair_adjacency() -> torch.Tensor:
    """The Y river (reaches 0-4) next to an unconnected pair of reaches (5, 6): dense (7, 7)."""
    return torch.block_diag(y_adjacency(), torch.full((2, 2), 0.5))


def cut_y_adjacency() -> torch.Tensor:
    """The Y river cut into two flow-disconnected parts, {0, 2, 3} and {1, 4}: sparse CSR (5, 5)."""
    updown = Y_UPDOWN.copy()
    first, second = [0, 2, 3], [1, 4]
    updown[np.ix_(first, second)] = np.inf
    updown[np.ix_(second, first)] = np.inf
    return to_sparse(updown_adjacency(updown))


def edge_matrix(edge_index: torch.Tensor, values: torch.Tensor, nodes: int = Y_NODES) -> torch.Tensor:
    """(nodes, nodes) matrix M with M[target, source] = value for PyG edges, i.e. the operator x -> M x."""
    return torch.zeros(nodes, nodes, dtype=values.dtype).index_put_(tuple(edge_index.flip(0)), values)


def randomised(model: nn.Module, seed: int = 0) -> nn.Module:
    """Give every parameter, biases included, random values so that each one shapes the output."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(0.5 * torch.randn(parameter.shape, generator=generator))
    return model


def perturbation_change(model: nn.Module, x: torch.Tensor, nodes: object, days: object) -> torch.Tensor:
    """|output change| (nodes, time) after adding 1 to every input feature of ``x[nodes, days]``.

    Computed in float64 (the model is converted in place), so that a tiny response is not lost to rounding:
    a zero change means no path from the input to that output.
    """
    model.double()
    x = x.double()
    perturbed = x.clone()
    perturbed[nodes, days] += 1.0
    with torch.no_grad():
        return (model(perturbed) - model(x)).abs().squeeze(-1)


# Model preparations: move parameters whose initial values make them inert (or hide a code path) off those values.


def spread_edge_attention(astgcn: nn.Module) -> nn.Module:
    """ASTGCN: move the per-edge attention off its initial values, so every edge differs."""
    with torch.no_grad():
        for block in astgcn.blocks:
            block.edge_scale.normal_(1.0, 0.5)
            block.edge_bias.normal_(0.0, 0.5)
    return astgcn


def unclamp_channel_scales(stgode: nn.Module) -> nn.Module:
    """STGODE: channel scales inside (0, 1) (they start at 1), so that their clamp passes gradients."""
    with torch.no_grad():
        for block in stgode.blocks:
            block.channel_scale.uniform_(0.2, 0.8)
    return stgode


# Global mixing: the parts of a model that link every pair of reaches whatever the graph.


def without_adaptive_support(gwnet: nn.Module) -> nn.Module:
    """GraphWaveNet without its learned dense support softmax(ReLU(E1 E2ᵀ)) (its weights zeroed)."""
    with torch.no_grad():
        for layer in gwnet.graph_convs:
            for parameter in layer.adaptive_conv.parameters():
                parameter.zero_()
    return gwnet


def without_node_pooling(astgcn: nn.Module) -> nn.Module:
    """ASTGCN whose temporal attention no longer pools over all nodes (as in the paper; its node weights zeroed)."""
    with torch.no_grad():
        for block in astgcn.blocks:
            block.node_weight.zero_()
    return astgcn
