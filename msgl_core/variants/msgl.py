"""``msgl`` and ``async_msgl``: Multi-Scale Graph Learning (Fan et al., AAAI-25, arXiv 2505.01948).

``async_msgl`` (docs/methods.md §7) first pretrains the same MSGL model on abundant data, then runs ``msgl``
from those weights. Stage 1 ("pretrain") uses, on every day of the training windows, the PRMS-SNTemp
simulated temperature as the fine target of tasks 1 and 2 (each reach takes its parent segment's
simulation) and, for task 0, the coarse observation where one exists and the simulation elsewhere; it
keeps its last epoch. Stage 1 sees only training windows, so no validation or test date (neither
inputs nor targets) reaches it (docs/methods.md §7). Stage 2 ("finetune") is ``msgl`` unchanged.
"""

from __future__ import annotations

from dataclasses import replace

import torch
from torch import Tensor

from msgl_core.config import RunConfig
from msgl_core.data.dataset import Batch, PreparedData
from msgl_core.models import MSGL
from msgl_core.registry import Stage, Variant, register
from msgl_core.train.steps import StepResult, msgl_step

CITATION = "Fan et al., Multi-Scale Graph Learning for Anti-Sparse Downscaling, AAAI-25, arXiv:2505.01948"


def build(prepared: PreparedData, cfg: RunConfig) -> MSGL:
    """MSGL on the domain's coarse and fine graphs."""
    return MSGL(prepared.n_features, prepared.adjacency_coarse, prepared.adjacency_fine, prepared.mixed,
                hidden=cfg.hidden, heads=cfg.heads, dropout=cfg.dropout)


def step(model: MSGL, batch: Batch, optimizer: torch.optim.Optimizer, cfg: RunConfig) -> StepResult | None:
    """MGDA-weighted three-task step (efficient, or the official one with ``faithful_step``)."""
    return msgl_step(model, batch, optimizer, cfg.grad_clip, faithful=cfg.faithful_step)


def pretrain_targets(batch: Batch) -> Batch:
    """ASYNC-MSGL stage-1 targets: coarse observations else simulation; fine: the parent's simulation."""
    coarse = torch.where(torch.isnan(batch.y_coarse), batch.sim_coarse, batch.y_coarse)
    return replace(batch, y_coarse=coarse, y_fine=batch.sim_fine)


def pretrain_step(model: MSGL, batch: Batch, optimizer: torch.optim.Optimizer, cfg: RunConfig) -> StepResult | None:
    """:func:`step` on :func:`pretrain_targets`."""
    return step(model, pretrain_targets(batch), optimizer, cfg)


def predict_fine(model: MSGL, batch: Batch) -> Tensor:
    """Task 2 output, (reaches, time); the task-1 head, which it does not use, is not run."""
    return model(batch.x_coarse, batch.x_fine, interp=False).y_fine.squeeze(-1)


def predict_coarse(model: MSGL, batch: Batch) -> Tensor:
    """Task 0 output, (segments, time)."""
    return model.forward_coarse(batch.x_coarse)[0].squeeze(-1)


register(Variant(
    name="msgl",
    title="MSGL (multi-scale graph learning)",
    family="multi-scale",
    description="Multi-scale graph learning: shared RGCN on coarse and fine graphs, 3 tasks balanced by MGDA",
    citation=CITATION, uses_fine_obs=True, uses_coarse_obs=True, uses_simulation=False,
    build=build, stages=(Stage("train", step),), predict_fine=predict_fine, predict_coarse=predict_coarse,
))
register(Variant(
    name="async_msgl",
    title="ASYNC-MSGL (pretrained on process-model data)",
    family="multi-scale",
    description="MSGL pretrained on PRMS-SNTemp simulations at both scales and coarse observations "
                "(training dates), then trained as msgl",
    citation=CITATION, uses_fine_obs=True, uses_coarse_obs=True, uses_simulation=True,
    build=build, stages=(Stage("pretrain", pretrain_step, "last"), Stage("finetune", step)),
    predict_fine=predict_fine, predict_coarse=predict_coarse,
))
