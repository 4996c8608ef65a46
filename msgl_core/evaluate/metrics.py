"""Skill metrics on paired predictions and observations (°C), NaN-aware.

Formulas as in river-dl ``evaluate.calc_metrics`` (docs/methods.md §9.2): RMSE = sqrt(mean((ŷ−y)²)),
MAE = mean|ŷ−y|, bias = mean(ŷ−y), NSE = 1 − Σ(ŷ−y)²/Σ(y−ȳ)² (Nash & Sutcliffe 1970),
KGE = 1 − sqrt((r−1)² + (σ̂/σ−1)² + (μ̂/μ−1)²) (Gupta et al. 2009).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np

NAMES = ("rmse", "mae", "bias", "nse", "kge", "n_obs")
#: The single minimum-observations policy: a group (one reach, one month, one reach-month) with fewer
#: paired observations than this gets NaN scores (docs/methods.md §9.2). Overall scores need one pair.
MIN_GROUP_OBS = 10


@dataclass(frozen=True)
class Scores:
    """Deterministic skill of paired predictions and observations.

    Attributes:
        rmse, mae, bias: °C (bias = mean(predicted − observed)).
        nse, kge: dimensionless (1 is perfect; NSE < 0 is worse than the observed mean).
        n_obs: number of finite pairs.
    Undefined scores (too few pairs, constant observations) are NaN.
    """

    rmse: float
    mae: float
    bias: float
    nse: float
    kge: float
    n_obs: int
    #: Units of each field (CF-style).
    UNITS: ClassVar[dict[str, str]] = {"rmse": "degC", "mae": "degC", "bias": "degC", "nse": "1", "kge": "1",
                                       "n_obs": "1"}
    #: Human labels with units, for tables and plots.
    LABELS: ClassVar[dict[str, str]] = {"rmse": "RMSE (°C)", "mae": "MAE (°C)",
                                        "bias": "bias, predicted − observed (°C)", "nse": "NSE (–)",
                                        "kge": "KGE (–)", "n_obs": "test observations"}

    def to_dict(self) -> dict[str, float | int | None]:
        """Plain values; non-finite scores become None (JSON has no NaN)."""
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: object) -> Scores:
        """Inverse of :meth:`to_dict` (None → NaN). Raises ValueError for missing or non-numeric scores."""
        if not isinstance(values, dict) or set(NAMES) - set(values):
            raise ValueError(f"expected scores {', '.join(NAMES)}, got {values!r}")
        try:
            floats = {k: float("nan") if values[k] is None else float(values[k]) for k in NAMES[:-1]}
            return cls(**floats, n_obs=int(values["n_obs"]))
        except (TypeError, ValueError):
            raise ValueError(f"scores must be numbers (or null), got {values!r}") from None


def skill(prediction: np.ndarray, observation: np.ndarray, min_obs: int = 1) -> Scores:
    """Scores over the pairs where both are finite.

    Args:
        prediction, observation: arrays of the same shape, °C.
        min_obs: fewer pairs than this give NaN scores (``n_obs`` is still reported).

    Raises ValueError if the shapes differ.

    Example:
        >>> skill(np.array([1.0, 2.0, 3.0]), np.array([1.0, 2.0, 4.0])).bias
        -0.3333333333333333
    """
    if prediction.shape != observation.shape:
        raise ValueError(f"prediction shape {prediction.shape} != observation shape {observation.shape}")
    both = np.isfinite(prediction) & np.isfinite(observation)
    p, o = prediction[both].astype(np.float64), observation[both].astype(np.float64)
    n = int(both.sum())
    if n < max(min_obs, 1):
        return Scores(np.nan, np.nan, np.nan, np.nan, np.nan, n)
    error = p - o
    variance = np.sum((o - o.mean()) ** 2)
    nse = 1 - np.sum(error**2) / variance if variance > 0 else np.nan
    if n > 1 and o.std() > 0 and p.std() > 0 and o.mean() != 0:
        r = np.corrcoef(p, o)[0, 1]
        kge = 1 - np.sqrt((r - 1) ** 2 + (p.std() / o.std() - 1) ** 2 + (p.mean() / o.mean() - 1) ** 2)
    else:
        kge = np.nan
    return Scores(float(np.sqrt(np.mean(error**2))), float(np.mean(np.abs(error))), float(np.mean(error)),
                  float(nse), float(kge), n)
