"""STGODE's own graph ODE on the Y river; the contract it shares is in test_fine_baselines.py."""

from functools import partial

import torch
from torchdiffeq import odeint

from msgl_core.models.stgode import ODE_METHOD, ODE_STEP, STGODE
from tests.models.fine_helpers import y_adjacency, y_sparse

NODES, DAYS, FEATURES, HIDDEN = 5, 40, 3, 8


def ode_block() -> torch.nn.Module:
    """The second block of an STGODE on the Y river, whose ODE runs on HIDDEN channels."""
    return STGODE(FEATURES, y_sparse(), hidden=HIDDEN).blocks[1]


def test_ode_derivative_matches_the_official_odefunc() -> None:
    block = ode_block()
    with torch.no_grad():
        block.alpha.normal_()
        block.channel_weight.add_(0.3 * torch.randn(HIDDEN, HIDDEN))
        block.channel_scale.uniform_(-0.5, 1.5)  # clamped to [0, 1]
    h, h0 = torch.randn(NODES, DAYS, HIDDEN), torch.randn(NODES, DAYS, HIDDEN)
    alpha = torch.sigmoid(block.alpha)[:, None, None]
    d = block.channel_scale.clamp(0, 1)
    w = block.channel_weight @ torch.diag(d) @ block.channel_weight.T
    expected = alpha / 2 * torch.einsum("ij,jtc->itc", y_adjacency(), h) - h + h @ w - h + h0
    operator = y_adjacency().to_sparse_csr()
    torch.testing.assert_close(block.derivative(h, h0, operator), expected)


def test_fixed_step_solution_is_close_to_an_accurate_one() -> None:
    block = ode_block()
    h0 = torch.randn(NODES, DAYS, HIDDEN)
    operator = y_adjacency().to_sparse_csr()
    tau = torch.tensor([0.0, 1.0])
    derivative = partial(block.derivative, h0=h0, operator=operator)
    accurate = odeint(lambda _t, h: derivative(h), h0, tau, rtol=1e-7, atol=1e-7)[-1]
    fixed = odeint(lambda _t, h: derivative(h), h0, tau, method=ODE_METHOD, options={"step_size": ODE_STEP})[-1]
    torch.testing.assert_close(fixed, accurate, rtol=0, atol=5e-3)
