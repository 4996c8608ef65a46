"""One optimisation step per window, for single-task and MSGL multi-task models.

MSGL (docs/methods.md §6.2): task weights by MGDA min-norm (Sener & Koltun, NeurIPS 2018) on the per-task
gradients of the shared RGCN parameters, with the ``loss+`` normalisation, recomputed every step.
The efficient step runs one coarse and one fine pass, takes each task's gradient w.r.t. all
parameters with ``torch.autograd.grad``, computes the weights from the shared parameters' parts and
sets every parameter's gradient to the weighted sum (no further backward pass); ``faithful=True`` reproduces the official step (probe passes, then fresh
forward passes: six RGCN passes per window). Unlike the official code, a window without fine
observations still takes a step on the coarse task (docs/methods.md §6.3) in the efficient step;
such a step does not run the task-1 head (``MSGL.forward(..., interp=False)``), with the same
losses, gradients and random draws as a full forward. Model: Fan et al., AAAI-25, arXiv:2505.01948.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import cast

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


def task_gradients(losses: list[Tensor], params: list[nn.Parameter]) -> list[list[Tensor]]:
    """Each loss's gradient w.r.t. ``params`` (zeros where a loss does not reach a parameter)."""
    grads = []
    for k, loss in enumerate(losses):
        task = torch.autograd.grad(loss, params, retain_graph=k < len(losses) - 1, allow_unused=True)
        grads.append([torch.zeros_like(p) if g is None else g for g, p in zip(task, params)])
    return grads


def mgda_weights(grads: list[list[Tensor]], losses: list[Tensor]) -> Tensor:
    """MGDA min-norm task weights (k,) from the tasks' shared-parameter gradients (``loss+``)."""
    if len(grads) == 1:
        return torch.ones(1, dtype=torch.float64)
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
        total = sum(w * loss for w, loss in zip(weights.tolist(), _task_losses(_faithful_forward(model, batch), batch)))
        result = single_task_step(total, optimizer, model, grad_clip)
        return StepResult(result.loss, tuple(weights.tolist()))
    if not (has_coarse or has_fine):
        return None
    # Without fine targets tasks 1 and 2 have no loss: the task-1 head is skipped (same random draws);
    # the fine pass still runs, since the fine head's BatchNorm statistics feed later predictions.
    out = model(batch.x_coarse, batch.x_fine, interp=has_fine)
    losses = _task_losses(out, batch, has_coarse, has_fine)
    params = [p for p in model.parameters() if p.requires_grad]
    grads = task_gradients(losses, params)
    shared = {id(p) for p in model.shared_parameters()}
    weights = mgda_weights([[g for g, p in zip(task, params) if id(p) in shared] for task in grads], losses)
    optimizer.zero_grad(set_to_none=True)
    for k, p in enumerate(params):
        p.grad = cast(Tensor, sum(float(w) * task[k] for w, task in zip(weights, grads)))
    if grad_clip:
        nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()
    total = sum(float(w) * float(loss.detach()) for w, loss in zip(weights, losses))
    return StepResult(total, tuple(weights.tolist()))


def _task_losses(out: MSGLOutput, batch: Batch, coarse: bool = True, fine: bool = True) -> list[Tensor]:
    """Masked RMSE of task 0 (coarse) and tasks 1, 2 (fine), for the scales asked for."""
    losses = [masked_rmse(out.y_coarse, batch.y_coarse)] if coarse else []
    if fine:
        if out.y_interp is None:
            raise ValueError("the fine tasks' losses need the task-1 output: run the model with interp=True")
        losses += [masked_rmse(out.y_interp, batch.y_fine), masked_rmse(out.y_fine, batch.y_fine)]
    return losses


def _faithful_forward(model: MSGL, batch: Batch) -> MSGLOutput:
    """Official forward: task 0 and task 1 each recompute the coarse states (3 RGCN passes)."""
    y_coarse, _ = model.forward_coarse(batch.x_coarse)
    y_interp, h_mixed = model.forward_interp(model.forward_coarse(batch.x_coarse)[1])
    return MSGLOutput(y_coarse, y_interp, model.forward_fine(batch.x_fine, h_mixed), h_mixed)


def _faithful_weights(model: MSGL, batch: Batch) -> Tensor:
    """Official probe passes: one forward per task, its gradient, then MGDA."""
    losses = _task_losses(_faithful_forward(model, batch), batch)
    return mgda_weights(task_gradients(losses, model.shared_parameters()), losses)

