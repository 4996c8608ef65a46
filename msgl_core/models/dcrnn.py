"""DCRNN baseline: a diffusion-convolutional GRU run over every day, plus a linear read-out.

Reference: Y. Li, R. Yu, C. Shahabi, Y. Liu, "Diffusion Convolutional Recurrent Neural Network:
Data-Driven Traffic Forecasting", ICLR 2018, arXiv:1707.01926 (docs/methods.md §8.1). The benchmark's copy
(river-dl ``MODEL/DCRNN.py``) never registered its recurrent weights, so on a GPU only the read-out
trained (docs/methods.md §8.1); here every weight is a registered parameter of a PyG ``TAGConv``.

What we changed from the paper:

* one DCGRU layer used sequence to sequence: the hidden state of every day goes through
  ``Linear(hidden -> 1)``, in place of the encoder-decoder that forecasts 12 future steps;
* diffusion over K = 2 hops on the forward random-walk matrix A (the given row-stochastic adjacency)
  and the backward one, ``row_normalise(Aᵀ)``, each a ``TAGConv(normalize=False, K=2)``;
* the input half of each diffusion convolution is computed for all days at once before the
  recurrence. The diffusion convolution is linear in its input, so ``DC([x_t, h]) = DC_x(x_t) +
  DC_h(h)`` and this equals the paper's convolution of the concatenation ``[x_t, h]``.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from msgl_core.graph.pyg import SequenceTAGConv, edges, reversed_edges, sparse_operator

_HOPS = 2


class DCRNN(nn.Module):
    r"""Diffusion-convolutional GRU (DCGRU) over all days, then ``Linear(hidden -> 1)`` per day.

    With the forward transition :math:`A` (row-stochastic) and the backward one
    :math:`B = \mathrm{rownorm}(A^\top)`, the diffusion convolution with K = 2 hops is

    .. math::
        \mathrm{DC}(z) = \sum_{k=0}^{2} \left(A^k z\, \Theta^{f}_k + B^k z\, \Theta^{b}_k\right) + b,

    and for each day t, with :math:`h_0 = 0`,

    .. math::
        [r_t, u_t] &= \sigma(\mathrm{DC}_{ru}([x_t, h_{t-1}])) \\
        c_t &= \tanh(\mathrm{DC}_{c}([x_t, r_t \odot h_{t-1}])) \\
        h_t &= u_t \odot h_{t-1} + (1 - u_t) \odot c_t .

    The weights are PyG's ``TAGConv`` defaults; the gate biases start at 1 and the candidate bias at 0,
    as in the authors' code. No parameter depends on the number of nodes, so the same weights run on
    another graph. The graph is stored as non-persistent buffers: they move with ``.to(device)`` but
    are not part of the ``state_dict``.

    Args:
        in_features: number of input features F per node and day.
        adjacency: (nodes, nodes) row-stochastic adjacency, dense or sparse (see
            :func:`msgl_core.graph.updown_adjacency` and :func:`msgl_core.graph.to_sparse`); the
            forward transition A, with ``A[i, j]`` the weight of reach j in reach i's update.
        hidden: hidden size H.

    Shapes:
        x: (nodes, time, in_features), standardised inputs; time steps are days.
        returns: (nodes, time, 1), standardised water temperature.
    """

    forward_edge_index: Tensor
    forward_edge_weight: Tensor
    backward_edge_index: Tensor
    backward_edge_weight: Tensor

    def __init__(self, in_features: int, adjacency: Tensor, hidden: int = 20) -> None:
        super().__init__()
        forward_index, forward_weight = edges(adjacency)  # raises ValueError unless adjacency is square
        self.in_features = in_features
        self.hidden = hidden
        self.nodes = adjacency.shape[0]
        backward_index, backward_weight = reversed_edges(forward_index, forward_weight, self.nodes)
        self.register_buffer("forward_edge_index", forward_index, persistent=False)
        self.register_buffer("forward_edge_weight", forward_weight, persistent=False)
        self.register_buffer("backward_edge_index", backward_index, persistent=False)
        self.register_buffer("backward_edge_weight", backward_weight, persistent=False)
        self.input_conv = _DiffusionConv(in_features, 3 * hidden, bias=True)
        self.gate_conv = _DiffusionConv(hidden, 2 * hidden, bias=False)
        self.candidate_conv = _DiffusionConv(hidden, hidden, bias=False)
        self.output = nn.Linear(hidden, 1)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """PyG defaults for the convolutions, gate biases 1 and candidate bias 0, default read-out."""
        for conv in (self.input_conv, self.gate_conv, self.candidate_conv):
            conv.reset_parameters()
        bias = self.input_conv.forward_conv.bias
        assert bias is not None
        with torch.no_grad():
            bias[: 2 * self.hidden].fill_(1.0)
        self.output.reset_parameters()

    def forward(self, x: Tensor) -> Tensor:
        """Predict every node and day; see the class docstring for shapes."""
        if x.ndim != 3 or x.shape[0] != self.nodes or x.shape[2] != self.in_features:
            raise ValueError(f"x must be ({self.nodes}, time, {self.in_features}), got {tuple(x.shape)}")
        graph = (sparse_operator(self.forward_edge_index, self.forward_edge_weight, self.nodes),
                 sparse_operator(self.backward_edge_index, self.backward_edge_weight, self.nodes))
        size = self.hidden
        # (nodes, time, 3H): one sparse product per hop serves every day.
        x_steps = self.input_conv(x, *graph).unbind(dim=1)
        h = x.new_zeros(self.nodes, size)
        outputs = []
        for x_step in x_steps:
            x_gates, x_candidate = x_step.split([2 * size, size], dim=1)
            reset, update = torch.sigmoid(x_gates + self.gate_conv(h, *graph)).chunk(2, dim=1)
            candidate = torch.tanh(x_candidate + self.candidate_conv(reset * h, *graph))
            h = update * h + (1.0 - update) * candidate
            outputs.append(h)
        hidden = torch.stack(outputs, dim=1) if outputs else x.new_zeros(self.nodes, 0, size)
        return self.output(hidden)

    def extra_repr(self) -> str:
        """Summarise the sizes for ``print(module)``."""
        return f"in_features={self.in_features}, hidden={self.hidden}, nodes={self.nodes}, hops={_HOPS}"


class _DiffusionConv(nn.Module):
    """Bidirectional diffusion convolution: one ``TAGConv`` on A plus one on B, summed.

    Shapes:
        x: (nodes, in_channels) or (nodes, time, in_channels).
        forward_operator, backward_operator: (nodes, nodes) sparse CSR from
            :func:`msgl_core.graph.pyg.sparse_operator`.
        returns: x's shape with ``out_channels``.
    """

    def __init__(self, in_channels: int, out_channels: int, bias: bool) -> None:
        super().__init__()
        self.forward_conv = SequenceTAGConv(in_channels, out_channels, K=_HOPS, bias=bias, normalize=False, node_dim=0)
        self.backward_conv = SequenceTAGConv(in_channels, out_channels, K=_HOPS, bias=False, normalize=False,
                                             node_dim=0)

    def reset_parameters(self) -> None:
        """PyG's ``TAGConv`` initialisation for both directions."""
        self.forward_conv.reset_parameters()
        self.backward_conv.reset_parameters()

    def forward(self, x: Tensor, forward_operator: Tensor, backward_operator: Tensor) -> Tensor:
        """Sum the forward and the backward diffusion; see the class docstring for shapes."""
        return self.forward_conv(x, forward_operator) + self.backward_conv(x, backward_operator)
