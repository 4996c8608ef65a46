"""Single-scale RGCN baseline (``rgcn_fine``): graph-recurrent LSTM plus a linear read-out.

Reference: X. Jia et al., "Physics-Guided Recurrent Graph Model for Predicting Flow and Temperature in
River Networks", SDM 2021, doi:10.1137/1.9781611976700.69 (river-dl ``RGCN_v1``; docs/methods.md §8.1).
"""

from __future__ import annotations

from torch import Tensor, nn

from msgl_core.models.rgcn_layer import RGCNLayer


class RGCN(nn.Module):
    """RGCN on one fixed graph: :class:`RGCNLayer` followed by ``Linear(hidden -> 1)``.

    The adjacency is stored as a non-persistent buffer: it moves with ``.to(device)`` but is not part of
    the ``state_dict``, because it is rebuilt from the network data.

    Args:
        in_features: number of input features F per node and day.
        adjacency: (nodes, nodes) row-stochastic adjacency, dense or sparse (see
            :func:`msgl_core.graph.updown_adjacency` and :func:`msgl_core.graph.to_sparse`).
        hidden: hidden size H.

    Shapes:
        x: (nodes, time, in_features), standardised inputs; time steps are days.
        returns: (nodes, time, 1), standardised water temperature.
    """

    adjacency: Tensor

    def __init__(self, in_features: int, adjacency: Tensor, hidden: int = 20) -> None:
        super().__init__()
        self.register_buffer("adjacency", adjacency, persistent=False)
        self.rgcn = RGCNLayer(in_features, hidden)
        self.output = nn.Linear(hidden, 1)

    def forward(self, x: Tensor) -> Tensor:
        """Predict every node and day; see the class docstring for shapes."""
        return self.output(self.rgcn(x, self.adjacency))
