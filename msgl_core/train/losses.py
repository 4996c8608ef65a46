"""Masked losses on standardised targets (docs/methods.md §6.1)."""

from __future__ import annotations

import torch
from torch import Tensor


def masked_rmse(prediction: Tensor, target: Tensor) -> Tensor:
    """RMSE over the observed entries of ``target`` (NaN = unobserved).

    Shapes:
        prediction: (nodes, time) or (nodes, time, 1); target: (nodes, time).
        returns: scalar; 0 (still connected to ``prediction``'s graph) when nothing is observed.
    """
    prediction = prediction.reshape(target.shape)
    observed = ~torch.isnan(target)
    if not bool(observed.any()):
        return prediction.sum() * 0.0
    error = prediction[observed] - target[observed]
    return torch.sqrt(torch.mean(error**2))


def has_observations(target: Tensor) -> bool:
    """Whether ``target`` has any observed (non-NaN) entry."""
    return bool((~torch.isnan(target)).any())
