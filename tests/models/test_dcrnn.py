"""DCRNN's own equations on the Y river and a chain; the contract it shares is in test_fine_baselines.py."""

import pytest
import torch

from msgl_core.models.dcrnn import DCRNN
from tests.models.fine_helpers import chain_adjacency, perturbation_change, randomised, y_adjacency

NODES, DAYS, FEATURES, HIDDEN = 5, 6, 3, 4


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


@pytest.mark.parametrize("adjacency", [y_adjacency(), chain_adjacency()], ids=["y", "chain"])
def test_matches_the_paper_equations_with_dense_matrices(adjacency: torch.Tensor) -> None:
    model = randomised(DCRNN(FEATURES, adjacency, hidden=HIDDEN)).double()
    x = torch.randn(NODES, DAYS, FEATURES, dtype=torch.float64)
    torch.testing.assert_close(model(x), reference_forward(model, x, adjacency.double()))


def test_diffusion_reaches_two_hops_per_day_along_the_graph() -> None:
    model = randomised(DCRNN(FEATURES, chain_adjacency(), hidden=HIDDEN))
    change = perturbation_change(model, torch.randn(NODES, DAYS, FEATURES), 0, 0)  # reach 0 on day 0
    assert (change[:3, 0] > 0).all()  # day 0: reach 0 and its 1- and 2-hop neighbours
    assert (change[3:, 0] == 0).all()  # ... but nothing further
    assert (change[3:, 1] > 0).all()  # day 1: two more hops


def test_initial_gate_biases() -> None:
    bias = DCRNN(FEATURES, y_adjacency(), hidden=HIDDEN).input_conv.forward_conv.bias
    assert (bias[: 2 * HIDDEN] == 1).all() and (bias[2 * HIDDEN :] == 0).all()
