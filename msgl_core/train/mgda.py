"""MGDA task weights: the minimum-norm point in the convex hull of per-task gradients.

Reference: O. Sener and V. Koltun, "Multi-Task Learning as Multi-Objective Optimization", NeurIPS 2018
(arXiv:1810.04650). MSGL (Fan et al., AAAI-25, arXiv:2505.01948) recomputes the weights for every
window from the gradients of its three task losses w.r.t. the shared RGCN parameters (docs/methods.md §6.2).

Typical use, with ``grads[t]`` the gradients of task t w.r.t. the shared parameters::

    normalised = normalize_gradients(grads, [float(loss) for loss in losses], mode="loss+")
    alpha = min_norm_weights(gram_matrix(normalised))
    total = sum(float(a) * loss for a, loss in zip(alpha, losses))
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor

NormalizationMode = Literal["l2", "loss", "loss+", "none"]
_MODES = ("l2", "loss", "loss+", "none")
_COINCIDENT = 1e-12  # ||g_i - g_j||^2 / max_t ||g_t||^2 below which two gradients count as equal
_ROUNDOFF = 1e-12  # L1 size of a search direction below which it is treated as zero


def normalize_gradients(
    grads: list[list[Tensor]], losses: list[float], mode: NormalizationMode = "loss+"
) -> list[list[Tensor]]:
    """Rescale each task's gradient before the min-norm step (Sener & Koltun's ``gradient_normalizers``).

    With ``||g||`` the L2 norm over *all* tensors of one task and ``L`` its loss value, each task is
    divided by ``||g||`` (``"l2"``), ``L`` (``"loss"``), ``L * ||g||`` (``"loss+"``, used by MSGL) or 1
    (``"none"``). A task whose divisor is 0 (zero gradient or zero loss) is returned unchanged rather
    than turned into inf/NaN.

    Shapes:
        grads: k tasks, each a list of tensors with the shapes of the shared parameters.
        losses: k loss values (same units as the losses, e.g. standardised RMSE).
        returns: the same structure as ``grads``.

    Raises:
        ValueError: on an unknown ``mode`` or if ``grads`` and ``losses`` differ in length.
    """
    if mode not in _MODES:
        raise ValueError(f"unknown normalization mode {mode!r}; choices: {', '.join(_MODES)}")
    if len(grads) != len(losses):
        raise ValueError(f"got {len(grads)} gradient lists but {len(losses)} losses")
    normalised = []
    for task, loss in zip(grads, losses, strict=True):
        divisor = _divisor(task, float(loss), mode)
        normalised.append(list(task) if divisor == 0 else [g / divisor for g in task])
    return normalised


def gram_matrix(grads: list[list[Tensor]]) -> Tensor:
    """Pairwise inner products of the task gradients, summed over all parameter tensors.

    Shapes:
        grads: k tasks, each a list of tensors; tensor n has the same shape in every task.
        returns: (k, k) float64 on the CPU, symmetric positive semi-definite.

    Raises:
        ValueError: if there are no tasks or tensors, or the tasks' tensor shapes differ.
    """
    if not grads or not grads[0]:
        raise ValueError("gram_matrix needs at least one task with at least one gradient tensor")
    shapes = [tuple(g.shape) for g in grads[0]]
    for task in grads[1:]:
        if [tuple(g.shape) for g in task] != shapes:
            raise ValueError("every task must have gradients with the same tensor shapes")
    flat = torch.stack([torch.cat([_as_cpu_vector(g) for g in task]) for task in grads])
    return flat @ flat.T


def min_norm_weights(gram: Tensor, max_iter: int = 250, tol: float = 1e-5) -> Tensor:
    """Weights ``a`` on the probability simplex minimising ``a^T G a = ||sum_t a_t g_t||^2``.

    The solver starts from the best analytic solution over pairs of tasks. Each iteration then takes
    a projected-gradient step on the simplex and a step towards the minimiser on the face the point
    lies on (an active-set refinement that keeps ill-conditioned or singular ``G`` from stalling),
    both with an exact line search, since the objective is quadratic. It stops when the L1 change of
    ``a`` in one iteration is below ``tol`` or after ``max_iter`` iterations.

    Degenerate inputs: one task gives ``[1]``; an all-zero Gram matrix (all gradients zero) gives
    uniform weights; a single zero gradient gets all the weight, since the min-norm point is then 0
    (Pareto-stationary). Identical gradients keep the pairwise start (e.g. ``[0.5, 0.5]``).

    Shapes:
        gram: (k, k) symmetric positive semi-definite, e.g. from :func:`gram_matrix`.
        returns: (k,) float64 on the CPU, non-negative, summing to 1.

    Raises:
        ValueError: if ``gram`` is not a finite, non-empty square matrix or ``max_iter`` is negative.
    """
    if gram.ndim != 2 or gram.shape[0] != gram.shape[1] or gram.shape[0] == 0:
        raise ValueError(f"gram must be a non-empty (k, k) matrix, got shape {tuple(gram.shape)}")
    if max_iter < 0:
        raise ValueError(f"max_iter must be non-negative, got {max_iter}")
    matrix = gram.detach().to(device="cpu", dtype=torch.float64)
    if not torch.isfinite(matrix).all():
        raise ValueError("gram contains NaN or inf")
    k = matrix.shape[0]
    scale = matrix.diagonal().max().item()
    if k == 1 or scale <= 0:
        return torch.full((k,), 1.0 / k, dtype=torch.float64)
    matrix = (matrix + matrix.T) / (2 * scale)
    weights = _best_pair(matrix)
    step = 1.0 / torch.linalg.eigvalsh(matrix)[-1].item()  # 1 / Lipschitz constant of the gradient G a
    for _ in range(max_iter):
        direction = _project_to_simplex(weights - step * (matrix @ weights)) - weights
        updated = _line_search(matrix, weights, direction)
        updated = _line_search(matrix, updated, _face_minimiser(matrix, updated) - updated)
        change = (updated - weights).abs().sum().item()
        weights = updated
        if change < tol:
            break
    return weights


def _divisor(task: list[Tensor], loss: float, mode: NormalizationMode) -> float:
    """The scalar that ``normalize_gradients`` divides one task's gradient by."""
    if mode == "none":
        return 1.0
    if mode == "loss":
        return loss
    norm = math.sqrt(sum(g.detach().double().pow(2).sum().item() for g in task))
    return norm if mode == "l2" else loss * norm


def _as_cpu_vector(gradient: Tensor) -> Tensor:
    """Flatten one gradient tensor to a float64 CPU vector."""
    return gradient.detach().reshape(-1).to(device="cpu", dtype=torch.float64)


def _best_pair(matrix: Tensor) -> Tensor:
    """Simplex point with the smallest objective among the exact minimisers on each edge (pair)."""
    k = matrix.shape[0]
    best_cost, best = math.inf, torch.zeros(k, dtype=torch.float64)
    for i in range(k):
        for j in range(i + 1, k):
            g_ii, g_ij, g_jj = matrix[i, i].item(), matrix[i, j].item(), matrix[j, j].item()
            spread = g_ii + g_jj - 2 * g_ij  # ||g_i - g_j||^2
            gamma = 0.5 if spread <= _COINCIDENT else min(max((g_jj - g_ij) / spread, 0.0), 1.0)
            cost = gamma**2 * g_ii + 2 * gamma * (1 - gamma) * g_ij + (1 - gamma) ** 2 * g_jj
            if cost < best_cost:
                best_cost = cost
                best = torch.zeros(k, dtype=torch.float64)
                best[i], best[j] = gamma, 1 - gamma
    return best


def _project_to_simplex(v: Tensor) -> Tensor:
    """Euclidean projection of ``v`` onto the probability simplex (sort-and-threshold method)."""
    ordered = torch.sort(v, descending=True).values
    excess = torch.cumsum(ordered, dim=0) - 1
    ranks = torch.arange(1, v.numel() + 1, dtype=v.dtype)
    support = int((ordered - excess / ranks > 0).sum().item())
    return (v - excess[support - 1] / support).clamp_min(0)


def _face_minimiser(matrix: Tensor, weights: Tensor) -> Tensor:
    """Minimiser of the objective on the affine hull of the simplex face that ``weights`` lies on.

    Solves the KKT system ``G_SS a_S = mu 1, 1^T a_S = 1`` on the support S in the least-squares sense
    (G may be singular). The result can leave the simplex; the line search then stops at its boundary.
    """
    support = weights > 0
    size = int(support.sum().item())
    kkt = torch.ones(size + 1, size + 1, dtype=torch.float64)
    kkt[:size, :size] = matrix[support][:, support]
    kkt[size, size] = 0.0
    rhs = torch.zeros(size + 1, 1, dtype=torch.float64)
    rhs[size] = 1.0
    solution = torch.linalg.lstsq(kkt, rhs, driver="gelsd").solution[:size, 0]
    target = torch.zeros_like(weights)
    target[support] = solution
    return target


def _line_search(matrix: Tensor, weights: Tensor, direction: Tensor) -> Tensor:
    """Exact minimiser of the quadratic objective on the feasible part of ``weights + s * direction``."""
    if direction.abs().sum().item() < _ROUNDOFF:  # no direction, only rounding noise (off the simplex)
        return weights
    slope = (weights @ matrix @ direction).item()
    curvature = (direction @ matrix @ direction).item()
    leaving = direction < 0
    if slope >= 0 or curvature <= 0 or not leaving.any():  # no descent (G is PSD: flat means Gd = 0)
        return weights
    s_max = (weights[leaving] / -direction[leaving]).min().item()
    s = min(-slope / curvature, s_max)
    updated = (weights + s * direction).clamp_min(0)
    return updated / updated.sum()
