"""Graph WaveNet baseline (``GWNET``, docs/methods.md §8.1): gated dilated causal convolutions and diffusion graph convs.

Reference: Z. Wu, S. Pan, G. Long, J. Jiang, C. Zhang, "Graph WaveNet for Deep Spatial-Temporal Graph
Modeling", IJCAI 2019, arXiv:1906.00121.

What we changed from the paper (a 12-step traffic forecaster):

* one output per node and day (a sequence-to-sequence model) instead of a 12-step forecast read off
  the last input steps; every temporal convolution is left-padded, so the time length is kept and the
  prediction for day t only sees days t-15..t;
* one block of four layers with dilations 1, 2, 4, 8 (receptive field 16 days) instead of four blocks
  of two layers; the last layer has no graph convolution, whose output nothing would read (only the
  layer's skip connection reaches the output);
* the fixed supports are the given row-stochastic adjacency P_f = A and its row-normalised transpose
  P_b, each through a PyG ``TAGConv`` with K = 2 (the paper's diffusion of order 2);
* ``LayerNorm`` over channels instead of ``BatchNorm2d``, so a node-day never depends on other days
  or windows through batch statistics (which would also break causality in training mode);
* no dropout, and the residual, dilation, skip and end channels all equal ``hidden``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import DenseGraphConv

from msgl_core.graph.pyg import SequenceTAGConv, edges, reversed_edges, sparse_operator

#: Dilations of the gated temporal convolutions (kernel 2): the receptive field is 1 + 1 + 2 + 4 + 8 = 16 days.
DILATIONS = (1, 2, 4, 8)
#: Size of the node embeddings E1, E2 behind the adaptive adjacency (10 in the paper).
EMBEDDING_SIZE = 10


class GraphWaveNet(nn.Module):
    r"""Graph WaveNet on one fixed graph plus a learned dense ("adaptive") adjacency.

    After a per-day ``Linear(in_features -> hidden)``, layer l (dilation :math:`d_l` = 1, 2, 4, 8)
    computes a gated causal convolution (kernel 2, left padding) and adds a linear map of it to the
    skip sum; in the first three layers a graph convolution of it updates the residual stream:

    .. math::
        h &= \tanh(\Theta_f \star_{d_l} x) \odot \sigma(\Theta_g \star_{d_l} x), \qquad
            \text{skip} \mathrel{+}= h W_s \\
        x &\leftarrow \mathrm{LayerNorm}\Big(x + \sum_{k=0}^{2} P_f^k h W_{fk} + \sum_{k=0}^{2} P_b^k h W_{bk}
            + \sum_{k=1}^{2} \tilde A^k h W_{ak}\Big), \qquad
        \tilde A = \mathrm{softmax}(\mathrm{ReLU}(E_1 E_2^\top))

    The output is ``Linear(ReLU(Linear(ReLU(skip))))``. The :math:`P_f` and :math:`P_b` terms are PyG
    :class:`~torch_geometric.nn.conv.TAGConv` layers (K = 2, no normalisation) run on every day at once
    through a sparse CSR operator; the adaptive terms are a PyG
    :class:`~torch_geometric.nn.dense.DenseGraphConv` applied to :math:`\tilde A h` (its root term
    gives :math:`\tilde A h W_{a1}`, its neighbour term :math:`\tilde A^2 h W_{a2}`).

    The graph is stored as non-persistent ``edge_index`` / ``edge_weight`` buffers (PyG convention:
    messages go from ``edge_index[0]`` to ``edge_index[1]``, so the operator is :math:`A x`), plus the
    same pair for :math:`P_b`. They move with ``.to(device)`` but are not in the ``state_dict``. The
    node embeddings :math:`E_1, E_2` (nodes, 10) make the parameter count depend on the number of
    nodes, and :math:`\tilde A` is a dense (nodes, nodes) matrix: on the 3,229-reach DRB its products
    dominate the cost.

    Args:
        in_features: number of input features F per node and day.
        adjacency: (nodes, nodes) row-stochastic adjacency, dense or sparse (see
            :func:`msgl_core.graph.updown_adjacency` and :func:`msgl_core.graph.to_sparse`).
        hidden: channels H of every layer.

    Shapes:
        x: (nodes, time, in_features), standardised inputs; time steps are days, time >= 1.
        returns: (nodes, time, 1), standardised water temperature; day t depends on days t-15..t only.
    """

    edge_index: Tensor
    edge_weight: Tensor
    backward_edge_index: Tensor
    backward_edge_weight: Tensor

    def __init__(self, in_features: int, adjacency: Tensor, hidden: int = 20) -> None:
        super().__init__()
        self.in_features = in_features
        self.nodes = adjacency.shape[0]
        edge_index, edge_weight = edges(adjacency)
        backward_index, backward_weight = reversed_edges(edge_index, edge_weight, self.nodes)
        self.register_buffer("edge_index", edge_index, persistent=False)
        self.register_buffer("edge_weight", edge_weight, persistent=False)
        self.register_buffer("backward_edge_index", backward_index, persistent=False)
        self.register_buffer("backward_edge_weight", backward_weight, persistent=False)
        self.node_source = nn.Parameter(torch.randn(self.nodes, EMBEDDING_SIZE))
        self.node_target = nn.Parameter(torch.randn(self.nodes, EMBEDDING_SIZE))
        self.start = nn.Linear(in_features, hidden)
        self.gates = nn.ModuleList(_GatedConv(hidden, dilation) for dilation in DILATIONS)
        self.skips = nn.ModuleList(nn.Linear(hidden, hidden) for _ in DILATIONS)
        # The last layer's graph convolution would feed nothing (only its skip is read): it is left out.
        self.graph_convs = nn.ModuleList(_GraphConvs(hidden) for _ in DILATIONS[:-1])
        self.end = nn.Sequential(nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))

    def adaptive_adjacency(self) -> Tensor:
        """The learned dense support softmax(ReLU(E1 E2ᵀ)), (nodes, nodes), rows summing to 1."""
        return torch.softmax(F.relu(self.node_source @ self.node_target.T), dim=1)

    def forward(self, x: Tensor) -> Tensor:
        """Predict every node and day; see the class docstring for shapes."""
        if x.ndim != 3 or x.shape[0] != self.nodes or x.shape[2] != self.in_features:
            raise ValueError(f"x must be ({self.nodes}, time, {self.in_features}), got {tuple(x.shape)}")
        forward_support = sparse_operator(self.edge_index, self.edge_weight, self.nodes)
        backward_support = sparse_operator(self.backward_edge_index, self.backward_edge_weight, self.nodes)
        adaptive = self.adaptive_adjacency()
        h = self.start(x)
        skip = torch.zeros_like(h)
        for i, (gate, skip_linear) in enumerate(zip(self.gates, self.skips)):
            gated = gate(h)
            skip = skip + skip_linear(gated)
            if i < len(self.graph_convs):
                h = self.graph_convs[i](gated, h, forward_support, backward_support, adaptive)
        return self.end(skip)


class _GatedConv(nn.Module):
    """Gated causal temporal convolution tanh(Θ_f ⋆_d x) ⊙ σ(Θ_g ⋆_d x), kernel 2, dilation d."""

    def __init__(self, hidden: int, dilation: int) -> None:
        super().__init__()
        self.dilation = dilation
        self.conv = nn.Conv1d(hidden, 2 * hidden, kernel_size=2, dilation=dilation)

    def forward(self, x: Tensor) -> Tensor:
        """x: (nodes, time, hidden) -> (nodes, time, hidden); day t sees days t - d and t."""
        causal = F.pad(x.transpose(1, 2), (self.dilation, 0))  # (nodes, hidden, dilation + time)
        filter_part, gate_part = self.conv(causal).chunk(2, dim=1)
        # One contiguous copy here saves several implicit ones in the graph convolutions (~10% per window).
        return (torch.tanh(filter_part) * torch.sigmoid(gate_part)).transpose(1, 2).contiguous()


class _GraphConvs(nn.Module):
    """Forward, backward and adaptive graph convolutions of a gated output, residual and LayerNorm."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.forward_conv = SequenceTAGConv(hidden, hidden, K=2, normalize=False, node_dim=0)
        self.backward_conv = SequenceTAGConv(hidden, hidden, K=2, normalize=False, bias=False, node_dim=0)
        self.adaptive_conv = DenseGraphConv(hidden, hidden, aggr="add", bias=False)
        self.norm = nn.LayerNorm(hidden)

    def forward(
        self, h: Tensor, residual: Tensor, forward_support: Tensor, backward_support: Tensor, adaptive: Tensor
    ) -> Tensor:
        """h, residual: (nodes, time, hidden) -> (nodes, time, hidden)."""
        adaptive_h = (adaptive @ h.flatten(1)).view_as(h)  # Ã h as one (nodes, nodes) @ (nodes, time * hidden)
        graph = (
            self.forward_conv(h, forward_support)
            + self.backward_conv(h, backward_support)
            + self.adaptive_conv(adaptive_h.transpose(0, 1), adaptive).transpose(0, 1)
        )
        return self.norm(residual + graph)
