"""``linear``: a paired per-season regression of observed on source coarse temperature (a debiasing baseline).

It corrects the conditional mean, ``y' = a_s + b_s y`` for season s (least squares on the matched
segment-days of the fit period), and therefore shrinks the variance: the contrast to the distributional
maps (quantile mapping, OT) in Wan et al., NeurIPS 2023, arXiv 2305.15618. A season with fewer than
:data:`MIN_PAIRS` pairs uses the pooled regression.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from msgl_core.debias.base import Debiaser, season
from msgl_core.debias.scope import FitSamples

MIN_PAIRS = 10


def _regression(source: np.ndarray, target: np.ndarray) -> tuple[float, float]:
    """(intercept °C, slope) of the least-squares line; slope 1 on a constant source."""
    if source.std() == 0:
        return float(target.mean() - source.mean()), 1.0
    slope, intercept = np.polyfit(source, target, 1)
    return float(intercept), float(slope)


class LinearDebiaser(Debiaser):
    """Per-season ``y' = intercept[s] + slope[s] · y``; intercept, slope: (4,) for DJF, MAM, JJA, SON."""

    method = "linear"

    def __init__(self, intercept: np.ndarray, slope: np.ndarray) -> None:
        self.intercept, self.slope = np.asarray(intercept, dtype=np.float64), np.asarray(slope, dtype=np.float64)

    @classmethod
    def fit(cls, samples: FitSamples) -> LinearDebiaser:
        """Least squares per season on paired samples. Raises ValueError unless ``samples.paired``."""
        if not samples.paired:
            raise ValueError("debias method 'linear' needs paired samples: use source_population 'matched'")
        seasons = season(samples.target_time)
        pooled = _regression(samples.source, samples.target)
        fits = [_regression(samples.source[seasons == s], samples.target[seasons == s])
                if (seasons == s).sum() >= MIN_PAIRS else pooled for s in range(4)]
        return cls(np.array([f[0] for f in fits]), np.array([f[1] for f in fits]))

    def map_values(self, values: np.ndarray, time: pd.DatetimeIndex, segment: np.ndarray) -> np.ndarray:
        s = season(time)
        return self.intercept[s] + self.slope[s] * values

    def state(self) -> dict[str, np.ndarray]:
        return {"intercept": self.intercept, "slope": self.slope}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> LinearDebiaser:
        return cls(state["intercept"], state["slope"])
