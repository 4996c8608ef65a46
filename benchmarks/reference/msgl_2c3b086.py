"""Pinned reference: the MSGL forward pass and efficient training step as of commit 2c3b086.

A frozen copy of what ``MSGL.forward`` and ``msgl_step(..., faithful=False)`` computed before the
speed work of issue 11 (task-1 head always run, ``nn.MultiheadAttention``'s own forward, one autograd
graph per step). ``benchmarks/train_speed.py`` times the library against it and
``tests/train/test_msgl_step_equality.py`` checks that the library still computes the same losses,
gradients, weights and predictions. It runs on a library :class:`~msgl_core.models.MSGL` (its
parameters and buffers) and uses the library's losses and MGDA solver, which the speed work left
unchanged. Never import this from ``msgl_core``.

Model: Fan et al., "Multi-Scale Graph Learning for Anti-Sparse Downscaling", AAAI-25, arXiv:2505.01948.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional

from msgl_core.data.dataset import Batch
from msgl_core.graph import matmul_operator
from msgl_core.models import MSGL, MSGLOutput
from msgl_core.models.rgcn_layer import RGCNLayer
from msgl_core.train.losses import has_observations, masked_rmse
from msgl_core.train.mgda import gram_matrix, min_norm_weights, normalize_gradients


def rgcn(layer: RGCNLayer, x: Tensor, adjacency: Tensor) -> Tensor:
    """``RGCNLayer.forward`` at 2c3b086: (nodes, time, in_features) -> (nodes, time, hidden)."""
    size = layer.hidden
    propagate = matmul_operator(adjacency)
    weight_x = torch.cat([layer.weight_ih, layer.weight_ih.new_zeros(layer.in_features, size)], dim=1)
    x_steps = (torch.matmul(x, weight_x) + torch.cat([layer.bias, layer.bias_q])).unbind(dim=1)
    weight_h = torch.cat([layer.weight_hh, layer.weight_q], dim=1)
    h = x.new_zeros(x.shape[0], size)
    c = x.new_zeros(x.shape[0], size)
    outputs = []
    for x_step in x_steps:
        i, f, g, o, q = torch.addmm(x_step, h, weight_h).chunk(5, dim=1)
        message = propagate(torch.tanh(q))
        c = torch.sigmoid(f) * (c + message) + torch.sigmoid(i) * layer.recurrent_dropout(torch.tanh(g))
        h = torch.sigmoid(o) * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs, dim=1)


def _normalise(norm: nn.BatchNorm1d, x: Tensor) -> Tensor:
    return norm(x.transpose(1, 2)).transpose(1, 2)


def interp_head(model: MSGL, h_mixed: Tensor) -> Tensor:
    """``InterpolationHead.forward`` at 2c3b086 (``nn.MultiheadAttention``'s own forward)."""
    head = model.interp_head
    local = head.local_attention(h_mixed, h_mixed, h_mixed, need_weights=False)[0]
    interaction = head.interaction_attention(h_mixed, h_mixed, h_mixed, need_weights=False)[0]
    local = _normalise(head.local_norm, h_mixed + local)
    interaction = _normalise(head.interaction_norm, h_mixed + interaction)
    return head.output(head.dropout(_normalise(head.output_norm, local + interaction)))


def fine_head(model: MSGL, h_mixed: Tensor, h_fine: Tensor) -> Tensor:
    """``FusionHead.forward`` at 2c3b086."""
    head = model.fine_head
    fused = torch.cat([h_mixed, h_fine], dim=-1)
    hidden = functional.gelu(head.hidden_layer(_normalise(head.norm, fused)))
    return head.output(head.dropout(hidden) + head.residual(fused))


def forward(model: MSGL, x_coarse: Tensor, x_fine: Tensor) -> MSGLOutput:
    """``MSGL.forward`` at 2c3b086: all three tasks, every time."""
    h_coarse = rgcn(model.rgcn, x_coarse, model.adjacency_coarse)
    y_coarse = model.coarse_head(h_coarse)
    segments, steps, hidden = h_coarse.shape
    h_mixed = matmul_operator(model.mixed)(h_coarse.reshape(segments, steps * hidden))
    h_mixed = h_mixed.reshape(model.mixed.shape[0], steps, hidden)
    y_interp = interp_head(model, h_mixed)
    h_fine = rgcn(model.rgcn, x_fine, model.adjacency_fine)
    y_fine = fine_head(model, h_mixed.detach(), h_fine)
    return MSGLOutput(y_coarse, y_interp, y_fine, h_mixed)


def predict_fine(model: MSGL, batch: Batch) -> Tensor:
    """``variants.msgl.predict_fine`` at 2c3b086: the full forward's task-2 output, (reaches, time)."""
    return forward(model, batch.x_coarse, batch.x_fine).y_fine.squeeze(-1)


def step(model: MSGL, batch: Batch, optimizer: torch.optim.Optimizer,
         grad_clip: float | None = 3.0) -> tuple[float, tuple[float, ...]] | None:
    """``msgl_step(..., faithful=False)`` at 2c3b086; returns (loss, task weights) or None (skipped)."""
    has_coarse, has_fine = has_observations(batch.y_coarse), has_observations(batch.y_fine)
    if not (has_coarse or has_fine):
        return None
    out = forward(model, batch.x_coarse, batch.x_fine)
    losses = [masked_rmse(out.y_coarse, batch.y_coarse)] if has_coarse else []
    if has_fine:
        losses += [masked_rmse(out.y_interp, batch.y_fine), masked_rmse(out.y_fine, batch.y_fine)]
    params = [p for p in model.parameters() if p.requires_grad]
    grads = []
    for k, loss in enumerate(losses):
        task = torch.autograd.grad(loss, params, retain_graph=k < len(losses) - 1, allow_unused=True)
        grads.append([torch.zeros_like(p) if g is None else g for g, p in zip(task, params)])
    shared = {id(p) for p in model.shared_parameters()}
    if len(grads) == 1:
        weights = torch.ones(1, dtype=torch.float64)
    else:
        shared_grads = [[g for g, p in zip(task, params) if id(p) in shared] for task in grads]
        normalised = normalize_gradients(shared_grads, [float(loss.detach()) for loss in losses], "loss+")
        weights = min_norm_weights(gram_matrix(normalised))
    optimizer.zero_grad(set_to_none=True)
    for k, p in enumerate(params):
        p.grad = sum(float(w) * task[k] for w, task in zip(weights, grads))
    if grad_clip:
        nn.utils.clip_grad_norm_(params, grad_clip)
    optimizer.step()
    total = sum(float(w) * float(loss.detach()) for w, loss in zip(weights, losses))
    return total, tuple(weights.tolist())
