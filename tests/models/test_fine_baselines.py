"""The contract every fine-only model keeps, on the hand-built 5-reach Y river (0->2, 1->2, 2->3, 3->4).

Each model is built as ``Model(in_features, adjacency, hidden)`` and maps x (nodes, time, F) to
(nodes, time, 1). What differs between the models (causality and receptive field, whether the weights
transfer to another graph, which parts link every pair of reaches whatever the graph) is a field of
:class:`Spec`; each model's own file checks its equations.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from msgl_core.graph import to_sparse
from msgl_core.models import ASTGCN, DCRNN, RGCN, STGCN, STGODE, GraphWaveNet
from tests.models.fine_helpers import (
    Y_NODES,
    cut_y_adjacency,
    perturbation_change,
    randomised,
    spread_edge_attention,
    unclamp_channel_scales,
    without_adaptive_support,
    without_node_pooling,
    y_adjacency,
    y_and_pair_adjacency,
    y_sparse,
)

FEATURES = 3
OUTLET = 4  # of the Y river; reach 0 is a headwater


@dataclass(frozen=True)
class Spec:
    """What one model promises, beyond the shared interface."""

    model: type[nn.Module]
    #: Hidden size the tests use (large enough that no unit is dead for the fixed seed).
    hidden: int
    #: Window length the tests use.
    days: int
    #: Its graph buffers: non-persistent, so exactly these and nothing of the state_dict.
    buffers: frozenset[str]
    #: Adam (steps, learning rate, factor the loss must fall by) on random data.
    adam: tuple[int, float, float]
    #: Whether day t's output depends on days <= t only.
    causal: bool = True
    #: Days of input one output day sees (the day itself included); None: all earlier ones (recurrent).
    receptive_field: int | None = None
    #: Whether no parameter is sized by the graph, so the weights run on another river.
    transfers: bool = False
    #: Disables the parts that link every pair of reaches whatever the graph; None: the model has none.
    decouple: Callable[[nn.Module], nn.Module] | None = None
    #: Applied after construction so that every parameter shapes the output.
    prepare: Callable[[nn.Module], nn.Module] | None = None
    #: First day the outlet responds to a headwater input on day 0 (the Y graph links them directly).
    first_outlet_day: int = 0
    #: Whether every reach responds on every day in reach (False where a ReLU can zero single entries).
    every_reach_responds: bool = True
    #: The errors for an input with one reach too many, and for a non-square adjacency.
    wrong_nodes_error: str = "x must be"
    non_square_error: str = "adjacency must be a square"

    def build(self, adjacency: torch.Tensor, seed: int = 0, hidden: int | None = None) -> nn.Module:
        torch.manual_seed(seed)
        model = self.model(FEATURES, adjacency, hidden=self.hidden if hidden is None else hidden)
        return model if self.prepare is None else self.prepare(model)

    def reach_end(self, days: int, first: int = 0) -> int:
        """End (exclusive) of the days that an input on day ``first`` can change in a ``days``-long window."""
        return days if self.receptive_field is None else min(days, first + self.receptive_field)


EDGES = frozenset({"edge_index", "edge_weight"})
BACKWARD_EDGES = frozenset({"backward_edge_index", "backward_edge_weight"})
# Per model: hidden size, window length, graph buffers, Adam (steps, lr, factor), then what sets it apart.
SPECS = {
    "rgcn": Spec(
        RGCN, 4, 6, frozenset({"adjacency"}), (30, 0.02, 0.8), transfers=True,
        first_outlet_day=1,  # graph messages carry h_{t-1}
        wrong_nodes_error=r"adjacency must be \(6, 6\)",
        non_square_error=r"adjacency must be \(5, 5\)",  # checked in forward
    ),
    "dcrnn": Spec(
        DCRNN, 4, 6, frozenset({"forward_edge_index", "forward_edge_weight"}) | BACKWARD_EDGES, (30, 0.02, 0.8),
        transfers=True,
    ),
    "stgcn": Spec(
        STGCN, 8, 12, EDGES, (30, 0.02, 0.8), transfers=True,
        receptive_field=9,  # four kernel-3 temporal convolutions: the day itself and 8 before it
    ),
    "gwnet": Spec(
        GraphWaveNet, 8, 40, EDGES | BACKWARD_EDGES, (10, 0.01, 0.9), decouple=without_adaptive_support,
        receptive_field=16,  # 1 + 1 + 2 + 4 + 8 days
    ),
    "astgcn": Spec(
        ASTGCN, 8, 30, EDGES, (6, 0.02, 0.9), decouple=without_node_pooling, prepare=spread_edge_attention,
        causal=False,  # as in the paper, the temporal attention sees the whole window
    ),
    "stgode": Spec(
        STGODE, 8, 40, EDGES, (8, 0.02, 0.9), prepare=unclamp_channel_scales,
        receptive_field=29,  # four causal stacks of dilations 1, 2, 4 (kernel 2): 1 + 4 * 7 days
        every_reach_responds=False,  # the ODE blocks end in a ReLU
    ),
}  # fmt: skip
CAUSAL = [name for name, spec in SPECS.items() if spec.causal]
NOT_CAUSAL = [name for name, spec in SPECS.items() if not spec.causal]
#: graph: (adjacency, reaches, downstream of headwater reach 0, not flow-connected to reach 0)
COMPONENTS = {
    "y_and_pair": (y_and_pair_adjacency, 7, [2, 3, 4], [5, 6]),
    "cut_y": (cut_y_adjacency, 5, [2, 3], [1, 4]),
}


@pytest.fixture(params=list(SPECS))
def spec(request: pytest.FixtureRequest) -> Spec:
    return SPECS[request.param]


def inputs(spec: Spec, nodes: int = Y_NODES, days: int | None = None) -> torch.Tensor:
    return torch.randn(nodes, spec.days if days is None else days, FEATURES)


@pytest.mark.parametrize(("days", "hidden"), [(1, None), (2, None), (7, None), (17, None), (40, None), (7, 2)])
def test_output_shape(spec: Spec, days: int, hidden: int | None) -> None:
    """Any window length, and a hidden size below the number of input features."""
    model = spec.build(y_sparse(), hidden=hidden)
    assert model(inputs(spec, days=days)).shape == (Y_NODES, days, 1)


@pytest.mark.parametrize("layout", ["csr", "coo"])
def test_sparse_and_dense_adjacency_agree(spec: Spec, layout: str) -> None:
    dense = y_adjacency()
    sparse = to_sparse(dense.numpy()) if layout == "csr" else dense.to_sparse()
    from_dense = randomised(spec.build(dense))
    from_sparse = spec.build(sparse, seed=1)
    from_sparse.load_state_dict(from_dense.state_dict())
    x = inputs(spec)
    torch.testing.assert_close(from_sparse(x), from_dense(x))


def test_every_parameter_receives_a_gradient(spec: Spec) -> None:
    model = spec.build(y_adjacency())
    out = model(inputs(spec))
    (out * torch.randn_like(out)).sum().backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_a_few_adam_steps_reduce_the_loss(spec: Spec) -> None:
    model = spec.build(y_adjacency())
    x, target = inputs(spec), torch.randn(Y_NODES, spec.days, 1)
    steps, lr, factor = spec.adam
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = torch.nn.functional.mse_loss(model(x), target)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < factor * losses[0]


def test_state_dict_holds_only_weights(spec: Spec) -> None:
    """The graph is in non-persistent buffers; the weights alone reproduce the model on the same river."""
    model = randomised(spec.build(y_adjacency()))
    state = model.state_dict()
    assert set(state) == {name for name, _ in model.named_parameters()}
    assert {name for name, _ in model.named_buffers()} == spec.buffers
    clone = spec.build(y_sparse(), seed=1)
    clone.load_state_dict(state)
    x = inputs(spec)
    torch.testing.assert_close(clone(x), model(x))


def test_weights_transfer_to_another_graph_only_when_no_parameter_is_sized_by_it(spec: Spec) -> None:
    model = randomised(spec.build(y_adjacency()))
    larger = spec.build(y_and_pair_adjacency(), seed=1)
    if not spec.transfers:
        with pytest.raises(RuntimeError, match="size mismatch"):
            larger.load_state_dict(model.state_dict())
        return
    larger.load_state_dict(model.state_dict())
    x = inputs(spec, nodes=7)
    out = larger(x)
    assert out.shape == (7, spec.days, 1)
    # The Y river is a component of the larger graph: its reaches get the same predictions as on their own.
    torch.testing.assert_close(out[:Y_NODES], model(x[:Y_NODES]))


def test_rejects_mismatched_shapes(spec: Spec) -> None:
    model = spec.build(y_adjacency())
    with pytest.raises(ValueError, match=spec.wrong_nodes_error):
        model(inputs(spec, nodes=Y_NODES + 1))
    with pytest.raises(ValueError, match="x must be"):
        model(torch.randn(Y_NODES, spec.days, FEATURES + 1))
    with pytest.raises(ValueError, match=spec.non_square_error):  # in the constructor, or else in forward
        spec.build(torch.ones(Y_NODES, Y_NODES + 1))(inputs(spec))


def test_headwater_input_reaches_the_outlet_on_every_day_in_reach(spec: Spec) -> None:
    change = perturbation_change(spec.build(y_sparse()), inputs(spec), 0, 0)  # reach 0 on day 0
    in_reach = change[OUTLET, spec.first_outlet_day : spec.reach_end(spec.days)]
    assert ((in_reach if spec.every_reach_responds else in_reach.amax()) > 0).all()
    assert (change[OUTLET, : spec.first_outlet_day] == 0).all()


@pytest.mark.parametrize("graph", list(COMPONENTS))
def test_upstream_input_reaches_downstream_but_not_another_component(spec: Spec, graph: str) -> None:
    adjacency, nodes, downstream, unconnected = COMPONENTS[graph]
    model = spec.build(adjacency())
    x = inputs(spec, nodes=nodes)
    change = perturbation_change(model, x, 0, 0)  # reach 0 on day 0
    assert (change[downstream].amax(dim=1) > 0).all()
    if spec.decouple is not None:
        # Parts of the model link every pair of reaches: the other component responds too, until they are off.
        assert (change[unconnected].amax(dim=1) > 0).all()
        change = perturbation_change(spec.decouple(model), x, 0, 0)
        assert (change[downstream].amax(dim=1) > 0).all()
    assert (change[unconnected] == 0).all()


@pytest.mark.parametrize("name", CAUSAL)
def test_causal_within_the_receptive_field(name: str) -> None:
    spec = SPECS[name]
    day = 3
    days = spec.days if spec.receptive_field is None else max(spec.days, day + spec.receptive_field + 3)
    change = perturbation_change(spec.build(y_sparse()), inputs(spec, days=days), slice(None), day)
    assert (change[:, :day] == 0).all()  # the days before
    end = spec.reach_end(days, day)
    in_reach = change[:, day:end]
    assert ((in_reach if spec.every_reach_responds else in_reach.amax(dim=0)) > 0).all()
    assert (change[:, end:] == 0).all()  # nothing beyond the receptive field


@pytest.mark.parametrize("name", NOT_CAUSAL)
def test_looks_at_the_whole_window(name: str) -> None:
    spec = SPECS[name]
    change = perturbation_change(spec.build(y_sparse()), inputs(spec), slice(None), -1)
    assert change[:, 0].amax() > 0  # the last day changes the first day's output
