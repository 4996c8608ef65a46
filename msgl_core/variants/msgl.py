"""``msgl``: Multi-Scale Graph Learning (Fan et al., AAAI-25, arXiv 2505.01948)."""

from __future__ import annotations

import torch
from torch import Tensor

from msgl_core.config import RunConfig
from msgl_core.data.dataset import Batch, PreparedData
from msgl_core.models import MSGL
from msgl_core.registry import Variant, register
from msgl_core.train.steps import StepResult, msgl_step

GRAD_CLIP = 3.0


def build(prepared: PreparedData, cfg: RunConfig) -> MSGL:
    """MSGL on the domain's coarse and fine graphs."""
    return MSGL(prepared.n_features, prepared.adjacency_coarse, prepared.adjacency_fine, prepared.mixed,
                hidden=cfg.hidden)


def step(model: MSGL, batch: Batch, optimizer: torch.optim.Optimizer, cfg: RunConfig) -> StepResult | None:
    """MGDA-weighted three-task step (efficient, or the official one with ``faithful_step``)."""
    return msgl_step(model, batch, optimizer, GRAD_CLIP, faithful=cfg.faithful_step)


def predict_fine(model: MSGL, batch: Batch) -> Tensor:
    """Task 2 output, (reaches, time)."""
    return model(batch.x_coarse, batch.x_fine).y_fine.squeeze(-1)


def predict_coarse(model: MSGL, batch: Batch) -> Tensor:
    """Task 0 output, (segments, time)."""
    return model.forward_coarse(batch.x_coarse)[0].squeeze(-1)


register(Variant(
    name="msgl",
    description="Multi-scale graph learning: shared RGCN on coarse and fine graphs, 3 tasks balanced by MGDA",
    citation="Fan et al., Multi-Scale Graph Learning for Anti-Sparse Downscaling, AAAI-25, arXiv:2505.01948",
    uses_fine_obs=True, uses_coarse_obs=True, uses_simulation=False,
    build=build, step=step, predict_fine=predict_fine, predict_coarse=predict_coarse,
))
