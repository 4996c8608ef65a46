"""Single-scale ablation of ``msgl_dyn``: STGCN-style sandwiches around dynamic graph blocks, on the fine graph.

No RGCN and no coarse branch: ``X_f -> Linear(F -> H)``, then L x [gated causal temporal conv -> DynBlock
-> gated causal temporal conv], then jumping knowledge over all levels and ``Linear(H -> 1)``. The sandwich
is STGCN's (B. Yu, H. Yin, Z. Zhu, IJCAI 2018, doi:10.24963/ijcai.2018/505); the block's connectivity
from geometric proximity and feature similarity and the concatenated levels follow the abstract of
"Dynamic Multi-Scale Graph Embeddings for Cross-Modal Representation of Physical Fields", with DGCNN's
recomputed kNN graph (Wang et al., ACM TOG 2019) and JK-Net (Xu et al., ICML 2018). With ``edges: river``
and ``jk: none`` it is a static STGCN-like stack on the river's direct links (docs/dynamic_graph.md).
"""

from __future__ import annotations

from torch import Tensor, nn

from msgl_core.config import DynamicGraphConfig
from msgl_core.graph.river import RiverEdges
from msgl_core.models.layers_dynamic import DynBlock, LevelReadout
from msgl_core.models.temporal_glu import TemporalGLU

#: Taps of the sandwich's temporal convolutions when the config leaves them unset (STGCN's kernel).
DEFAULT_TEMPORAL_KERNEL = 3


class DynSTGCN(nn.Module):
    r"""Dynamic-graph ST-Conv stack on one river graph, one output per node and day.

    .. math::
        H^{(0)} &= \mathrm{Linear}_{F \to H}(X) \\
        H^{(\ell)} &= \mathrm{GLU}_\ell'(\mathrm{DynBlock}_\ell(\mathrm{GLU}_\ell(H^{(\ell-1)}))), \quad \ell = 1..L \\
        \hat y &= \mathrm{Linear}_{H \to 1}(\mathrm{JK}([H^{(0)}, \dots, H^{(L)}]))

    The GLUs are causal gated temporal convolutions (:class:`TemporalGLU`, dilation 1), so with river
    edges only a day's output depends on that day and the 2 L (kernel - 1) days before it; kNN edges are
    chosen once per window and make every day depend on the whole window. No parameter is sized by the
    number of nodes. The graph is stored as non-persistent buffers.

    Args:
        in_features: input features F per node and day.
        river: typed river edges of the nodes (:func:`msgl_core.graph.river_edges`).
        positions: (nodes, 2) node positions, km (EPSG:5070 reach midpoints).
        hidden: channels H.
        graph: the block options (``temporal_kernel`` None: :data:`DEFAULT_TEMPORAL_KERNEL`).

    Shapes:
        x: (nodes, time, in_features), standardised inputs; time steps are days.
        returns: (nodes, time, 1), standardised water temperature.

    Raises ValueError if ``positions`` does not have ``river``'s nodes, or (in forward) for a wrong ``x``.
    """

    river_edge_index: Tensor
    river_edge_type: Tensor
    river_channel_km: Tensor
    positions: Tensor

    def __init__(self, in_features: int, river: RiverEdges, positions: Tensor, hidden: int = 20,
                 graph: DynamicGraphConfig | None = None) -> None:
        super().__init__()
        graph = graph or DynamicGraphConfig()
        if tuple(positions.shape) != (river.nodes, 2):
            raise ValueError(f"positions must be ({river.nodes}, 2), got {tuple(positions.shape)}")
        self.in_features, self.hidden, self.nodes = in_features, hidden, river.nodes
        self.register_buffer("river_edge_index", river.edge_index, persistent=False)
        self.register_buffer("river_edge_type", river.edge_type, persistent=False)
        self.register_buffer("river_channel_km", river.channel_km, persistent=False)
        self.register_buffer("positions", positions, persistent=False)
        kernel = graph.temporal_kernel or DEFAULT_TEMPORAL_KERNEL
        self.input = nn.Linear(in_features, hidden)
        self.temporal_in = nn.ModuleList(TemporalGLU(hidden, hidden, kernel) for _ in range(graph.blocks))
        self.blocks = nn.ModuleList(
            DynBlock(hidden, graph.k, graph.edges, dropout=graph.dropout, init_length_km=graph.init_length_km,
                     init_channel_length_km=graph.init_channel_length_km)
            for _ in range(graph.blocks)
        )
        self.temporal_out = nn.ModuleList(TemporalGLU(hidden, hidden, kernel) for _ in range(graph.blocks))
        self.readout = LevelReadout(hidden, graph.blocks + 1, graph.jk)
        self.output = nn.Linear(hidden, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Predict every node and day; see the class docstring for shapes."""
        if x.ndim != 3 or x.shape[0] != self.nodes or x.shape[2] != self.in_features:
            raise ValueError(f"x must be ({self.nodes}, time, {self.in_features}), got {tuple(x.shape)}")
        river = RiverEdges(self.river_edge_index, self.river_edge_type, self.river_channel_km, self.nodes)
        levels = [self.input(x)]
        for temporal_in, block, temporal_out in zip(self.temporal_in, self.blocks, self.temporal_out, strict=True):
            levels.append(temporal_out(block(temporal_in(levels[-1]), river, self.positions)))
        return self.output(self.readout(levels))

    def extra_repr(self) -> str:
        """Summarise the sizes for ``print(module)``."""
        return f"in_features={self.in_features}, hidden={self.hidden}, nodes={self.nodes}"
