"""Downscaling baselines of the MSGL paper (docs/methods.md §8.2), each an RGCN on the basin's two graphs.

* ``remap``: RGCN on the coarse graph trained on coarse observations (best coarse validation);
  each reach takes its parent segment's prediction. No fine data are used.
* ``direct_upscaling``: RGCN pretrained on the coarse graph against PRMS-SNTemp simulated temperature
  (last epoch), then the same weights fine-tuned on the fine graph against the sparse fine observations.
* ``progressive_upscaling``: coarse RGCN on coarse observations; its remapped predictions are
  pseudo-labels for a separate fine RGCN (training windows only, so no test-period input is used:
  docs/methods.md §8.2); that fine RGCN is then fine-tuned on the sparse fine observations.

All stages clip the gradient norm to 3, as the official baselines. Unlike the official code, every
model is trained on the run's domain (the basin), not the whole-DRB coarse graph.
"""

from __future__ import annotations

import torch
from torch import Tensor

from msgl_core.config import RunConfig
from msgl_core.data.dataset import Batch, PreparedData
from msgl_core.models import TwoScaleRGCN
from msgl_core.registry import Stage, Variant, register
from msgl_core.train.losses import has_observations, masked_rmse
from msgl_core.train.steps import StepResult, single_task_step

CITATION = ("Fan et al., Multi-Scale Graph Learning for Anti-Sparse Downscaling, AAAI-25, arXiv:2505.01948 "
            "(downscaling baselines); RGCN: Jia et al., SDM 2021, doi:10.1137/1.9781611976700.69")
Step = StepResult | None


def _builder(shared: bool):
    def build(prepared: PreparedData, cfg: RunConfig) -> TwoScaleRGCN:
        coarse, fine = prepared.target_scalers["coarse"], prepared.target_scalers["fine"]
        conversion = (float(coarse.std / fine.std), float((coarse.mean - fine.mean) / fine.std))
        return TwoScaleRGCN(prepared.n_features, prepared.adjacency_coarse, prepared.adjacency_fine,
                            torch.as_tensor(prepared.parent), conversion, hidden=cfg.hidden, shared=shared)
    return build


def _fit(model: TwoScaleRGCN, prediction: Tensor, target: Tensor, optimizer: torch.optim.Optimizer,
         cfg: RunConfig) -> Step:
    if not has_observations(target):
        return None
    return single_task_step(masked_rmse(prediction, target), optimizer, model, cfg.grad_clip)


def coarse_obs_step(model: TwoScaleRGCN, batch: Batch, optimizer: torch.optim.Optimizer, cfg: RunConfig) -> Step:
    """Coarse graph against coarse observations."""
    return _fit(model, model.forward_coarse(batch.x_coarse), batch.y_coarse, optimizer, cfg)


def coarse_sim_step(model: TwoScaleRGCN, batch: Batch, optimizer: torch.optim.Optimizer, cfg: RunConfig) -> Step:
    """Coarse graph against PRMS-SNTemp simulated temperature."""
    return _fit(model, model.forward_coarse(batch.x_coarse), batch.sim_coarse, optimizer, cfg)


def pseudo_label_step(model: TwoScaleRGCN, batch: Batch, optimizer: torch.optim.Optimizer, cfg: RunConfig) -> Step:
    """Fine graph against the coarse model's remapped predictions (no gradient into the coarse model)."""
    with torch.no_grad():
        pseudo = model.remap(model.forward_coarse(batch.x_coarse)).squeeze(-1)
        pseudo[torch.isnan(batch.sim_fine)] = torch.nan  # only the window's scored days
    return _fit(model, model.forward_fine(batch.x_fine), pseudo, optimizer, cfg)


def fine_obs_step(model: TwoScaleRGCN, batch: Batch, optimizer: torch.optim.Optimizer, cfg: RunConfig) -> Step:
    """Fine graph against the sparse fine observations."""
    return _fit(model, model.forward_fine(batch.x_fine), batch.y_fine, optimizer, cfg)


def predict_coarse(model: TwoScaleRGCN, batch: Batch) -> Tensor:
    """(segments, time) standardised coarse prediction."""
    return model.forward_coarse(batch.x_coarse).squeeze(-1)


def predict_remapped(model: TwoScaleRGCN, batch: Batch) -> Tensor:
    """(reaches, time): each reach's parent-segment prediction."""
    return model.remap(model.forward_coarse(batch.x_coarse)).squeeze(-1)


def predict_fine_graph(model: TwoScaleRGCN, batch: Batch) -> Tensor:
    """(reaches, time) standardised prediction of the fine-graph RGCN."""
    return model.forward_fine(batch.x_fine).squeeze(-1)


register(Variant(
    name="remap",
    title="Remap coarse predictions to reaches",
    family="downscaling baselines",
    description="RGCN on the coarse graph with coarse observations; each reach takes its parent segment's "
                "prediction (no fine data)",
    citation=CITATION, uses_fine_obs=False, uses_coarse_obs=True, uses_simulation=False,
    build=_builder(shared=True), stages=(Stage("train", coarse_obs_step, "coarse"),),
    predict_fine=predict_remapped, predict_coarse=predict_coarse,
))
register(Variant(
    name="direct_upscaling",
    title="Direct upscaling (pretrain coarse, fine-tune fine)",
    family="downscaling baselines",
    description="RGCN pretrained on the coarse graph with PRMS-SNTemp simulations, the same weights fine-tuned "
                "on the fine graph with sparse fine observations",
    citation=CITATION, uses_fine_obs=True, uses_coarse_obs=False, uses_simulation=True,
    build=_builder(shared=True),
    stages=(Stage("pretrain", coarse_sim_step, "last"), Stage("finetune", fine_obs_step)),
    predict_fine=predict_fine_graph, predict_coarse=predict_coarse,
))
register(Variant(
    name="progressive_upscaling",
    title="Progressive upscaling (coarse pseudo-labels)",
    family="downscaling baselines",
    description="Coarse RGCN on coarse observations gives pseudo-labels (training dates) for a fine RGCN, "
                "which is then fine-tuned on sparse fine observations",
    citation=CITATION, uses_fine_obs=True, uses_coarse_obs=True, uses_simulation=False,
    build=_builder(shared=False),
    stages=(Stage("coarse", coarse_obs_step, "coarse"), Stage("pseudo", pseudo_label_step, "last"),
            Stage("finetune", fine_obs_step)),
    predict_fine=predict_fine_graph, predict_coarse=predict_coarse,
))
