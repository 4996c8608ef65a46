"""RGCN on the coarse and the fine graph of one domain, for the downscaling baselines (docs/methods.md §8.2).

* remap: one RGCN on the coarse graph; each reach takes its parent segment's prediction.
* direct upscaling: one RGCN (shared weights) pretrained on the coarse graph, fine-tuned on the fine one.
* progressive upscaling: separate coarse and fine RGCNs; the coarse one's remapped predictions are
  the fine one's pseudo-labels.

References: X. Jia et al., SDM 2021, doi:10.1137/1.9781611976700.69 (the RGCN); Y. Fan et al., AAAI-25,
arXiv:2505.01948 (the baselines, official ``remap``, ``direct_upscaling`` and ``progress_upscaling``).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from msgl_core.models.rgcn_layer import RGCNLayer


class TwoScaleRGCN(nn.Module):
    """RGCN cell(s) with linear read-outs on a coarse and a fine graph, plus the reach → segment remap.

    The graph matrices, the parent index and the unit conversion are non-persistent buffers (rebuilt
    from the data; they move with ``.to(device)``).

    Args:
        in_features: number of input features F per node and day (same order at both scales).
        adjacency_coarse: (segments, segments) row-stochastic adjacency, dense or sparse.
        adjacency_fine: (reaches, reaches) row-stochastic adjacency, dense or sparse.
        parent: (reaches,) int, position of each reach's parent segment.
        coarse_to_fine: ``(scale, shift)`` turning standardised coarse temperature into standardised
            fine temperature: ``z_f = z_c * scale + shift`` (the two scales have their own scalers).
        hidden: hidden size H.
        shared: one cell and read-out for both scales (remap, direct upscaling) or one per scale
            (progressive upscaling).

    Shapes:
        forward_coarse: x (segments, time, F) -> (segments, time, 1), standardised coarse °C.
        forward_fine: x (reaches, time, F) -> (reaches, time, 1), standardised fine °C.
        remap: y (segments, time, 1) standardised coarse -> (reaches, time, 1) standardised fine.
    """

    adjacency_coarse: Tensor
    adjacency_fine: Tensor
    parent: Tensor
    coarse_to_fine: Tensor

    def __init__(self, in_features: int, adjacency_coarse: Tensor, adjacency_fine: Tensor, parent: Tensor,
                 coarse_to_fine: tuple[float, float], hidden: int = 20, shared: bool = True) -> None:
        super().__init__()
        if parent.ndim != 1 or parent.shape[0] != adjacency_fine.shape[0]:
            raise ValueError(f"parent must be ({adjacency_fine.shape[0]},), got {tuple(parent.shape)}")
        self.register_buffer("adjacency_coarse", adjacency_coarse, persistent=False)
        self.register_buffer("adjacency_fine", adjacency_fine, persistent=False)
        self.register_buffer("parent", parent.long(), persistent=False)
        self.register_buffer("coarse_to_fine", torch.tensor(coarse_to_fine, dtype=torch.float32), persistent=False)
        self.coarse = nn.ModuleDict({"rgcn": RGCNLayer(in_features, hidden), "output": nn.Linear(hidden, 1)})
        self.fine = None if shared else nn.ModuleDict(
            {"rgcn": RGCNLayer(in_features, hidden), "output": nn.Linear(hidden, 1)})

    def forward_coarse(self, x: Tensor) -> Tensor:
        """Coarse-graph prediction; see the class docstring for shapes."""
        return self.coarse["output"](self.coarse["rgcn"](x, self.adjacency_coarse))

    def forward_fine(self, x: Tensor) -> Tensor:
        """Fine-graph prediction (with the coarse weights when ``shared``)."""
        cell = self.coarse if self.fine is None else self.fine
        return cell["output"](cell["rgcn"](x, self.adjacency_fine))

    def remap(self, y_coarse: Tensor) -> Tensor:
        """Each reach's parent-segment value, converted to fine standardised units."""
        scale, shift = self.coarse_to_fine
        return y_coarse[self.parent] * scale + shift
