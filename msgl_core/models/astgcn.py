"""ASTGCN baseline (``ASTGCN``, docs/methods.md §8.1): temporal and spatial attention around a graph convolution.

Reference: S. Guo, Y. Lin, N. Feng, C. Song, H. Wan, "Attention Based Spatial-Temporal Graph
Convolutional Networks for Traffic Flow Forecasting", AAAI 2019, doi:10.1609/aaai.v33i01.3301922.

What we changed from the paper (a forecaster of the next hours from fixed-length recent, daily and
weekly segments):

* one component (the recent one) of two blocks, and one output per node and day instead of a
  forecast horizon; the time length is free (any window length >= 1);
* the attention parameters that the paper sizes by the window length T (``W1``, ``W2`` of the spatial
  attention; ``V_e``, ``b_e`` of the temporal attention) are replaced by length-free forms: the
  spatial scores average a bilinear product of per-day projections over the days, and the temporal
  scores are a scaled dot product (see :class:`ASTGCN`);
* the spatial attention S is used only on the graph's edges, as the graph convolution multiplies it
  with the adjacency (``A ⊙ S``); it is normalised over each node's neighbours rather than over all
  nodes, and the paper's (nodes, nodes) ``V_s`` and ``b_s`` become one weight and one bias per edge
  (``V_s``'s matrix product over all nodes would cost nodes³ per block);
* the graph convolution is a PyG :class:`~torch_geometric.nn.conv.TAGConv` (K = 2, no normalisation)
  with edge weights ``A_ij S_ij``: powers of the attention-weighted adjacency instead of Chebyshev
  polynomials of the scaled Laplacian (the official MSGL baseline also uses ``A`` itself as the
  "Chebyshev polynomial").

The temporal attention and the ``same``-padded temporal convolution look at the whole window, as in
the paper: the model is not causal (day t sees later days of the window).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.utils import softmax

from msgl_core.graph.pyg import SequenceTAGConv, edges, sparse_operator


class ASTGCN(nn.Module):
    r"""ASTGCN on one fixed graph: two attention blocks and a per-day ``Linear(hidden -> 1)``.

    Each block maps x (nodes, time, C) to (nodes, time, hidden):

    .. math::
        E &= \mathrm{softmax}_{t}\big((\textstyle\sum_n u_{1n} x_n)\, U_2\, (x u_3) / \sqrt{N}\big)
            && \text{temporal attention, (time, time)} \\
        P_{ij} &= \tfrac{1}{T} \textstyle\sum_t (x E\, w_l)_{it}\, (x E\, w_r)_{jt}
            && \text{spatial scores of the attended input} \\
        S_{ij} &= \mathrm{softmax}_{j \in \mathcal N(i)}\big(v_{ij}\, \sigma(P_{ij} + b_{ij})\big)
            && \text{spatial attention on the edges} \\
        g &= \mathrm{ReLU}\big(\textstyle\sum_{k=0}^{2} (A \odot S)^k x\, \Theta_k\big) \\
        \text{out} &= \mathrm{LayerNorm}\big(\mathrm{ReLU}(x W_{res} + \mathrm{Conv1d}_3(g))\big)

    As in the official code, the temporal attention only enters through the spatial attention (the
    graph convolution runs on x itself). P is a dense (nodes, nodes) matrix computed once per block
    (aggregated over the days), never per day, and only its entries on the edges are used.

    The graph is stored as non-persistent ``edge_index`` / ``edge_weight`` buffers (PyG convention:
    messages go from ``edge_index[0]`` to ``edge_index[1]``, so the operator is :math:`A x`). They
    move with ``.to(device)`` but are not in the ``state_dict``. The attention parameters are sized by
    the number of nodes (``u_1``, ``U_2``) and of edges (``v``, ``b``).

    Args:
        in_features: number of input features F per node and day.
        adjacency: (nodes, nodes) row-stochastic adjacency, dense or sparse (see
            :func:`msgl_core.graph.updown_adjacency` and :func:`msgl_core.graph.to_sparse`).
        hidden: channels H of both blocks.

    Shapes:
        x: (nodes, time, in_features), standardised inputs; time steps are days, time >= 1.
        returns: (nodes, time, 1), standardised water temperature.
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
        n_edges = edge_index.shape[1]
        self.blocks = nn.ModuleList(
            [
                _AttentionBlock(in_features, hidden, self.nodes, n_edges),
                _AttentionBlock(hidden, hidden, self.nodes, n_edges),
            ]
        )
        self.output = nn.Linear(hidden, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Predict every node and day; see the class docstring for shapes."""
        if x.ndim != 3 or x.shape[0] != self.nodes or x.shape[2] != self.in_features:
            raise ValueError(f"x must be ({self.nodes}, time, {self.in_features}), got {tuple(x.shape)}")
        h = x
        for block in self.blocks:
            h = block(h, self.edge_index, self.edge_weight)
        return self.output(h)


class _AttentionBlock(nn.Module):
    """Temporal attention -> spatial attention on the edges -> TAGConv on A ⊙ S -> temporal conv."""

    def __init__(self, in_channels: int, hidden: int, nodes: int, edges: int) -> None:
        super().__init__()
        self.nodes = nodes
        # Temporal attention (paper U_1, U_2, U_3).
        self.node_weight = nn.Parameter(torch.randn(nodes) / math.sqrt(nodes))
        self.time_key = nn.Parameter(torch.randn(in_channels, nodes) / math.sqrt(in_channels))
        self.time_query = nn.Parameter(torch.randn(in_channels) / math.sqrt(in_channels))
        # Spatial attention (paper W_3 on both sides, V_s and b_s restricted to the edges).
        self.target_projection = nn.Parameter(torch.randn(in_channels) / math.sqrt(in_channels))
        self.source_projection = nn.Parameter(torch.randn(in_channels) / math.sqrt(in_channels))
        self.edge_scale = nn.Parameter(torch.ones(edges))
        self.edge_bias = nn.Parameter(torch.zeros(edges))
        self.graph_conv = SequenceTAGConv(in_channels, hidden, K=2, normalize=False, node_dim=0)
        self.temporal = nn.Conv1d(hidden, hidden, kernel_size=3, padding=1)
        self.residual = nn.Linear(in_channels, hidden)
        self.norm = nn.LayerNorm(hidden)

    def temporal_attention(self, x: Tensor) -> Tensor:
        """(time, time) matrix E whose column t' holds the weights of the days mixed into day t'."""
        pooled = torch.einsum("n,ntc->tc", self.node_weight, x) @ self.time_key  # (time, nodes)
        scores = pooled @ (x @ self.time_query) / math.sqrt(self.nodes)  # (time, time)
        return torch.softmax(scores, dim=0)

    def spatial_attention(self, x: Tensor, edge_index: Tensor) -> Tensor:
        """Attention S_ij on each edge j -> i, (edges,); it sums to 1 over each target's neighbours."""
        attended = x @ torch.stack([self.target_projection, self.source_projection], dim=1)  # (nodes, time, 2)
        target, source = torch.einsum("nts,tu->snu", attended, self.temporal_attention(x)).unbind(0)
        scores = target @ source.T / x.shape[1]  # (nodes, nodes), once per block
        source_index, target_index = edge_index
        logits = self.edge_scale * torch.sigmoid(scores[target_index, source_index] + self.edge_bias)
        return softmax(logits, target_index, num_nodes=self.nodes)

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor) -> Tensor:
        """x: (nodes, time, in_channels) -> (nodes, time, hidden)."""
        weight = edge_weight * self.spatial_attention(x, edge_index)
        graph = F.relu(self.graph_conv(x, sparse_operator(edge_index, weight, self.nodes)))
        temporal = self.temporal(graph.transpose(1, 2)).transpose(1, 2)
        return self.norm(F.relu(self.residual(x) + temporal))
