"""``rgcn_fine``: the single-scale RGCN baseline on the fine graph (Jia et al., SDM 2021)."""

from __future__ import annotations

import torch
from torch import Tensor

from msgl_core.config import RunConfig
from msgl_core.data.dataset import Batch, PreparedData
from msgl_core.models import RGCN
from msgl_core.registry import Variant, register
from msgl_core.train.losses import has_observations, masked_rmse
from msgl_core.train.steps import StepResult, single_task_step

GRAD_CLIP = 3.0


def build(prepared: PreparedData, cfg: RunConfig) -> RGCN:
    """RGCN on the domain's fine graph."""
    return RGCN(prepared.n_features, prepared.adjacency_fine, hidden=cfg.hidden)


def step(model: RGCN, batch: Batch, optimizer: torch.optim.Optimizer, cfg: RunConfig) -> StepResult | None:
    """Masked RMSE on the sparse fine observations; windows without any are skipped."""
    if not has_observations(batch.y_fine):
        return None
    return single_task_step(masked_rmse(model(batch.x_fine), batch.y_fine), optimizer, model, GRAD_CLIP)


def predict_fine(model: RGCN, batch: Batch) -> Tensor:
    """(reaches, time) standardised prediction."""
    return model(batch.x_fine).squeeze(-1)


register(Variant(
    name="rgcn_fine",
    description="Single-scale RGCN trained on the sparse fine observations of the fine graph",
    citation="Jia et al., Physics-guided recurrent graph model for predicting flow and temperature in "
             "river networks, SDM 2021, doi:10.1137/1.9781611976700.69",
    uses_fine_obs=True, uses_coarse_obs=False, uses_simulation=False,
    build=build, step=step, predict_fine=predict_fine,
))
