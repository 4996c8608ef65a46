"""DCRNN on a hand-built 5-reach Y-shaped river (0->2, 1->2, 2->3, 3->4) and a few other tiny graphs."""

import pytest
import torch

from msgl_core.graph import to_sparse, updown_adjacency
from msgl_core.models.dcrnn import DCRNN
from tests.graphs import Y_UPDOWN

NODES, DAYS, FEATURES, HIDDEN = 5, 6, 3, 4


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


def randomised(model: DCRNN, seed: int = 0) -> DCRNN:
    """Give every parameter, biases included, random values so that each one shapes the output."""
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(0.5 * torch.randn(parameter.shape, generator=generator))
    return model


def reference_forward(model: DCRNN, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
    """The paper's DCGRU with dense matrices: each diffusion convolution acts on the concatenation [x_t, h]."""
    forward_matrix = adjacency
    backward_matrix = adjacency.T / adjacency.T.sum(dim=1, keepdim=True)
    size = model.hidden

    def weights(conv: torch.nn.Module, rows: slice) -> list[torch.Tensor]:
        return [lin.weight[rows] for lin in conv.lins]

    def diffusion(z: torch.Tensor, rows: slice, hidden_conv: torch.nn.Module) -> torch.Tensor:
        out = torch.zeros(z.shape[0], rows.stop - rows.start, dtype=z.dtype)
        for matrix, x_conv, h_conv in (
            (forward_matrix, model.input_conv.forward_conv, hidden_conv.forward_conv),
            (backward_matrix, model.input_conv.backward_conv, hidden_conv.backward_conv),
        ):
            power = z
            for hop, (w_x, w_h) in enumerate(zip(weights(x_conv, rows), weights(h_conv, slice(None)))):
                if hop:
                    power = matrix @ power
                out = out + power @ torch.cat([w_x, w_h], dim=1).T
        return out + model.input_conv.forward_conv.bias[rows]

    h = torch.zeros(x.shape[0], size, dtype=x.dtype)
    outputs = []
    for t in range(x.shape[1]):
        gates = torch.sigmoid(diffusion(torch.cat([x[:, t], h], dim=1), slice(0, 2 * size), model.gate_conv))
        reset, update = gates.chunk(2, dim=1)
        candidate_input = torch.cat([x[:, t], reset * h], dim=1)
        candidate = torch.tanh(diffusion(candidate_input, slice(2 * size, 3 * size), model.candidate_conv))
        h = update * h + (1 - update) * candidate
        outputs.append(h)
    return model.output(torch.stack(outputs, dim=1))


@pytest.mark.parametrize("days", [1, 2, 7])
def test_output_shape(days: int) -> None:
    model = DCRNN(FEATURES, to_sparse(updown_adjacency(Y_UPDOWN)), hidden=HIDDEN)
    assert model(torch.randn(NODES, days, FEATURES)).shape == (NODES, days, 1)


@pytest.mark.parametrize("adjacency", [y_adjacency(), chain_adjacency()], ids=["y", "chain"])
def test_matches_the_paper_equations_with_dense_matrices(adjacency: torch.Tensor) -> None:
    model = randomised(DCRNN(FEATURES, adjacency, hidden=HIDDEN)).double()
    x = torch.randn(NODES, DAYS, FEATURES, dtype=torch.float64)
    torch.testing.assert_close(model(x), reference_forward(model, x, adjacency.double()))


@pytest.mark.parametrize("layout", ["csr", "coo"])
def test_sparse_and_dense_adjacency_agree(layout: str) -> None:
    dense = y_adjacency()
    sparse = to_sparse(dense.numpy()) if layout == "csr" else dense.to_sparse()
    from_dense = randomised(DCRNN(FEATURES, dense, hidden=HIDDEN))
    from_sparse = DCRNN(FEATURES, sparse, hidden=HIDDEN)
    from_sparse.load_state_dict(from_dense.state_dict())
    x = torch.randn(NODES, DAYS, FEATURES)
    torch.testing.assert_close(from_sparse(x), from_dense(x))


def test_every_parameter_receives_a_gradient() -> None:
    model = DCRNN(FEATURES, y_adjacency(), hidden=HIDDEN)
    out = model(torch.randn(NODES, DAYS, FEATURES))
    (out * torch.randn_like(out)).sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_diffusion_reaches_two_hops_per_day_along_the_graph() -> None:
    model = randomised(DCRNN(FEATURES, chain_adjacency(), hidden=HIDDEN))
    x = torch.randn(NODES, DAYS, FEATURES)
    perturbed = x.clone()
    perturbed[0, 0] += 1.0  # reach 0 on day 0
    change = (model(perturbed) - model(x)).abs().squeeze(-1)
    assert (change[:3, 0] > 0).all()  # day 0: reach 0 and its 1- and 2-hop neighbours
    assert (change[3:, 0] == 0).all()  # ... but nothing further
    assert (change[3:, 1] > 0).all()  # day 1: two more hops


def test_upstream_input_reaches_downstream_but_not_another_component() -> None:
    model = DCRNN(FEATURES, two_component_adjacency(), hidden=HIDDEN)
    x = torch.randn(7, DAYS, FEATURES)
    perturbed = x.clone()
    perturbed[0, 0] += 1.0  # headwater reach 0 on day 0
    change = (model(perturbed) - model(x)).abs().squeeze(-1)
    assert (change[4, 1:] > 0).all()  # the outlet reach 4 on the later days
    assert (change[5:] == 0).all()  # the unconnected pair never


def test_causal_in_time() -> None:
    model = DCRNN(FEATURES, y_adjacency(), hidden=HIDDEN)
    x = torch.randn(NODES, DAYS, FEATURES)
    perturbed = x.clone()
    perturbed[:, 3] += 1.0
    base, changed = model(x), model(perturbed)
    torch.testing.assert_close(changed[:, :3], base[:, :3], rtol=0, atol=0)
    assert (changed[:, 3:] - base[:, 3:]).abs().min() > 0


def test_a_few_adam_steps_reduce_the_loss() -> None:
    model = DCRNN(FEATURES, y_adjacency(), hidden=HIDDEN)
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
    model = randomised(DCRNN(FEATURES, y_adjacency(), hidden=HIDDEN))
    state = model.state_dict()
    assert set(state) == {name for name, _ in model.named_parameters()}
    assert {name for name, _ in model.named_buffers()} >= {"forward_edge_index", "backward_edge_weight"}
    clone = DCRNN(FEATURES, to_sparse(updown_adjacency(Y_UPDOWN)), hidden=HIDDEN)
    clone.load_state_dict(state)
    x = torch.randn(NODES, DAYS, FEATURES)
    torch.testing.assert_close(clone(x), model(x))
    larger = DCRNN(FEATURES, two_component_adjacency(), hidden=HIDDEN)
    larger.load_state_dict(state)
    assert larger(torch.randn(7, DAYS, FEATURES)).shape == (7, DAYS, 1)


def test_initial_gate_biases() -> None:
    bias = DCRNN(FEATURES, y_adjacency(), hidden=HIDDEN).input_conv.forward_conv.bias
    assert (bias[: 2 * HIDDEN] == 1).all() and (bias[2 * HIDDEN :] == 0).all()


def test_rejects_mismatched_shapes() -> None:
    model = DCRNN(FEATURES, y_adjacency(), hidden=HIDDEN)
    with pytest.raises(ValueError, match="x must be"):
        model(torch.randn(NODES + 1, DAYS, FEATURES))
    with pytest.raises(ValueError, match="x must be"):
        model(torch.randn(NODES, DAYS, FEATURES + 1))
    with pytest.raises(ValueError, match="adjacency must be"):
        DCRNN(FEATURES, torch.ones(NODES, NODES + 1))
