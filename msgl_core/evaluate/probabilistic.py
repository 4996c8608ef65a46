"""Probabilistic scores of an ensemble against observations (°C), NaN-aware (docs/probabilistic.md §5).

Where ``scoringrules`` (Zanetta & Allen, 2024) has the score, it computes it:

* CRPS, fair estimator (Ferro 2014): ``scoringrules.crps_ensemble(obs, members, estimator="fair")``, °C; a
  deterministic forecast's CRPS is its MAE, so CRPSS = 1 − CRPS/MAE_ref against a deterministic base run;
* Brier score of ``T > threshold`` with the member fraction as the probability: ``scoringrules.brier_score``.

Written here because no library has them in this form: the spread–skill ratio (Fortin et al. 2014,
J. Hydrometeorol.) ``SSR = sqrt((M+1)/M · mean(s²)) / RMSE(mean)`` with s² the unbiased member variance;
the coverage of the 5–95 % member interval; rank-histogram counts (ties at the mid-rank); reliability bins;
and the Wasserstein-1 distance of pointwise marginals (``scipy.stats.wasserstein_distance`` per reach:
pooled members on its observed days against its observations, averaged over reaches), the marginal
metric of Wan et al., NeurIPS 2023, arXiv 2305.15618.

Example:
    >>> import numpy as np
    >>> members = np.array([[19.0, 21.0], [24.0, 26.0]])
    >>> round(crps_fair(members, np.array([20.0, 25.0])), 3)
    0.0
    >>> brier(members, np.array([20.0, 26.0]), 20.0)
    0.125
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

import numpy as np
from scipy.stats import wasserstein_distance

from msgl_core.evaluate.metrics import MIN_GROUP_OBS

#: Exceedance thresholds of the Brier scores and reliability bins, °C.
THRESHOLDS = (20.0, 25.0)
RELIABILITY_BINS = 10


def _pairs(members: np.ndarray, obs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(n, M) members and (n,) observations where the observation and every member are finite."""
    if members.shape[:-1] != obs.shape:
        raise ValueError(f"members {members.shape} must be observations {obs.shape} plus a member axis")
    members, obs = members.reshape(-1, members.shape[-1]), obs.reshape(-1)
    keep = np.isfinite(obs) & np.isfinite(members).all(axis=1)
    return members[keep].astype(np.float64), obs[keep].astype(np.float64)


def crps_fair(members: np.ndarray, obs: np.ndarray) -> float:
    """Mean fair CRPS, °C. Shapes: members (..., M), obs (...). NaN without a pair.

    Raises ValueError if the shapes do not match.
    """
    import scoringrules as sr  # imported on use: it takes ~0.3 s, and the run record imports this module

    m, o = _pairs(members, obs)
    return float(np.mean(sr.crps_ensemble(o, m, m_axis=-1, estimator="fair"))) if o.size else float("nan")


def spread_skill_ratio(members: np.ndarray, obs: np.ndarray) -> float:
    """SSR = sqrt((M+1)/M · mean(s²)) / RMSE(ensemble mean); 1 is calibrated, < 1 over-confident.

    NaN without a pair, with fewer than 2 members or a perfect mean. Raises ValueError if shapes differ.
    """
    m, o = _pairs(members, obs)
    n_members = m.shape[-1]
    if not o.size or n_members < 2:
        return float("nan")
    rmse = np.sqrt(np.mean((m.mean(axis=1) - o) ** 2))
    spread = np.sqrt((n_members + 1) / n_members * np.mean(m.var(axis=1, ddof=1)))
    return float(spread / rmse) if rmse > 0 else float("nan")


def interval_coverage(members: np.ndarray, obs: np.ndarray, level: float = 0.9) -> float:
    """Fraction of observations inside the central ``level`` member interval (q05–q95 for 0.9).

    Raises ValueError for a level outside (0, 1) or shapes that differ.
    """
    if not 0 < level < 1:
        raise ValueError(f"level must lie in (0, 1), got {level}")
    m, o = _pairs(members, obs)
    if not o.size:
        return float("nan")
    low, high = np.quantile(m, [(1 - level) / 2, (1 + level) / 2], axis=1)
    return float(np.mean((o >= low) & (o <= high)))


def rank_histogram(members: np.ndarray, obs: np.ndarray) -> np.ndarray:
    """(M + 1,) int counts of the observation's rank among the members (ties at the mid-rank)."""
    m, o = _pairs(members, obs)
    rank = (m < o[:, None]).sum(axis=1) + (m == o[:, None]).sum(axis=1) // 2
    return np.bincount(rank, minlength=members.shape[-1] + 1)


def exceedance_probability(members: np.ndarray, threshold: float) -> np.ndarray:
    """P(T > threshold) as the member fraction. Shapes: members (..., M) °C → (...) in [0, 1], NaN where a
    member is NaN."""
    p = (members > threshold).mean(axis=-1)
    return np.where(np.isfinite(members).all(axis=-1), p, np.nan)


def brier(members: np.ndarray, obs: np.ndarray, threshold: float) -> float:
    """Mean Brier score of ``T > threshold`` (``scoringrules.brier_score``), in [0, 1]; NaN without a pair."""
    import scoringrules as sr

    m, o = _pairs(members, obs)
    if not o.size:
        return float("nan")
    return float(np.mean(sr.brier_score((o > threshold).astype(float), exceedance_probability(m, threshold))))


@dataclass(frozen=True)
class ReliabilityBins:
    """Reliability diagram of one threshold in :data:`RELIABILITY_BINS` equal probability bins.

    Attributes:
        threshold: °C. count: pairs per bin. forecast: mean forecast probability per bin (NaN if empty).
        observed: observed event frequency per bin (NaN if empty).
    """

    threshold: float
    count: tuple[int, ...]
    forecast: tuple[float, ...]
    observed: tuple[float, ...]


def reliability_bins(members: np.ndarray, obs: np.ndarray, threshold: float) -> ReliabilityBins:
    """Bin the pairs by forecast probability of ``T > threshold`` and compare with the event frequency."""
    m, o = _pairs(members, obs)
    p, event = exceedance_probability(m, threshold), (o > threshold).astype(float)
    index = np.minimum((p * RELIABILITY_BINS).astype(int), RELIABILITY_BINS - 1)
    count = np.bincount(index, minlength=RELIABILITY_BINS)
    with np.errstate(invalid="ignore", divide="ignore"):
        forecast = np.bincount(index, p, RELIABILITY_BINS) / count
        observed = np.bincount(index, event, RELIABILITY_BINS) / count
    return ReliabilityBins(threshold, tuple(int(c) for c in count), tuple(float(f) for f in forecast),
                           tuple(float(f) for f in observed))


def marginal_wasserstein(members: np.ndarray, obs: np.ndarray, min_obs: int = MIN_GROUP_OBS) -> float:
    """Mean over reaches of W1 between a reach's pooled members and its observations, °C.

    Shapes: members (time, reach, M), obs (time, reach). Reaches with fewer than ``min_obs`` pairs are left
    out; NaN if none is left. Raises ValueError if the shapes do not match.
    """
    if members.ndim != 3 or members.shape[:2] != obs.shape:
        raise ValueError(f"expected members (time, reach, M) and obs (time, reach), got {members.shape}, {obs.shape}")
    distances = []
    for k in range(obs.shape[1]):
        m, o = _pairs(members[:, k], obs[:, k])
        if o.size >= min_obs:
            distances.append(wasserstein_distance(m.ravel(), o))
    return float(np.mean(distances)) if distances else float("nan")


@dataclass(frozen=True)
class ProbabilisticScores:
    """Probabilistic skill of one group of reach-days.

    Attributes:
        crps: mean fair CRPS, °C. crpss: 1 − CRPS/MAE of the deterministic reference (NaN without one).
        ssr: spread–skill ratio (1 calibrated). coverage_90: fraction inside q05–q95 (target 0.9).
        brier_20, brier_25: Brier scores of T > 20 °C and T > 25 °C. w1: mean per-reach Wasserstein-1, °C.
        n_obs: number of pairs.
    Undefined scores (too few pairs) are NaN.
    """

    crps: float
    crpss: float
    ssr: float
    coverage_90: float
    brier_20: float
    brier_25: float
    w1: float
    n_obs: int
    UNITS: ClassVar[dict[str, str]] = {"crps": "degC", "crpss": "1", "ssr": "1", "coverage_90": "1",
                                       "brier_20": "1", "brier_25": "1", "w1": "degC", "n_obs": "1"}

    def to_dict(self) -> dict[str, float | int | None]:
        """Plain values; non-finite scores become None."""
        return {k: (None if isinstance(v, float) and not np.isfinite(v) else v) for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls, values: dict) -> ProbabilisticScores:
        """Inverse of :meth:`to_dict`. Raises ValueError (KeyError, TypeError) for missing or bad values."""
        scores = {k: float("nan") if values[k] is None else float(values[k]) for k in list(cls.UNITS)[:-1]}
        return cls(**scores, n_obs=int(values["n_obs"]))


def probabilistic_scores(members: np.ndarray, obs: np.ndarray, reference: np.ndarray | None = None,
                         min_obs: int = 1) -> ProbabilisticScores:
    """All scores of one group.

    Args:
        members: (time, reach, M) °C. obs: (time, reach) °C. reference: (time, reach) deterministic °C (the
            base run) for the CRPSS, scored on the same pairs; None: no CRPSS.
        min_obs: fewer pairs than this give NaN scores.

    Raises ValueError if the shapes do not match.
    """
    if reference is not None and reference.shape != obs.shape:
        raise ValueError(f"reference {reference.shape} must match obs {obs.shape}")
    both = np.isfinite(obs) & np.isfinite(members).all(axis=-1)
    if reference is not None:
        both &= np.isfinite(reference)
    obs = np.where(both, obs, np.nan)
    n = int(both.sum())
    if n < max(min_obs, 1):
        nan = float("nan")
        return ProbabilisticScores(nan, nan, nan, nan, nan, nan, nan, n)
    crps = crps_fair(members, obs)
    crpss = float("nan")
    if reference is not None:
        mae = float(np.mean(np.abs(reference[both] - obs[both])))
        crpss = 1 - crps / mae if mae > 0 else float("nan")
    return ProbabilisticScores(crps, crpss, spread_skill_ratio(members, obs), interval_coverage(members, obs),
                               brier(members, obs, THRESHOLDS[0]), brier(members, obs, THRESHOLDS[1]),
                               marginal_wasserstein(members, obs, MIN_GROUP_OBS), n)
