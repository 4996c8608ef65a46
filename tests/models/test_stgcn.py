"""STGCN on a hand-built 5-reach Y-shaped river (0->2, 1->2, 2->3, 3->4) and a few other tiny graphs."""

import pytest
import torch

from msgl_core.graph import to_sparse, updown_adjacency
from msgl_core.models.stgcn import STGCN
from tests.graphs import Y_UPDOWN

NODES, DAYS, FEATURES, HIDDEN = 5, 12, 3, 8
RECEPTIVE_FIELD = 9  # four kernel-3 temporal convolutions: the day itself and 8 before it


@pytest.fixture(autouse=True)
def _seed() -> None:
    """Fixed initial weights and inputs: every test is deterministic."""
    torch.manual_seed(0)


def y_adjacency(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.as_tensor(updown_adjacency(Y_UPDOWN), dtype=dtype)


def chain_adjacency(nodes: int = NODES) -> torch.Tensor:
    """Row-stochastic adjacency of a path 0 - 1 - ... - (nodes-1) with self-loops, uneven weights."""
    weight = torch.eye(nodes)
    for i in range(nodes - 1):
        weight[i, i + 1] = 0.7
        weight[i + 1, i] = 0.3
    return weight / weight.sum(dim=1, keepdim=True)


def two_component_adjacency() -> torch.Tensor:
    """The Y river (reaches 0-4) next to an unconnected pair of reaches (5, 6)."""
    return torch.block_diag(y_adjacency(), torch.full((2, 2), 0.5))


def perturbation_change(model: STGCN, node: int, day: int) -> torch.Tensor:
    """|output change| (nodes, time) after adding 1 to every input feature of one node on one day."""
    x = torch.randn(model.nodes, DAYS, FEATURES)
    perturbed = x.clone()
    perturbed[node, day] += 1.0
    return (model(perturbed) - model(x)).abs().squeeze(-1)


@pytest.mark.parametrize(("days", "hidden"), [(1, HIDDEN), (2, HIDDEN), (7, HIDDEN), (7, FEATURES - 1)])
def test_output_shape(days: int, hidden: int) -> None:
    model = STGCN(FEATURES, to_sparse(updown_adjacency(Y_UPDOWN)), hidden=hidden)
    assert model(torch.randn(NODES, days, FEATURES)).shape == (NODES, days, 1)


@pytest.mark.parametrize("layout", ["csr", "coo"])
def test_sparse_and_dense_adjacency_agree(layout: str) -> None:
    dense = y_adjacency()
    sparse = to_sparse(dense.numpy()) if layout == "csr" else dense.to_sparse()
    from_dense = STGCN(FEATURES, dense, hidden=HIDDEN)
    from_sparse = STGCN(FEATURES, sparse, hidden=HIDDEN)
    from_sparse.load_state_dict(from_dense.state_dict())
    x = torch.randn(NODES, DAYS, FEATURES)
    torch.testing.assert_close(from_sparse(x), from_dense(x))


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
    torch.testing.assert_close(gated(z), (values + residual) * torch.sigmoid(gates))


def test_every_parameter_receives_a_gradient() -> None:
    model = STGCN(FEATURES, y_adjacency(), hidden=HIDDEN)
    out = model(torch.randn(NODES, DAYS, FEATURES))
    (out * torch.randn_like(out)).sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_graph_reach_is_one_hop_per_block() -> None:
    change = perturbation_change(STGCN(FEATURES, chain_adjacency(), hidden=HIDDEN), node=0, day=0)
    assert (change[:3].sum(dim=1) > 0).all()  # reach 0 and its 1- and 2-hop neighbours
    assert change[2, 0] > 0  # two hops on the same day
    assert (change[3:] == 0).all()  # two blocks: nothing further, on any day


def test_upstream_input_reaches_downstream_but_not_another_component() -> None:
    change = perturbation_change(STGCN(FEATURES, two_component_adjacency(), hidden=HIDDEN), node=0, day=0)
    assert change[4, 0] > 0 and change[4, 1:].sum() > 0  # the outlet reach 4, that day and later
    assert (change[5:] == 0).all()  # the unconnected pair never


def test_causal_with_a_nine_day_receptive_field() -> None:
    model = STGCN(FEATURES, y_adjacency(), hidden=HIDDEN)
    change = perturbation_change(model, node=2, day=1)
    assert (change[:, 0] == 0).all()  # the day before
    assert (change[2, 1:5] > 0).all()  # the day itself and the next ones
    assert change[:, RECEPTIVE_FIELD].sum() > 0  # 8 days later
    assert (change[:, 1 + RECEPTIVE_FIELD :] == 0).all()  # nothing later


def test_a_few_adam_steps_reduce_the_loss() -> None:
    model = STGCN(FEATURES, y_adjacency(), hidden=HIDDEN)
    x, target = torch.randn(NODES, DAYS, FEATURES), torch.randn(NODES, DAYS, 1)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.02)
    losses = []
    for _ in range(30):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.8 * losses[0]


def test_state_dict_holds_only_weights_and_transfers_to_another_graph() -> None:
    model = STGCN(FEATURES, y_adjacency(), hidden=HIDDEN)
    state = model.state_dict()
    assert set(state) == {name for name, _ in model.named_parameters()}
    assert {name for name, _ in model.named_buffers()} == {"edge_index", "edge_weight"}
    clone = STGCN(FEATURES, to_sparse(updown_adjacency(Y_UPDOWN)), hidden=HIDDEN)
    clone.load_state_dict(state)
    x = torch.randn(NODES, DAYS, FEATURES)
    torch.testing.assert_close(clone(x), model(x))
    larger = STGCN(FEATURES, two_component_adjacency(), hidden=HIDDEN)
    larger.load_state_dict(state)
    assert larger(torch.randn(7, DAYS, FEATURES)).shape == (7, DAYS, 1)


def test_rejects_mismatched_shapes() -> None:
    model = STGCN(FEATURES, y_adjacency(), hidden=HIDDEN)
    with pytest.raises(ValueError, match="x must be"):
        model(torch.randn(NODES + 1, DAYS, FEATURES))
    with pytest.raises(ValueError, match="x must be"):
        model(torch.randn(NODES, DAYS, FEATURES + 1))
    with pytest.raises(ValueError, match="adjacency must be"):
        STGCN(FEATURES, torch.ones(NODES, NODES + 1))
