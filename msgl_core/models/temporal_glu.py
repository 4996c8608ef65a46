"""Gated causal temporal convolution (the GLU of STGCN), shared by STGCN and the dynamic-graph models.

Reference: B. Yu, H. Yin, Z. Zhu, "Spatio-Temporal Graph Convolutional Networks: A Deep Learning
Framework for Traffic Forecasting", IJCAI 2018, doi:10.24963/ijcai.2018/505, arXiv:1709.04875. The
convolution is padded on the left, so the output keeps every day and day t only sees days <= t
(docs/methods.md §8.1, docs/dynamic_graph.md).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class TemporalGLU(nn.Module):
    r"""Causal convolution over days with a GLU gate and a residual input.

    .. math::
        \mathrm{GLU}(z)_t = (P_t + \mathrm{align}(z_t)) \odot \sigma(Q_t),

    with :math:`[P, Q]` a convolution of ``kernel`` taps at days :math:`t - d(\mathrm{kernel}-1), \dots,
    t - d, t` (``d`` the dilation; days before the window are zeros). As in the STGCN authors' code the
    residual input is aligned to the output channels: zero-padded when it has fewer channels, projected
    by a bias-free linear map (a 1x1 convolution) when it has more.

    Args:
        in_channels: input channels per node and day.
        out_channels: output channels.
        kernel: taps of the convolution, >= 1.
        dilation: days between taps, >= 1.

    Shapes:
        z: (nodes, time, in_channels), time steps are days.
        returns: (nodes, time, out_channels); day t depends on input days t - dilation (kernel - 1) .. t.

    Raises ValueError if ``kernel`` or ``dilation`` is below 1.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel: int = 3, dilation: int = 1) -> None:
        super().__init__()
        if kernel < 1 or dilation < 1:
            raise ValueError(f"kernel and dilation must be >= 1, got {kernel} and {dilation}")
        self.out_channels = out_channels
        self.padding = dilation * (kernel - 1)
        self.conv = nn.Conv1d(in_channels, 2 * out_channels, kernel_size=kernel, dilation=dilation)
        self.align = nn.Linear(in_channels, out_channels, bias=False) if in_channels > out_channels else None

    def forward(self, z: Tensor) -> Tensor:
        """Convolve, add the aligned input and gate; see the class docstring for shapes."""
        # Conv1d wants (batch, channels, time): nodes are the batch.
        padded = F.pad(z.transpose(1, 2), (self.padding, 0))
        values, gates = self.conv(padded).transpose(1, 2).chunk(2, dim=-1)
        if self.align is not None:
            residual = self.align(z)
        else:
            residual = F.pad(z, (0, self.out_channels - z.shape[-1]))
        return (values + residual) * torch.sigmoid(gates)
