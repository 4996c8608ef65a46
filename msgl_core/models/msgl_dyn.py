"""MSGL whose fine branch adds dynamic graph blocks and a jumping-knowledge concatenation of all levels.

MSGL (Fan et al., AAAI-25, arXiv:2505.01948; docs/methods.md §5.2) is unchanged except for the states the
task-2 head reads:

.. math::
    H^{(0)} = H_f, \\quad H^{(\\ell)} = \\mathrm{DynBlock}_\\ell(H^{(\\ell-1)}), \\quad
    H_{jk} = \\mathrm{Linear}_{(L+1)H \\to H}([H^{(0)} \\| \\dots \\| H^{(L)}]), \\quad
    \\hat y^{(2)} = \\mathrm{FusionHead}(\\mathrm{stopgrad}(H_m), H_{jk}).

The blocks follow the abstract of "Dynamic Multi-Scale Graph Embeddings for Cross-Modal Representation of
Physical Fields" (connectivity from geometric proximity and feature similarity, concatenated levels), with
DGCNN's recomputed kNN graph (Wang et al., ACM TOG 2019) and JK-Net's concatenation (Xu et al., ICML
2018); see :mod:`msgl_core.models.layers_dynamic` and docs/dynamic_graph.md.
"""

from __future__ import annotations

from torch import Tensor, nn

from msgl_core.config import DynamicGraphConfig
from msgl_core.graph.river import RiverEdges
from msgl_core.models.layers_dynamic import DynBlock, LevelReadout
from msgl_core.models.msgl import MSGL

#: Temporal kernel of the blocks when the config leaves it unset: 1, no temporal mixing (the RGCN recurs in time).
DEFAULT_TEMPORAL_KERNEL = 1


class MSGLDyn(MSGL):
    r"""MSGL with L dynamic graph blocks on the fine states before the task-2 head.

    Everything of :class:`~msgl_core.models.msgl.MSGL` (shared RGCN, tasks 0 and 1, the task-2 head, the
    detached ``H_m``) is built first and in the same order, so with the same seed the initial weights of
    those modules, and the task-0 and task-1 outputs, are those of ``MSGL``; the blocks and the
    read-out are built after them. They are task-2 parameters (not shared: MGDA balances the RGCN).
    Block ℓ's temporal convolution, if any (``temporal_kernel > 1``), has dilation 2^(ℓ-1).

    Args:
        in_features, adjacency_coarse, adjacency_fine, mixed, hidden, heads, dropout: as ``MSGL``.
        river: typed river edges of the fine reaches (:func:`msgl_core.graph.river_edges`).
        positions: (reaches, 2) reach midpoints, km (EPSG:5070).
        graph: the block options (``temporal_kernel`` None: :data:`DEFAULT_TEMPORAL_KERNEL`).

    Shapes:
        as ``MSGL``: x_coarse (segments, time, in_features), x_fine (reaches, time, in_features) ->
        :class:`~msgl_core.models.msgl.MSGLOutput` (y_fine (reaches, time, 1)).

    Raises ValueError (besides ``MSGL``'s) if ``river`` or ``positions`` do not have the fine graph's reaches.
    """

    river_edge_index: Tensor
    river_edge_type: Tensor
    river_channel_km: Tensor
    positions: Tensor

    def __init__(self, in_features: int, adjacency_coarse: Tensor, adjacency_fine: Tensor, mixed: Tensor,
                 river: RiverEdges, positions: Tensor, hidden: int = 20, heads: int = 4, dropout: float = 0.1,
                 graph: DynamicGraphConfig | None = None) -> None:
        super().__init__(in_features, adjacency_coarse, adjacency_fine, mixed, hidden, heads, dropout)
        graph = graph or DynamicGraphConfig()
        reaches = adjacency_fine.shape[0]
        if river.nodes != reaches or tuple(positions.shape) != (reaches, 2):
            raise ValueError(f"river ({river.nodes} nodes) and positions {tuple(positions.shape)} must cover the "
                             f"{reaches} fine reaches")
        self.register_buffer("river_edge_index", river.edge_index, persistent=False)
        self.register_buffer("river_edge_type", river.edge_type, persistent=False)
        self.register_buffer("river_channel_km", river.channel_km, persistent=False)
        self.register_buffer("positions", positions, persistent=False)
        kernel = graph.temporal_kernel or DEFAULT_TEMPORAL_KERNEL
        self.blocks = nn.ModuleList(
            DynBlock(hidden, graph.k, graph.edges, kernel, 2**level, graph.dropout, graph.init_length_km,
                     graph.init_channel_length_km)
            for level in range(graph.blocks)
        )
        self.readout = LevelReadout(hidden, graph.blocks + 1, graph.jk)

    @property
    def river(self) -> RiverEdges:
        """The fine reaches' river edges, on the model's device."""
        return RiverEdges(self.river_edge_index, self.river_edge_type, self.river_channel_km, self.positions.shape[0])

    def fine_states(self, x_fine: Tensor) -> Tensor:
        """:math:`H_{jk}`: the shared RGCN's fine states, the blocks' states and their read-out.

        Shapes:
            x_fine: (reaches, time, in_features).
            returns: (reaches, time, hidden).
        """
        river = self.river
        levels = [super().fine_states(x_fine)]
        for block in self.blocks:
            levels.append(block(levels[-1], river, self.positions))
        return self.readout(levels)
