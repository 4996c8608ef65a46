r"""STGCN baseline: two spatio-temporal convolution blocks plus a per-day MLP read-out.

Reference: B. Yu, H. Yin, Z. Zhu, "Spatio-Temporal Graph Convolutional Networks: A Deep Learning
Framework for Traffic Forecasting", IJCAI 2018, doi:10.24963/ijcai.2018/505, arXiv:1709.04875
(docs/methods.md §8.1). Each ST-Conv block is the paper's "sandwich": gated temporal convolution, Chebyshev
graph convolution with ReLU, gated temporal convolution, layer normalisation. The Chebyshev filter is
PyG's ``ChebConv`` filter (its ``sym`` Laplacian from :func:`torch_geometric.utils.get_laplacian`,
:math:`\lambda_{max} = 2`), applied through :class:`msgl_core.graph.pyg.SequenceTAGConv` so one sparse
product serves every day (``ChebConv``'s message passing would hold days × edges × channels floats).

What we changed from the paper:

* causal temporal convolutions: kernel 3 with two days of zero padding on the left, so the output
  keeps every day and day t only sees days <= t (the paper's unpadded convolutions shorten the
  window and forecast the steps after it); the receptive field is the current day and 8 before it;
* one output per node and day from an MLP on the last block, in place of the paper's output block
  (a temporal convolution over the remaining steps and a fully connected layer);
* every layer has ``hidden`` channels, the Chebyshev filter has K = 2 terms (orders 0 and 1: the
  one-hop graph convolution of the benchmark's simplified STGCN, where the paper uses K = 3), and
  ``LayerNorm`` over channels only: the authors normalise over
  (nodes, channels) with per-node scales, which would tie the weights to one graph; no dropout;
* as in the authors' code, the gated temporal convolution and the graph convolution add their
  (channel-aligned) input before the gate and the ReLU.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch_geometric.utils import get_laplacian

from msgl_core.graph.pyg import SequenceTAGConv, edges, sparse_operator
from msgl_core.models.temporal_glu import TemporalGLU

_TEMPORAL_KERNEL = 3
_CHEBYSHEV_K = 2


class STGCN(nn.Module):
    r"""Two ST-Conv blocks, then ``Linear(hidden -> hidden) -> ReLU -> Linear(hidden -> 1)`` per node and day.

    Each block maps (nodes, time, c_in) to (nodes, time, hidden):

    .. math::
        z_1 &= \mathrm{GLU}_{\mathrm{causal}}(z) \\
        z_2 &= \mathrm{ReLU}(\mathrm{Cheb}_K(z_1) + z_1) \\
        z_3 &= \mathrm{LayerNorm}(\mathrm{GLU}_{\mathrm{causal}}(z_2)),

    with :math:`\mathrm{GLU}(z)_t = (P_t + \mathrm{align}(z_t)) \odot \sigma(Q_t)` and
    :math:`[P, Q]` a kernel-3 convolution over days t-2, t-1, t. ``ChebConv`` uses the symmetric
    normalisation with :math:`\lambda_{max} = 2`: with :math:`A^\circ` the adjacency without its
    diagonal and :math:`D` the diagonal of its column sums (PyG's degree of each message sender),
    :math:`\mathrm{Cheb}_2(z) = z\Theta_0 - D^{-1/2} A^\circ D^{-1/2} z\, \Theta_1 + b`, which is
    STGCN's Chebyshev filter when the graph is symmetric. No parameter depends on the number of
    nodes, so the same weights run on another graph. The graph is stored as non-persistent buffers:
    they move with ``.to(device)`` but are not part of the ``state_dict``.

    Args:
        in_features: number of input features F per node and day.
        adjacency: (nodes, nodes) row-stochastic adjacency, dense or sparse (see
            :func:`msgl_core.graph.updown_adjacency` and :func:`msgl_core.graph.to_sparse`), with
            ``A[i, j]`` the weight of reach j in reach i's update.
        hidden: channels of every layer.

    Shapes:
        x: (nodes, time, in_features), standardised inputs; time steps are days.
        returns: (nodes, time, 1), standardised water temperature.
    """

    edge_index: Tensor
    edge_weight: Tensor

    def __init__(self, in_features: int, adjacency: Tensor, hidden: int = 20) -> None:
        super().__init__()
        graph = edges(adjacency)  # raises ValueError unless adjacency is square
        self.in_features = in_features
        self.hidden = hidden
        self.nodes = adjacency.shape[0]
        # The scaled Laplacian of ChebConv (sym, lambda_max = 2): L - I = -D^-1/2 A° D^-1/2, zero diagonal.
        edge_index, edge_weight = get_laplacian(*graph, normalization="sym", num_nodes=self.nodes)
        off_diagonal = edge_index[0] != edge_index[1]
        self.register_buffer("edge_index", edge_index[:, off_diagonal], persistent=False)
        self.register_buffer("edge_weight", edge_weight[off_diagonal], persistent=False)
        self.blocks = nn.ModuleList([_STConvBlock(in_features, hidden), _STConvBlock(hidden, hidden)])
        self.output = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def forward(self, x: Tensor) -> Tensor:
        """Predict every node and day; see the class docstring for shapes."""
        if x.ndim != 3 or x.shape[0] != self.nodes or x.shape[2] != self.in_features:
            raise ValueError(f"x must be ({self.nodes}, time, {self.in_features}), got {tuple(x.shape)}")
        z = x
        operator = self.chebyshev_operator()
        for block in self.blocks:
            z = block(z, operator)
        return self.output(z)

    def chebyshev_operator(self) -> Tensor:
        r"""The scaled Laplacian :math:`-D^{-1/2} A^\circ D^{-1/2}` as a sparse CSR (nodes, nodes) operator."""
        return sparse_operator(self.edge_index, self.edge_weight, self.nodes)

    def extra_repr(self) -> str:
        """Summarise the sizes for ``print(module)``."""
        return f"in_features={self.in_features}, hidden={self.hidden}, nodes={self.nodes}"


class _STConvBlock(nn.Module):
    """Gated temporal conv -> ChebConv + residual, ReLU -> gated temporal conv -> LayerNorm.

    Shapes:
        z: (nodes, time, in_channels).
        returns: (nodes, time, channels).
    """

    def __init__(self, in_channels: int, channels: int) -> None:
        super().__init__()
        self.temporal_in = TemporalGLU(in_channels, channels, _TEMPORAL_KERNEL)
        # Chebyshev orders 0 .. K-1 of the scaled Laplacian: z Θ_0 + L̃ z Θ_1 (+ bias) for K = 2.
        self.graph_conv = SequenceTAGConv(channels, channels, K=_CHEBYSHEV_K - 1, normalize=False, node_dim=0)
        self.temporal_out = TemporalGLU(channels, channels, _TEMPORAL_KERNEL)
        self.norm = nn.LayerNorm(channels)

    def forward(self, z: Tensor, operator: Tensor) -> Tensor:
        """Run the block over all days (``operator``: :meth:`STGCN.chebyshev_operator`)."""
        z = self.temporal_in(z)
        z = torch.relu(self.graph_conv(z, operator) + z)
        return self.norm(self.temporal_out(z))
