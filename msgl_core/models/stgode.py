"""STGODE baseline (``STGODE``, docs/methods.md §8.1): causal temporal convolutions around a continuous graph ODE.

Reference: Z. Fang, Q. Long, G. Song, K. Xie, "Spatial-Temporal Graph ODE Networks for Traffic Flow
Forecasting", KDD 2021, arXiv:2106.12931 (official code: ``square-coder/STGODE``).

What we changed from the paper (a 12-step traffic forecaster):

* one output per node and day (a per-day MLP) instead of an MLP over the flattened input window, so
  the time length is free;
* only the spatial branch is kept, and only one of its copies: the semantic branch on a DTW
  similarity graph is left out (we have no such graph), and so is the element-wise max over three
  parallel spatial branches of the official code;
* the ODE function drops the time-mixing term ``H W_2`` of the official ``ODEFunc``: ``W_2`` is a
  (window, window) matrix, so it fixes the window length and lets every day see the later ones;
* the ODE is integrated over τ ∈ [0, 1] with one fixed RK4 step (``torchdiffeq.odeint``,
  :data:`ODE_METHOD`, :data:`ODE_STEP`), so the cost is predictable, instead of adaptive ``dopri5``
  over [0, 6];
* ``LayerNorm`` over channels instead of ``BatchNorm2d`` over nodes, and no dropout.

Every temporal convolution is causal (left-padded), and the ODE acts on each day separately, so the
prediction for day t only sees days <= t.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import SimpleConv
from torchdiffeq import odeint

from msgl_core.graph.pyg import edges, sparse_operator

#: Dilations of each temporal convolution stack (kernel 2); a block's receptive field is 1 + 2 * 7 = 15 days.
DILATIONS = (1, 2, 4)
#: Fixed-step solver of ``torchdiffeq.odeint`` and its step over τ ∈ [0, 1]: one RK4 step (four graph
#: propagations per ODE block). At initialisation it is within 4e-4 (relative) of an adaptive dopri5
#: solution; two steps would be ~20x closer but cost 1.8x as much per window.
ODE_METHOD = "rk4"
ODE_STEP = 1.0


class STGODE(nn.Module):
    r"""STGODE on one fixed graph: two ST blocks and a per-day ``MLP(hidden -> hidden -> 1)``.

    Each block is ``LayerNorm(TCN(ReLU(ODE(TCN(x)))))``, where TCN is a stack of causal dilated
    convolutions with a residual connection and the ODE block integrates, from :math:`H(0) = H_0`,

    .. math::
        \frac{dH}{d\tau} = \frac{\sigma(\alpha)}{2} \odot A H - H + H W - H + H_0, \qquad
        W = W' \,\mathrm{diag}(\mathrm{clamp}(d, 0, 1))\, W'^\top

    and returns :math:`\mathrm{ReLU}(H(1))`. :math:`\alpha` has one entry per node, and :math:`W'`
    (initialised to the identity) and :math:`d` (to ones) mix channels, as in the official
    ``ODEFunc``. The propagation :math:`A H` is a PyG :class:`~torch_geometric.nn.conv.SimpleConv`
    (``aggr="sum"`` with edge weights) run on every day at once through a sparse CSR operator.

    The graph is stored as non-persistent ``edge_index`` / ``edge_weight`` buffers (PyG convention:
    messages go from ``edge_index[0]`` to ``edge_index[1]``, so the operator is :math:`A H`). They move
    with ``.to(device)`` but are not in the ``state_dict``.

    Args:
        in_features: number of input features F per node and day.
        adjacency: (nodes, nodes) row-stochastic adjacency, dense or sparse (see
            :func:`msgl_core.graph.updown_adjacency` and :func:`msgl_core.graph.to_sparse`).
        hidden: channels H of every layer.

    Shapes:
        x: (nodes, time, in_features), standardised inputs; time steps are days, time >= 1.
        returns: (nodes, time, 1), standardised water temperature; day t depends on days t-28..t only.
    """

    edge_index: Tensor
    edge_weight: Tensor

    def __init__(self, in_features: int, adjacency: Tensor, hidden: int = 20) -> None:
        super().__init__()
        self.in_features = in_features
        self.nodes = adjacency.shape[0]
        edge_index, edge_weight = edges(adjacency)
        self.register_buffer("edge_index", edge_index, persistent=False)
        self.register_buffer("edge_weight", edge_weight, persistent=False)
        self.blocks = nn.ModuleList([_ODEBlock(in_features, hidden, self.nodes), _ODEBlock(hidden, hidden, self.nodes)])
        self.output = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x: Tensor) -> Tensor:
        """Predict every node and day; see the class docstring for shapes."""
        if x.ndim != 3 or x.shape[0] != self.nodes or x.shape[2] != self.in_features:
            raise ValueError(f"x must be ({self.nodes}, time, {self.in_features}), got {tuple(x.shape)}")
        operator = sparse_operator(self.edge_index, self.edge_weight, self.nodes)
        h = x
        for block in self.blocks:
            h = block(h, operator)
        return self.output(h)


class _ODEBlock(nn.Module):
    """Causal TCN -> graph ODE -> causal TCN -> LayerNorm (the official ``STGCNBlock``)."""

    def __init__(self, in_channels: int, hidden: int, nodes: int) -> None:
        super().__init__()
        self.temporal_in = _TemporalConvNet(in_channels, hidden)
        self.temporal_out = _TemporalConvNet(hidden, hidden)
        self.propagate = SimpleConv(aggr="sum")
        self.alpha = nn.Parameter(torch.full((nodes,), 0.8))
        self.channel_weight = nn.Parameter(torch.eye(hidden))
        self.channel_scale = nn.Parameter(torch.ones(hidden))
        self.norm = nn.LayerNorm(hidden)

    def derivative(self, h: Tensor, h0: Tensor, operator: Tensor) -> Tensor:
        """dH/dτ of the official ``ODEFunc`` without its time-mixing term; h, h0: (nodes, time, hidden)."""
        spread = self.propagate(h.flatten(1), operator).view_as(h)  # A H for every day at once
        half_alpha = torch.sigmoid(self.alpha)[:, None, None] / 2
        scale = self.channel_scale.clamp(0.0, 1.0)
        weight = (self.channel_weight * scale) @ self.channel_weight.T
        # (σ(α)/2) A H - H + H W - H + H0, with the two -H folded into the channel matrix.
        eye = torch.eye(weight.shape[0], dtype=weight.dtype, device=weight.device)
        return torch.addcmul(h0, half_alpha, spread) + h @ (weight - 2 * eye)

    def forward(self, x: Tensor, operator: Tensor) -> Tensor:
        """x: (nodes, time, in_channels) -> (nodes, time, hidden)."""
        h0 = self.temporal_in(x)
        tau = h0.new_tensor([0.0, 1.0])
        h1 = odeint(
            lambda _tau, h: self.derivative(h, h0, operator),
            h0,
            tau,
            method=ODE_METHOD,
            options={"step_size": ODE_STEP},
        )[-1]
        return self.norm(self.temporal_out(F.relu(h1)))


class _TemporalConvNet(nn.Module):
    """Causal dilated convolutions (kernel 2, ReLU after each) plus a 1x1 residual, then ReLU.

    The official ``TemporalConvNet`` skips its convolutions whenever the input and output channels
    are equal (an operator-precedence slip); here the convolutions always run.
    """

    def __init__(self, in_channels: int, hidden: int) -> None:
        super().__init__()
        self.convs = nn.ModuleList(
            nn.Conv1d(in_channels if i == 0 else hidden, hidden, kernel_size=2, dilation=dilation)
            for i, dilation in enumerate(DILATIONS)
        )
        self.residual = nn.Linear(in_channels, hidden) if in_channels != hidden else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        """x: (nodes, time, in_channels) -> (nodes, time, hidden)."""
        h = x.transpose(1, 2)
        for conv, dilation in zip(self.convs, DILATIONS):
            h = F.relu(conv(F.pad(h, (dilation, 0))))
        # Contiguous (nodes, time, hidden), so the ODE states are too and propagation needs no copies.
        return F.relu(h.transpose(1, 2).contiguous() + self.residual(x))
