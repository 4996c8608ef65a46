"""PyTorch Geometric plumbing shared by the fine-only baselines (DCRNN, Graph WaveNet, STGCN, ASTGCN, STGODE).

The river adjacency A (row-stochastic, ``A[i, j]`` the weight of reach j in reach i's update) becomes
PyG edges for ``x -> A x`` and the sparse CSR operator PyG's fused propagation multiplies with.
:class:`SequenceTAGConv` runs one sparse product for every day of a (nodes, time, channels) input:
PyG's gather/scatter message passing would materialise time × edges × channels floats, and the
``updown`` adjacency links every flow-connected pair (about 47 entries per row on Rancocas, 306 on
the whole DRB), which makes that tens of GB on the whole DRB.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch_geometric.nn import TAGConv
from torch_geometric.utils import coalesce, scatter, spmm, to_edge_index, to_torch_csr_tensor


def edges(adjacency: Tensor) -> tuple[Tensor, Tensor]:
    """PyG ``(edge_index, edge_weight)`` of ``x -> A x``: source = column j, target = row i, sorted.

    Shapes:
        adjacency: (nodes, nodes), dense, COO or CSR.
        returns: edge_index (2, edges) int64; edge_weight (edges,) in the default dtype.

    Raises ValueError if ``adjacency`` is not square.
    """
    if adjacency.ndim != 2 or adjacency.shape[0] != adjacency.shape[1]:
        raise ValueError(f"adjacency must be a square (nodes, nodes) matrix, got {tuple(adjacency.shape)}")
    sparse = adjacency.detach()
    if sparse.layout == torch.strided:
        sparse = sparse.to_sparse()
    elif sparse.layout == torch.sparse_coo:
        sparse = sparse.coalesce()
    index, weight = to_edge_index(sparse)
    index, weight = coalesce(index, weight.to(torch.get_default_dtype()), num_nodes=adjacency.shape[0])
    return index.flip(0), weight


def reversed_edges(edge_index: Tensor, edge_weight: Tensor, nodes: int) -> tuple[Tensor, Tensor]:
    """Edges of the backward random walk ``D⁻¹ Aᵀ`` (D: column sums of A), in the convention of :func:`edges`
    (the backward transition matrix of DCRNN, Li et al., ICLR 2018, and Graph WaveNet)."""
    column_sum = scatter(edge_weight, edge_index[0], dim=0, dim_size=nodes, reduce="sum")
    weight = edge_weight / column_sum[edge_index[0]]
    # Aᵀ's target is A's source: as (row, col) pairs the transpose is edge_index itself.
    index, weight = coalesce(edge_index, weight, num_nodes=nodes)
    return index.flip(0), weight


def sparse_operator(edge_index: Tensor, edge_weight: Tensor, nodes: int) -> Tensor:
    """Sparse CSR ``adj_t`` (row = target) of :func:`edges` output, for PyG's fused propagation."""
    return to_torch_csr_tensor(edge_index.flip(0), edge_weight, size=(nodes, nodes), is_coalesced=True)


class SequenceTAGConv(TAGConv):
    """PyG ``TAGConv`` whose fused sparse propagation accepts x of shape (nodes, time, channels).

    Build it with ``node_dim=0`` and call it with a :func:`sparse_operator`; ``TAGConv`` then propagates
    through ``message_and_aggregate``, which this flattens so one sparse product serves every day.

    Shapes:
        x: (nodes, channels) or (nodes, time, channels); returns the same with ``out_channels``.
    """

    def message_and_aggregate(self, adj_t: Tensor, x: Tensor) -> Tensor:  # type: ignore[override]
        return spmm(adj_t, x.flatten(1), reduce=self.aggr).view(-1, *x.shape[1:])
