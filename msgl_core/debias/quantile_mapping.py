"""``quantile_mapping``: per-month empirical CDF matching, ``y' = F_obs⁻¹(F_src(y))`` (a debiasing baseline).

In one dimension this is the exact optimal-transport map for the squared cost; it is the bias-correction
step of BCSD, the baseline of the swirl-dynamics downscaling work that follows Wan et al., NeurIPS 2023,
arXiv 2305.15618. Each calendar month has its own pair of quantile curves (:data:`LEVELS` levels); a month
with fewer than :data:`MIN_SAMPLES` source or target values uses the pooled curves. Beyond the fitted
source range the map extends linearly with slope 1, i.e. it keeps the correction of the nearest end
(so, unlike the entropic map, it can return temperatures beyond the observed range).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from msgl_core.debias.base import Debiaser
from msgl_core.debias.scope import FitSamples

LEVELS = 101
MIN_SAMPLES = 20


def _curves(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """(2, LEVELS) source and target quantiles at evenly spaced probabilities."""
    p = np.linspace(0.0, 1.0, LEVELS)
    return np.stack([np.quantile(source, p), np.quantile(target, p)])


class QuantileMappingDebiaser(Debiaser):
    """Per-month quantile curves; curves: (12, 2, LEVELS) °C (source, target) for months 1–12."""

    method = "quantile_mapping"

    def __init__(self, curves: np.ndarray) -> None:
        self.curves = np.asarray(curves, dtype=np.float64)

    @classmethod
    def fit(cls, samples: FitSamples) -> QuantileMappingDebiaser:
        """Empirical quantiles per calendar month of the target and source samples."""
        pooled = _curves(samples.source, samples.target)
        src_month, obs_month = samples.source_time.month.to_numpy(), samples.target_time.month.to_numpy()
        curves = []
        for month in range(1, 13):
            src, obs = samples.source[src_month == month], samples.target[obs_month == month]
            curves.append(_curves(src, obs) if min(src.size, obs.size) >= MIN_SAMPLES else pooled)
        return cls(np.stack(curves))

    def map_values(self, values: np.ndarray, time: pd.DatetimeIndex, segment: np.ndarray) -> np.ndarray:
        out = np.empty_like(values)
        months = time.month.to_numpy()
        for month in np.unique(months):
            pick = months == month
            src, obs = self.curves[month - 1]
            v = values[pick]
            mapped = np.interp(v, src, obs)
            mapped = np.where(v < src[0], obs[0] + (v - src[0]), mapped)
            out[pick] = np.where(v > src[-1], obs[-1] + (v - src[-1]), mapped)
        return out

    def state(self) -> dict[str, np.ndarray]:
        return {"curves": self.curves}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> QuantileMappingDebiaser:
        return cls(state["curves"])
