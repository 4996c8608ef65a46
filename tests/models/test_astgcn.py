"""ASTGCN on a hand-built 5-reach Y-shaped river (0->2, 1->2, 2->3, 3->4)."""

import numpy as np
import pytest
import torch

from msgl_core.graph import to_sparse, updown_adjacency
from msgl_core.graph.pyg import sparse_operator
from msgl_core.models.astgcn import ASTGCN
from tests.graphs import Y_UPDOWN

NODES, DAYS, FEATURES, HIDDEN = 5, 30, 3, 8


def sparse_adjacency() -> torch.Tensor:
    return to_sparse(updown_adjacency(Y_UPDOWN))


def dense_adjacency() -> torch.Tensor:
    return torch.as_tensor(updown_adjacency(Y_UPDOWN), dtype=torch.float32)


def two_component_adjacency() -> torch.Tensor:
    """The Y river cut into two flow-disconnected parts, {0, 2, 3} and {1, 4}."""
    updown = Y_UPDOWN.copy()
    first, second = [0, 2, 3], [1, 4]
    updown[np.ix_(first, second)] = np.inf
    updown[np.ix_(second, first)] = np.inf
    return to_sparse(updown_adjacency(updown))


def model(adjacency: torch.Tensor | None = None, seed: int = 0) -> ASTGCN:
    torch.manual_seed(seed)
    astgcn = ASTGCN(FEATURES, sparse_adjacency() if adjacency is None else adjacency, hidden=HIDDEN)
    with torch.no_grad():  # move the per-edge attention off its initial values, so every edge differs
        for block in astgcn.blocks:
            block.edge_scale.normal_(1.0, 0.5)
            block.edge_bias.normal_(0.0, 0.5)
    return astgcn


def dense(edge_index: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """(nodes, nodes) matrix M with M[target, source] = value, i.e. the operator x -> M x."""
    return torch.zeros(NODES, NODES).index_put_(tuple(edge_index.flip(0)), values)


@pytest.mark.parametrize("days", [1, 2, 17, DAYS])
def test_output_shape(days: int) -> None:
    assert model()(torch.randn(NODES, days, FEATURES)).shape == (NODES, days, 1)


def test_dense_and_sparse_adjacency_agree() -> None:
    x = torch.randn(NODES, DAYS, FEATURES)
    outputs = [
        model(adjacency)(x) for adjacency in (dense_adjacency(), sparse_adjacency(), dense_adjacency().to_sparse())
    ]
    for output in outputs[1:]:
        torch.testing.assert_close(output, outputs[0])


def test_graph_is_a_non_persistent_buffer() -> None:
    astgcn = model()
    assert {"edge_index", "edge_weight"} <= dict(astgcn.named_buffers()).keys()
    assert not any(key in ("edge_index", "edge_weight") for key in astgcn.state_dict())
    torch.testing.assert_close(dense(astgcn.edge_index, astgcn.edge_weight), dense_adjacency())
    clone = model(seed=1)
    clone.load_state_dict(astgcn.state_dict())
    x = torch.randn(NODES, DAYS, FEATURES)
    torch.testing.assert_close(clone(x), astgcn(x))


def test_attention_matrices_are_normalised() -> None:
    astgcn = model()
    block = astgcn.blocks[0]
    x = torch.randn(NODES, DAYS, FEATURES)
    temporal = block.temporal_attention(x)
    assert temporal.shape == (DAYS, DAYS)
    torch.testing.assert_close(temporal.sum(dim=0), torch.ones(DAYS))  # each day is a convex mix of days
    spatial = block.spatial_attention(x, astgcn.edge_index)
    assert spatial.shape == astgcn.edge_weight.shape and (spatial > 0).all()
    torch.testing.assert_close(dense(astgcn.edge_index, spatial).sum(dim=1), torch.ones(NODES))


def test_graph_convolution_uses_the_attention_weighted_adjacency() -> None:
    astgcn = model()
    block = astgcn.blocks[0]
    x = torch.randn(NODES, DAYS, FEATURES)
    weight = astgcn.edge_weight * block.spatial_attention(x, astgcn.edge_index)
    a_s = dense(astgcn.edge_index, weight)
    assert torch.equal(a_s != 0, dense_adjacency() != 0)  # S is only used on the edges of A
    conv = block.graph_conv
    expected = sum(
        lin(torch.einsum("ij,jtc->itc", torch.linalg.matrix_power(a_s, k), x)) for k, lin in enumerate(conv.lins)
    )
    torch.testing.assert_close(conv(x, sparse_operator(astgcn.edge_index, weight, NODES)), expected + conv.bias)


def test_every_parameter_gets_a_gradient() -> None:
    astgcn = model()
    astgcn(torch.randn(NODES, DAYS, FEATURES)).square().sum().backward()
    for name, parameter in astgcn.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_information_follows_the_graph() -> None:
    x = torch.randn(NODES, DAYS, FEATURES)
    perturbed = x.clone()
    perturbed[0] += 1.0
    astgcn = model()
    change = (astgcn(perturbed) - astgcn(x)).abs().amax(dim=(1, 2))
    assert change[2] > 0 and change[3] > 0
    # The temporal attention pools over all nodes (as in the paper), so every reach sees reach 0; without
    # that pooling nothing crosses between flow-disconnected parts of the river.
    cut = model(two_component_adjacency())
    assert (cut(perturbed) - cut(x)).abs().amax(dim=(1, 2))[1] > 0
    with torch.no_grad():
        for block in cut.blocks:
            block.node_weight.zero_()
    change = (cut(perturbed) - cut(x)).abs().amax(dim=(1, 2))
    assert change[2] > 0 and change[3] > 0
    assert change[1] == 0 and change[4] == 0


def test_looks_at_the_whole_window() -> None:
    """Not causal, as in the paper: the last day changes the first day's output."""
    astgcn = model()
    x = torch.randn(NODES, DAYS, FEATURES)
    perturbed = x.clone()
    perturbed[:, -1] += 1.0
    assert (astgcn(perturbed)[:, 0] - astgcn(x)[:, 0]).abs().max() > 0


def test_a_few_adam_steps_reduce_the_loss() -> None:
    astgcn = model()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(NODES, DAYS, FEATURES, generator=generator)
    y = torch.randn(NODES, DAYS, 1, generator=generator)
    optimiser = torch.optim.Adam(astgcn.parameters(), lr=0.02)
    losses = []
    for _ in range(6):
        optimiser.zero_grad()
        loss = torch.nn.functional.mse_loss(astgcn(x), y)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]


def test_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="square"):
        ASTGCN(FEATURES, torch.ones(NODES, NODES + 1))
    astgcn = model()
    with pytest.raises(ValueError, match="x must be"):
        astgcn(torch.randn(NODES + 1, DAYS, FEATURES))
    with pytest.raises(ValueError, match="x must be"):
        astgcn(torch.randn(NODES, DAYS, FEATURES + 1))
