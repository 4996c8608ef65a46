"""One optimisation step per window, for single-task and MSGL multi-task models.

MSGL (spec §4.2): task weights by MGDA min-norm (Sener & Koltun, NeurIPS 2018) on the per-task
gradients of the shared RGCN parameters, with the ``loss+`` normalisation, recomputed every step.
The efficient step runs one coarse and one fine pass and takes the per-task gradients with
``torch.autograd.grad``; ``faithful=True`` reproduces the official step (probe passes, then fresh
forward passes: six RGCN passes per window). Unlike the official code, a window without fine
observations still takes a step on the coarse task (spec §8, B4) in the efficient step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from msgl_core.data.dataset import Batch
from msgl_core.models import MSGL, MSGLOutput
from msgl_core.train.losses import has_observations, masked_rmse
from msgl_core.train.mgda import gram_matrix, min_norm_weights, normalize_gradients


@dataclass(frozen=True)
class StepResult:
    """Loss of one step (standardised RMSE, weighted sum) and the task weights used."""

    loss: float
    weights: tuple[float, ...]


def single_task_step(loss: Tensor, optimizer: torch.optim.Optimizer, model: nn.Module,
                     grad_clip: float | None) -> StepResult:
    """Backward ``loss`` and take one optimiser step (gradient norm clipped to ``grad_clip``)."""
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    if grad_clip:
        nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return StepResult(float(loss.detach()), (1.0,))


def mgda_weights(losses: list[Tensor], shared: list[nn.Parameter]) -> Tensor:
    """MGDA min-norm task weights (k,) from each loss's gradient w.r.t. ``shared``."""
    if len(losses) == 1:
        return torch.ones(1)
    grads = []
    for loss in losses:
        task = torch.autograd.grad(loss, shared, retain_graph=True, allow_unused=True)
        grads.append([torch.zeros_like(p) if g is None else g for g, p in zip(task, shared)])
    normalised = normalize_gradients(grads, [float(loss.detach()) for loss in losses], "loss+")
    return min_norm_weights(gram_matrix(normalised))


def msgl_step(model: MSGL, batch: Batch, optimizer: torch.optim.Optimizer, grad_clip: float | None,
              faithful: bool = False) -> StepResult | None:
    """One MGDA-weighted MSGL step on ``batch``; None when the window is skipped (no targets)."""
    has_coarse, has_fine = has_observations(batch.y_coarse), has_observations(batch.y_fine)
    if faithful:
        if not (has_coarse and has_fine):
            return None  # the official step skips such windows entirely
        weights = _faithful_weights(model, batch)
        out = _faithful_forward(model, batch)
    else:
        if not (has_coarse or has_fine):
            return None
        out = model(batch.x_coarse, batch.x_fine)
    losses = []
    if has_coarse:
        losses.append(masked_rmse(out.y_coarse, batch.y_coarse))
    if has_fine:
        losses += [masked_rmse(out.y_interp, batch.y_fine), masked_rmse(out.y_fine, batch.y_fine)]
    if not faithful:
        weights = mgda_weights(losses, model.shared_parameters())
    total = sum(w * loss for w, loss in zip(weights.tolist(), losses))
    result = single_task_step(total, optimizer, model, grad_clip)
    return StepResult(result.loss, tuple(weights.tolist()))


def _faithful_forward(model: MSGL, batch: Batch) -> MSGLOutput:
    """Official forward: task 0 and task 1 each recompute the coarse states (3 RGCN passes)."""
    y_coarse, _ = model.forward_coarse(batch.x_coarse)
    y_interp, h_mixed = model.forward_interp(model.forward_coarse(batch.x_coarse)[1])
    return MSGLOutput(y_coarse, y_interp, model.forward_fine(batch.x_fine, h_mixed), h_mixed)


def _faithful_weights(model: MSGL, batch: Batch) -> Tensor:
    """Official probe passes: one forward per task, its gradient, then MGDA."""
    shared = model.shared_parameters()
    out = _faithful_forward(model, batch)
    losses = [masked_rmse(out.y_coarse, batch.y_coarse), masked_rmse(out.y_interp, batch.y_fine),
              masked_rmse(out.y_fine, batch.y_fine)]
    return mgda_weights(losses, shared)

