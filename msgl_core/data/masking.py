"""Fine-data sparsity: keep a fraction ρ of observed reach-days, seeded and nested.

Following the MSGL experiments (docs/methods.md §3.3): the unit is one observation (reach-day), drawn at
random (a reach can lose all its data). Unlike the official code, validation is masked like
training for every variant (docs/methods.md §3.3). For a fixed seed and candidate set, the kept set at a
smaller ρ is a subset of the kept set at a larger ρ, because one random permutation ranks every
candidate and the first ``round(ρ·n)`` are kept.
"""

from __future__ import annotations

import numpy as np


def kept_count(n_observed: int, sparsity: float) -> int:
    """How many of ``n_observed`` eligible observations the mask keeps: ``max(1, round(ρ·n))``, 0 of 0."""
    return 0 if n_observed == 0 else max(1, round(sparsity * n_observed))


def sparsity_mask(observed: np.ndarray, eligible_days: np.ndarray, sparsity: float, seed: int) -> np.ndarray:
    """Which observations to keep.

    Args:
        observed: (time, nodes) bool, where an observation exists.
        eligible_days: (time,) bool, days subject to masking (training and validation periods).
        sparsity: kept fraction ρ ∈ (0, 1].
        seed: seed of the random ranking.

    Returns:
        keep: (time, nodes) bool; observations outside ``eligible_days`` are all kept, and
        ``max(1, round(ρ·n))`` of the ``n`` eligible ones (none if n = 0).

    Raises ValueError if sparsity is not in (0, 1] or the shapes disagree.
    """
    if not 0.0 < sparsity <= 1.0:
        raise ValueError(f"sparsity must be in (0, 1], got {sparsity}")
    if observed.ndim != 2 or eligible_days.shape != (observed.shape[0],):
        raise ValueError(f"expected observed (time, nodes) and eligible_days (time,), got "
                         f"{observed.shape} and {eligible_days.shape}")
    candidates = np.flatnonzero((observed & eligible_days[:, None]).ravel())
    n_keep = kept_count(len(candidates), sparsity)
    ranking = np.random.default_rng(seed).permutation(len(candidates))
    keep = observed.copy().ravel()
    keep[candidates[ranking[n_keep:]]] = False
    return keep.reshape(observed.shape)
