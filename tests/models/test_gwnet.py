"""Graph WaveNet on a hand-built 5-reach Y-shaped river (0->2, 1->2, 2->3, 3->4)."""

import numpy as np
import pytest
import torch

from msgl_core.graph import to_sparse, updown_adjacency
from msgl_core.graph.pyg import sparse_operator
from msgl_core.models.gwnet import GraphWaveNet
from tests.graphs import Y_UPDOWN

NODES, DAYS, FEATURES, HIDDEN = 5, 40, 3, 8
RECEPTIVE_FIELD = 16  # 1 + 1 + 2 + 4 + 8 days


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


def model(adjacency: torch.Tensor | None = None, seed: int = 0) -> GraphWaveNet:
    torch.manual_seed(seed)
    return GraphWaveNet(FEATURES, sparse_adjacency() if adjacency is None else adjacency, hidden=HIDDEN)


def without_adaptive_support(gwnet: GraphWaveNet) -> GraphWaveNet:
    with torch.no_grad():
        for layer in gwnet.graph_convs:
            for parameter in layer.adaptive_conv.parameters():
                parameter.zero_()
    return gwnet


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
    gwnet = model()
    assert {"edge_index", "edge_weight", "backward_edge_index", "backward_edge_weight"} <= dict(
        gwnet.named_buffers()
    ).keys()
    assert not any("edge" in key for key in gwnet.state_dict())
    clone = model(seed=1)
    clone.load_state_dict(gwnet.state_dict())
    x = torch.randn(NODES, DAYS, FEATURES)
    torch.testing.assert_close(clone(x), gwnet(x))


def test_supports_are_the_adjacency_and_its_normalised_transpose() -> None:
    gwnet = model()
    a = dense_adjacency()
    forward = torch.zeros(NODES, NODES).index_put_(tuple(gwnet.edge_index.flip(0)), gwnet.edge_weight)
    backward = torch.zeros(NODES, NODES).index_put_(
        tuple(gwnet.backward_edge_index.flip(0)), gwnet.backward_edge_weight
    )
    torch.testing.assert_close(forward, a)
    torch.testing.assert_close(backward, a.T / a.T.sum(dim=1, keepdim=True))


def test_fused_tagconv_matches_powers_of_the_adjacency() -> None:

    conv = model().graph_convs[0].forward_conv
    with torch.no_grad():
        conv.bias.normal_()
    a = dense_adjacency()
    h = torch.randn(NODES, DAYS, HIDDEN)
    expected = sum(
        lin(torch.einsum("ij,jtc->itc", torch.linalg.matrix_power(a, k), h)) for k, lin in enumerate(conv.lins)
    )
    gwnet = model()
    operator = sparse_operator(gwnet.edge_index, gwnet.edge_weight, NODES)
    torch.testing.assert_close(conv(h, operator), expected + conv.bias)


def test_adaptive_adjacency_is_row_stochastic() -> None:
    adaptive = model().adaptive_adjacency()
    assert adaptive.shape == (NODES, NODES)
    assert (adaptive > 0).all()
    torch.testing.assert_close(adaptive.sum(dim=1), torch.ones(NODES))


def test_every_parameter_gets_a_gradient() -> None:
    gwnet = model()
    gwnet(torch.randn(NODES, DAYS, FEATURES)).square().sum().backward()
    for name, parameter in gwnet.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_information_follows_the_graph() -> None:
    x = torch.randn(NODES, DAYS, FEATURES)
    perturbed = x.clone()
    perturbed[0] += 1.0
    # On the Y river, reach 0 reaches its downstream neighbours 2 and 3.
    gwnet = model()
    change = (gwnet(perturbed) - gwnet(x)).abs().amax(dim=(1, 2))
    assert change[2] > 0 and change[3] > 0
    # Without the learned dense support, nothing crosses between flow-disconnected parts ...
    cut = without_adaptive_support(model(two_component_adjacency()))
    change = (cut(perturbed) - cut(x)).abs().amax(dim=(1, 2))
    assert change[2] > 0 and change[3] > 0
    assert change[1] == 0 and change[4] == 0
    # ... while the adaptive adjacency links every pair of reaches.
    linked = model(two_component_adjacency())
    change = (linked(perturbed) - linked(x)).abs().amax(dim=(1, 2))
    assert change[1] > 0 and change[4] > 0


def test_causal_with_a_16_day_receptive_field() -> None:
    gwnet = model()
    x = torch.randn(NODES, DAYS, FEATURES)
    day = 10
    perturbed = x.clone()
    perturbed[:, day] += 1.0
    change = (gwnet(perturbed) - gwnet(x)).abs().amax(dim=(0, 2))
    assert (change[:day] == 0).all()
    assert change[day] > 0 and change[day + RECEPTIVE_FIELD - 1] > 0
    assert (change[day + RECEPTIVE_FIELD :] == 0).all()


def test_a_few_adam_steps_reduce_the_loss() -> None:
    gwnet = model()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(NODES, DAYS, FEATURES, generator=generator)
    y = torch.randn(NODES, DAYS, 1, generator=generator)
    optimiser = torch.optim.Adam(gwnet.parameters(), lr=0.01)
    losses = []
    for _ in range(10):
        optimiser.zero_grad()
        loss = torch.nn.functional.mse_loss(gwnet(x), y)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]


def test_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="square"):
        GraphWaveNet(FEATURES, torch.ones(NODES, NODES + 1))
    gwnet = model()
    with pytest.raises(ValueError, match="x must be"):
        gwnet(torch.randn(NODES + 1, DAYS, FEATURES))
    with pytest.raises(ValueError, match="x must be"):
        gwnet(torch.randn(NODES, DAYS, FEATURES + 1))
