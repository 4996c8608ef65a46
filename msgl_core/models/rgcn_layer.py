"""Graph-recurrent LSTM cell of RGCN (river-dl ``RGCN_v1``), shared by every scale in MSGL.

Reference: X. Jia, J. Zwart, J. Sadler, A. Appling, S. Oliver, S. Markstrom, J. Willard, S. Xu,
M. Steinbach, J. Read, V. Kumar, "Physics-Guided Recurrent Graph Model for Predicting Flow and
Temperature in River Networks", SDM 2021, doi:10.1137/1.9781611976700.69. MSGL (Fan et al., AAAI-25,
arXiv:2505.01948) runs one instance of this cell on the coarse and on the fine graph (docs/methods.md §5.1).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from msgl_core.graph import matmul_operator

#: Graphs up to this many nodes are propagated with a dense product: per day, a small dense product
#: costs less than the sparse kernel's call overhead (1.3-1.5x faster recurrence forward on Rancocas,
#: 93 reaches, and Lehigh, 299; at the whole DRB's 456 segments the sparse product is faster).
DENSE_GRAPH_NODES = 320


class RGCNLayer(nn.Module):
    r"""LSTM whose cell state receives a graph message at every time step.

    For each day t, with :math:`h_0 = c_0 = 0` and the row-stochastic adjacency :math:`A`:

    .. math::
        [i, f, g, o] &= \mathrm{split}_4(x_t W_{ih} + h_{t-1} W_{hh} + b) \\
        q_t &= \tanh(h_{t-1} W_q + b_q) \\
        c_t &= \sigma(f) \odot (c_{t-1} + A q_t) + \sigma(i) \odot \mathrm{dropout}(\tanh g) \\
        h_t &= \sigma(o) \odot \tanh(c_t)

    The adjacency is an argument of :meth:`forward`, not state, so the same parameters can run on
    several graphs. Matrices are Xavier-uniform initialised and biases zero, as in river-dl.

    Args:
        in_features: number of input features F per node and day.
        hidden: hidden size H.
        recurrent_dropout: dropout probability on the candidate cell input ``tanh g``.

    Shapes:
        x: (nodes, time, in_features), standardised inputs; time steps are days.
        adjacency: (nodes, nodes), dense or sparse, dimensionless, row-stochastic; a sparse one of at
            most ``DENSE_GRAPH_NODES`` nodes is made dense for the pass.
        returns h: (nodes, time, hidden).
    """

    def __init__(self, in_features: int, hidden: int = 20, recurrent_dropout: float = 0.0) -> None:
        super().__init__()
        self.in_features = in_features
        self.hidden = hidden
        self.weight_ih = nn.Parameter(torch.empty(in_features, 4 * hidden))
        self.weight_hh = nn.Parameter(torch.empty(hidden, 4 * hidden))
        self.bias = nn.Parameter(torch.empty(4 * hidden))
        self.weight_q = nn.Parameter(torch.empty(hidden, hidden))
        self.bias_q = nn.Parameter(torch.empty(hidden))
        self.recurrent_dropout = nn.Dropout(recurrent_dropout)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Xavier-uniform matrices and zero biases (river-dl ``RGCN_v1.init_weights``)."""
        for weight in (self.weight_ih, self.weight_hh, self.weight_q):
            nn.init.xavier_uniform_(weight)
        for bias in (self.bias, self.bias_q):
            nn.init.zeros_(bias)

    def forward(self, x: Tensor, adjacency: Tensor) -> Tensor:
        """Run the cell over all days; see the class docstring for shapes."""
        if x.ndim != 3 or x.shape[2] != self.in_features:
            raise ValueError(f"x must be (nodes, time, {self.in_features}), got {tuple(x.shape)}")
        nodes = x.shape[0]
        if tuple(adjacency.shape) != (nodes, nodes):
            raise ValueError(f"adjacency must be ({nodes}, {nodes}), got {tuple(adjacency.shape)}")
        size = self.hidden
        if adjacency.layout != torch.strided and nodes <= DENSE_GRAPH_NODES:
            adjacency = adjacency.to_dense()  # same sums; a small dense product is cheaper per step
        propagate = matmul_operator(adjacency)
        # Input and bias terms for all days in one matmul; the last H columns carry b_q so that each
        # step needs a single fused product h_{t-1} [W_hh | W_q].
        weight_x = torch.cat([self.weight_ih, self.weight_ih.new_zeros(self.in_features, size)], dim=1)
        # unbind, not x_part[:, t]: the backward of each slice would materialise a full-size zero tensor.
        x_steps = (torch.matmul(x, weight_x) + torch.cat([self.bias, self.bias_q])).unbind(dim=1)
        weight_h = torch.cat([self.weight_hh, self.weight_q], dim=1)
        h = x.new_zeros(nodes, size)
        c = x.new_zeros(nodes, size)
        outputs = []
        for x_step in x_steps:
            i, f, g, o, q = torch.addmm(x_step, h, weight_h).chunk(5, dim=1)
            message = propagate(torch.tanh(q))
            c = torch.sigmoid(f) * (c + message) + torch.sigmoid(i) * self.recurrent_dropout(torch.tanh(g))
            h = torch.sigmoid(o) * torch.tanh(c)
            outputs.append(h)
        return torch.stack(outputs, dim=1) if outputs else x.new_zeros(nodes, 0, size)

    def extra_repr(self) -> str:
        """Summarise the layer sizes for ``print(module)``."""
        return f"in_features={self.in_features}, hidden={self.hidden}"
