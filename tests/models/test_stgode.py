"""STGODE on a hand-built 5-reach Y-shaped river (0->2, 1->2, 2->3, 3->4)."""

from functools import partial

import numpy as np
import pytest
import torch
from torchdiffeq import odeint

from msgl_core.graph import to_sparse, updown_adjacency
from msgl_core.models.stgode import ODE_METHOD, ODE_STEP, STGODE
from tests.graphs import Y_UPDOWN

NODES, DAYS, FEATURES, HIDDEN = 5, 40, 3, 8
RECEPTIVE_FIELD = 29  # four causal stacks of dilations 1, 2, 4 (kernel 2): 1 + 4 * 7 days


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


def model(adjacency: torch.Tensor | None = None, seed: int = 0) -> STGODE:
    torch.manual_seed(seed)
    return STGODE(FEATURES, sparse_adjacency() if adjacency is None else adjacency, hidden=HIDDEN)


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
    stgode = model()
    assert {"edge_index", "edge_weight"} <= dict(stgode.named_buffers()).keys()
    assert not any(key in ("edge_index", "edge_weight") for key in stgode.state_dict())
    clone = model(seed=1)
    clone.load_state_dict(stgode.state_dict())
    x = torch.randn(NODES, DAYS, FEATURES)
    torch.testing.assert_close(clone(x), stgode(x))


def test_ode_derivative_matches_the_official_odefunc() -> None:
    stgode = model()
    block = stgode.blocks[1]
    with torch.no_grad():
        block.alpha.normal_()
        block.channel_weight.add_(0.3 * torch.randn(HIDDEN, HIDDEN))
        block.channel_scale.uniform_(-0.5, 1.5)  # clamped to [0, 1]
    h, h0 = torch.randn(NODES, DAYS, HIDDEN), torch.randn(NODES, DAYS, HIDDEN)
    alpha = torch.sigmoid(block.alpha)[:, None, None]
    d = block.channel_scale.clamp(0, 1)
    w = block.channel_weight @ torch.diag(d) @ block.channel_weight.T
    expected = alpha / 2 * torch.einsum("ij,jtc->itc", dense_adjacency(), h) - h + h @ w - h + h0
    operator = dense_adjacency().to_sparse_csr()
    torch.testing.assert_close(block.derivative(h, h0, operator), expected)


def test_fixed_step_solution_is_close_to_an_accurate_one() -> None:
    stgode = model()
    block = stgode.blocks[1]
    h0 = torch.randn(NODES, DAYS, HIDDEN)
    operator = dense_adjacency().to_sparse_csr()
    tau = torch.tensor([0.0, 1.0])
    derivative = partial(block.derivative, h0=h0, operator=operator)
    accurate = odeint(lambda _t, h: derivative(h), h0, tau, rtol=1e-7, atol=1e-7)[-1]
    fixed = odeint(lambda _t, h: derivative(h), h0, tau, method=ODE_METHOD, options={"step_size": ODE_STEP})[-1]
    torch.testing.assert_close(fixed, accurate, rtol=0, atol=5e-3)


def test_every_parameter_gets_a_gradient() -> None:
    stgode = model()
    with torch.no_grad():  # inside (0, 1), so that the clamp passes gradients
        for block in stgode.blocks:
            block.channel_scale.uniform_(0.2, 0.8)
    stgode(torch.randn(NODES, DAYS, FEATURES)).square().sum().backward()
    for name, parameter in stgode.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_information_follows_the_graph() -> None:
    x = torch.randn(NODES, DAYS, FEATURES)
    perturbed = x.clone()
    perturbed[0] += 1.0
    stgode = model()
    change = (stgode(perturbed) - stgode(x)).abs().amax(dim=(1, 2))
    assert change[2] > 0 and change[3] > 0
    cut = model(two_component_adjacency())
    change = (cut(perturbed) - cut(x)).abs().amax(dim=(1, 2))
    assert change[2] > 0 and change[3] > 0
    assert change[1] == 0 and change[4] == 0


def test_causal_with_a_29_day_receptive_field() -> None:
    stgode = model()
    x = torch.randn(NODES, DAYS + 20, FEATURES)
    day = 5
    perturbed = x.clone()
    perturbed[:, day] += 1.0
    change = (stgode(perturbed) - stgode(x)).abs().amax(dim=(0, 2))
    assert (change[:day] == 0).all()
    assert change[day] > 0 and change[day + RECEPTIVE_FIELD - 1] > 0
    assert (change[day + RECEPTIVE_FIELD :] == 0).all()


def test_a_few_adam_steps_reduce_the_loss() -> None:
    stgode = model()
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(NODES, DAYS, FEATURES, generator=generator)
    y = torch.randn(NODES, DAYS, 1, generator=generator)
    optimiser = torch.optim.Adam(stgode.parameters(), lr=0.02)
    losses = []
    for _ in range(8):
        optimiser.zero_grad()
        loss = torch.nn.functional.mse_loss(stgode(x), y)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert losses[-1] < 0.9 * losses[0]


def test_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="square"):
        STGODE(FEATURES, torch.ones(NODES, NODES + 1))
    stgode = model()
    with pytest.raises(ValueError, match="x must be"):
        stgode(torch.randn(NODES + 1, DAYS, FEATURES))
    with pytest.raises(ValueError, match="x must be"):
        stgode(torch.randn(NODES, DAYS, FEATURES + 1))
