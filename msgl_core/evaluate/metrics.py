"""Skill metrics on paired predictions and observations (°C), NaN-aware.

Formulas as in river-dl ``evaluate.calc_metrics`` (MSGL spec §7.1): RMSE = sqrt(mean((ŷ−y)²)),
MAE = mean|ŷ−y|, bias = mean(ŷ−y), NSE = 1 − Σ(ŷ−y)²/Σ(y−ȳ)² (Nash & Sutcliffe 1970),
KGE = 1 − sqrt((r−1)² + (σ̂/σ−1)² + (μ̂/μ−1)²) (Gupta et al. 2009).
"""

from __future__ import annotations

import numpy as np

NAMES = ("rmse", "mae", "bias", "nse", "kge", "n_obs")


def skill(prediction: np.ndarray, observation: np.ndarray, min_obs: int = 1) -> dict[str, float]:
    """Metrics over the pairs where both are finite.

    Args:
        prediction, observation: arrays of the same shape, °C.
        min_obs: fewer pairs than this give NaN metrics (``n_obs`` is still reported).

    Returns: ``{"rmse", "mae", "bias" (°C), "nse", "kge" (unitless), "n_obs"}``.
    Raises ValueError if the shapes differ.
    """
    if prediction.shape != observation.shape:
        raise ValueError(f"prediction shape {prediction.shape} != observation shape {observation.shape}")
    both = np.isfinite(prediction) & np.isfinite(observation)
    p, o = prediction[both].astype(np.float64), observation[both].astype(np.float64)
    n = int(both.sum())
    if n < max(min_obs, 1):
        return {"rmse": np.nan, "mae": np.nan, "bias": np.nan, "nse": np.nan, "kge": np.nan, "n_obs": n}
    error = p - o
    variance = np.sum((o - o.mean()) ** 2)
    nse = 1 - np.sum(error**2) / variance if variance > 0 else np.nan
    if n > 1 and o.std() > 0 and p.std() > 0 and o.mean() != 0:
        r = np.corrcoef(p, o)[0, 1]
        kge = 1 - np.sqrt((r - 1) ** 2 + (p.std() / o.std() - 1) ** 2 + (p.mean() / o.mean() - 1) ** 2)
    else:
        kge = np.nan
    return {"rmse": float(np.sqrt(np.mean(error**2))), "mae": float(np.mean(np.abs(error))),
            "bias": float(np.mean(error)), "nse": float(nse), "kge": float(kge), "n_obs": n}
