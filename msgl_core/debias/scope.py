"""What a debiasing map may be fitted on, with the leakage guards (docs/probabilistic.md §2.1).

A map is fitted on segment-days of one fit period (the training period for a process simulation, the
validation period for a base model's predictions). :func:`fit_samples` checks, before anything is
fitted, that the target observations hold no date outside the fit period, no segment of the hold-out
or of a cross-validation test fold, and that the fit period never touches a test period; each check
raises ValueError naming the offending dates or ``seg_id_nat``. Source values stay labelled until here,
where they become flat NumPy samples (no tensors: the maps are fitted on NumPy arrays).

Example:
    >>> import numpy as np, pandas as pd, xarray as xr
    >>> time = pd.date_range("2000-01-01", periods=3)
    >>> obs = xr.DataArray([[10.0], [np.nan], [12.0]], coords={"time": time, "segment": [7]}, dims=("time", "segment"))
    >>> scope = FitScope(fit_periods=(("2000-01-01", "2000-01-03"),), test_periods=(("2001-01-01", "2001-12-31"),))
    >>> fit_samples(obs + 1.0, obs, scope).target.tolist()
    [10.0, 12.0]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from msgl_core.config import POPULATIONS, Period, Population
from msgl_core.data.splits import period_mask
from msgl_core.dims import SEGMENT, TIME


@dataclass(frozen=True)
class FitScope:
    """Where a debiasing map may look.

    Attributes:
        fit_periods: inclusive ISO periods of the fit (target observations must lie inside).
        test_periods: the run's test periods; the fit periods must not overlap them.
        excluded_segments: ``seg_id_nat`` of the hold-out and of a CV test fold: no target observation
            may lie on them, and no source value from them is used.

    Raises ValueError without a fit period.
    """

    fit_periods: tuple[Period, ...]
    test_periods: tuple[Period, ...]
    excluded_segments: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        if not self.fit_periods:
            raise ValueError("a debiasing fit needs at least one fit period")


@dataclass(frozen=True)
class FitSamples:
    """Flat samples a map is fitted on.

    Attributes:
        target, target_time, target_segment: (n_t,) observed coarse °C, their dates and ``seg_id_nat``.
        source, source_time, source_segment: (n_s,) biased source °C, dates and ``seg_id_nat``.
        paired: True when ``source[k]`` is the same segment-day as ``target[k]`` (``matched`` population).
    """

    target: np.ndarray
    target_time: pd.DatetimeIndex
    target_segment: np.ndarray
    source: np.ndarray
    source_time: pd.DatetimeIndex
    source_segment: np.ndarray
    paired: bool


def _dates(time: pd.DatetimeIndex, mask: np.ndarray) -> str:
    days = time[mask]
    listed = ", ".join(str(d.date()) for d in days[:3])
    return f"{mask.sum()} dates ({listed}{', ...' if mask.sum() > 3 else ''})"


def check_scope(target: xr.DataArray, scope: FitScope) -> None:
    """The leakage guards on ``target`` (time, segment) observed °C.

    Raises ValueError if a fit period overlaps a test period, if ``target`` has a finite value on a date
    outside the fit periods, or on an excluded segment (naming the dates or ``seg_id_nat``).
    """
    time = pd.DatetimeIndex(target[TIME].values)
    fit_days = period_mask(time, scope.fit_periods)
    record = pd.date_range(min(p[0] for p in scope.fit_periods), max(p[1] for p in scope.fit_periods))
    overlap = period_mask(record, scope.fit_periods) & period_mask(record, scope.test_periods)
    if overlap.any():
        raise ValueError(f"the debiasing fit period overlaps the test period on {_dates(record, overlap)}")
    values = target.transpose(TIME, SEGMENT).values
    observed = np.isfinite(values)
    outside = observed[~fit_days].any(axis=1)
    if outside.any():
        raise ValueError("debiasing target has observations outside the fit period "
                         f"{', '.join('..'.join(p) for p in scope.fit_periods)} on {_dates(time[~fit_days], outside)}")
    segments = target[SEGMENT].values
    excluded = np.isin(segments, scope.excluded_segments) & observed.any(axis=0)
    if excluded.any():
        raise ValueError(f"debiasing target has observations on hold-out or CV test segments "
                         f"{segments[excluded].tolist()}; they must not enter the fit")


def fit_samples(source: xr.DataArray, target: xr.DataArray, scope: FitScope,
                population: Population = "matched") -> FitSamples:
    """Checked fit samples from labelled source and target.

    Args:
        source: (time, segment) biased coarse temperature, °C (NaN: none, e.g. PRMS no-flow days).
        target: (time, segment) observed coarse temperature, °C, on the same coordinates.
        scope: the fit period and exclusions (see :func:`check_scope`).
        population: which source values a map is fitted on: those on the same segment-days as the target
            observations (``matched``, the default: the gauged population) or every finite source value of the
            fit period on the allowed segments (``all``).

    Raises ValueError from :func:`check_scope`, for coordinates that differ, an unknown population, or
    when no finite pair remains.
    """
    if population not in POPULATIONS:
        raise ValueError(f"source_population must be one of {', '.join(POPULATIONS)}, got {population!r}")
    check_scope(target, scope)
    source = source.transpose(TIME, SEGMENT)
    target = target.transpose(TIME, SEGMENT)
    for dim in (TIME, SEGMENT):
        if not np.array_equal(source[dim].values, target[dim].values):
            raise ValueError(f"debiasing source and target must share the {dim!r} coordinate")
    time = pd.DatetimeIndex(source[TIME].values)
    segments = source[SEGMENT].values
    src, obs = source.values.astype(np.float64), target.values.astype(np.float64)
    allowed = period_mask(time, scope.fit_periods)[:, None] & ~np.isin(segments, scope.excluded_segments)[None, :]
    observed = np.isfinite(obs) & np.isfinite(src) & allowed
    if not observed.any():
        raise ValueError("no segment-day has both a finite source value and a target observation in the fit period")
    t, s = np.nonzero(observed)
    if population == "matched":
        return FitSamples(obs[t, s], time[t], segments[s], src[t, s], time[t], segments[s], paired=True)
    ts, ss = np.nonzero(np.isfinite(src) & allowed)
    return FitSamples(obs[t, s], time[t], segments[s], src[ts, ss], time[ts], segments[ss], paired=False)
