"""Fine-only baselines (docs/methods.md §8.1): a spatio-temporal graph model on the basin's fine graph, trained
on the sparse fine observations alone.

As the official ``base/torch_utils.py::train_torch``: masked RMSE on the kept fine observations,
gradient norm clipped to 3, best checkpoint on the (equally sparse) validation observations. Every model
takes ``(in_features, adjacency, hidden)`` and maps ``(reaches, time, F)`` to ``(reaches, time, 1)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor, nn

from msgl_core.config import RunConfig
from msgl_core.data.dataset import Batch, PreparedData
from msgl_core.models import ASTGCN, DCRNN, RGCN, STGCN, STGODE, GraphWaveNet
from msgl_core.registry import Stage, Variant, register
from msgl_core.train.losses import has_observations, masked_rmse
from msgl_core.train.steps import StepResult, single_task_step

#: ``(in_features, adjacency (reaches, reaches), hidden) -> model``
FineModel = Callable[[int, Tensor, int], nn.Module]


def step(model: nn.Module, batch: Batch, optimizer: torch.optim.Optimizer, cfg: RunConfig) -> StepResult | None:
    """Masked RMSE on the sparse fine observations; windows without any are skipped."""
    if not has_observations(batch.y_fine):
        return None
    return single_task_step(masked_rmse(model(batch.x_fine), batch.y_fine), optimizer, model, cfg.grad_clip)


def predict_fine(model: nn.Module, batch: Batch) -> Tensor:
    """(reaches, time) standardised prediction."""
    return model(batch.x_fine).squeeze(-1)


def fine_only(name: str, title: str, model: FineModel, description: str, citation: str) -> Variant:
    """A registry entry (family "fine-only graph baselines") that trains ``model`` on the fine graph with :func:`step`."""

    def build(prepared: PreparedData, cfg: RunConfig) -> nn.Module:
        return model(prepared.n_features, prepared.adjacency_fine, cfg.hidden)

    return Variant(name=name, description=description, citation=citation, title=title,
                   family="fine-only graph baselines", uses_fine_obs=True, uses_coarse_obs=False, uses_simulation=False,
                   build=build, stages=(Stage("train", step),), predict_fine=predict_fine)


register(fine_only(
    "rgcn_fine", "RGCN on fine reaches", RGCN,
    "Single-scale RGCN (graph-recurrent LSTM) on the fine graph, sparse fine observations only",
    "Jia et al., Physics-guided recurrent graph model for predicting flow and temperature in river networks, "
    "SDM 2021, doi:10.1137/1.9781611976700.69"))
register(fine_only(
    "dcrnn", "DCRNN", DCRNN,
    "Diffusion-convolution GRU on the fine graph, sparse fine observations only",
    "Li et al., Diffusion Convolutional Recurrent Neural Network: Data-Driven Traffic Forecasting, ICLR 2018, "
    "arXiv:1707.01926"))
register(fine_only(
    "gwnet", "Graph WaveNet", GraphWaveNet,
    "Graph WaveNet (dilated causal convolutions, adaptive adjacency) on the fine graph, "
    "sparse fine observations only",
    "Wu et al., Graph WaveNet for Deep Spatial-Temporal Graph Modeling, IJCAI 2019, arXiv:1906.00121"))
register(fine_only(
    "stgcn", "STGCN", STGCN,
    "STGCN (gated temporal convolutions around Chebyshev graph convolutions) on the fine graph, "
    "sparse fine observations only",
    "Yu et al., Spatio-Temporal Graph Convolutional Networks: A Deep Learning Framework for Traffic Forecasting, "
    "IJCAI 2018, arXiv:1709.04875"))
register(fine_only(
    "astgcn", "ASTGCN", ASTGCN,
    "Attention-based ST-GCN (temporal and spatial attention, graph convolution) on the fine graph, "
    "sparse fine observations only",
    "Guo et al., Attention Based Spatial-Temporal Graph Convolutional Networks for Traffic Flow Forecasting, "
    "AAAI 2019, doi:10.1609/aaai.v33i01.3301922"))
register(fine_only(
    "stgode", "STGODE", STGODE,
    "Spatial-temporal graph ODE network on the fine graph, sparse fine observations only",
    "Fang et al., Spatial-Temporal Graph ODE Networks for Traffic Flow Forecasting, KDD 2021, arXiv:2106.12931"))
