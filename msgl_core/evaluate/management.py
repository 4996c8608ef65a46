"""Management indicators of predicted water temperature (°C): days above thresholds in a season (of a prediction,
or expected from an ensemble's exceedance probabilities), and each reach's day-of-year climatology with the
anomaly from it.

Days above a threshold count the days whose temperature is strictly greater than it (a day at exactly 20.0 °C
is not above 20 °C, the usual reading of a standard's "exceeds"). Days without a prediction (NaN) count neither
way; ``days_counted`` says how many days each count is out of.

The climatology of a reach is the mean temperature of each calendar day over the days it is given, smoothed by
a centred circular moving mean of ``window`` calendar days. The dashboard gives it a run's predictions over the
whole record, not observations or the training period only: predictions exist on every reach, gauged or not,
and on every day, so each reach gets a baseline over the longest period the run covers (1979–2021 on the DRB),
the same for every day shown and independent of the split; a test-period day is then compared with the model's
own normal for that reach and date, so the anomaly shows weather, not model bias. Pass a time slice of the
predictions for another baseline period.

Example:
    >>> import pandas as pd, xarray as xr
    >>> days = pd.date_range("2011-06-29", periods=4)
    >>> temperature = xr.DataArray([[19.0], [20.0], [20.5], [26.0]], dims=("time", "reach"),
    ...                            coords={"time": days, "reach": ["101_1"]})
    >>> days_above(temperature, months=(6, 7), year=2011).loc["101_1"].to_dict()
    {'days_above_20': 2, 'days_above_25': 1, 'days_counted': 4, 'season_days': 4}
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import xarray as xr

from msgl_core.dims import DAY_OF_YEAR, REACH, TIME
from msgl_core.evaluate.probabilistic import THRESHOLDS

#: Days in the leap-year calendar of a climatology (:data:`msgl_core.DAY_OF_YEAR` 1–366).
CALENDAR_DAYS = 366


def days_above_column(threshold: float) -> str:
    """Name of the :func:`days_above` column of ``threshold`` (°C), e.g. ``days_above_20`` or ``days_above_20.5``."""
    return f"days_above_{threshold:g}"


def days_above(predictions: xr.DataArray, thresholds: Sequence[float] = THRESHOLDS,
               months: Sequence[int] = (6, 7, 8), year: int | None = None) -> pd.DataFrame:
    """Per reach, the number of days of a season whose predicted temperature is above each threshold.

    Args:
        predictions: (time, reach) daily water temperature, °C.
        thresholds: °C, strictly increasing; a day counts when its temperature is strictly greater.
        months: calendar months 1–12 of the season, e.g. (6, 7, 8) for June–August.
        year: the calendar year whose season is counted (None: the season of every year of the record).

    Returns:
        One row per reach, in ``predictions`` order, indexed by reach id (index name ``reach``): a column per
        threshold (:func:`days_above_column`, int days), ``days_counted`` (int, season days with a prediction:
        the counts are out of these) and ``season_days`` (int, days of the record in the season and year).

    Raises ValueError if ``predictions`` is not (time, reach), ``months`` is empty or not distinct months 1–12,
    ``thresholds`` is empty, not finite or not strictly increasing, ``year`` is not in the record, or no day of
    the record falls in the season (of ``year``).
    """
    _check_dims(predictions)
    limits = _thresholds(thresholds)
    chosen = _season_days(pd.DatetimeIndex(predictions[TIME].values), months, year)
    values = predictions.transpose(TIME, REACH).isel({TIME: np.flatnonzero(chosen)}).values
    finite = np.isfinite(values)
    filled = np.where(finite, values, -np.inf)
    counts = {days_above_column(t): (filled > t).sum(axis=0) for t in limits}
    reaches = pd.Index(predictions[REACH].values, name=REACH)
    return pd.DataFrame({**counts, "days_counted": finite.sum(axis=0),
                         "season_days": np.full(len(reaches), int(chosen.sum()))}, index=reaches)


def expected_days_above_column(threshold: float) -> str:
    """Name of the :func:`expected_days_above` column of ``threshold`` (°C), e.g. ``expected_days_above_20``."""
    return f"expected_{days_above_column(threshold)}"


def expected_days_above(probabilities: dict[float, xr.DataArray], months: Sequence[int] = (6, 7, 8),
                        year: int | None = None) -> pd.DataFrame:
    """Per reach, the expected number of days of a season above each threshold, from an ensemble: the sum over
    the season's days of the probability that the day's temperature is above it (the members' fraction, which
    is what an ensemble run stores as ``p_exceed_20`` and ``p_exceed_25``). Unlike :func:`days_above` of the
    ensemble mean, a day with P = 0.4 adds 0.4 day rather than nothing.

    Args:
        probabilities: threshold (°C) → (time, reach) probability of exceeding it (0–1; NaN on days without
            members, which are not counted).
        months, year: the season, as in :func:`days_above`.

    Returns:
        One row per reach (index ``reach``): a float column per threshold (:func:`expected_days_above_column`,
        days) and ``days_counted`` (int, season days with a probability).

    Raises ValueError as :func:`days_above` does, for probabilities outside [0, 1], or arrays that differ in
    their days or reaches.
    """
    limits = _thresholds(list(probabilities))
    arrays = [probabilities[t] for t in probabilities]
    for array in arrays:
        _check_dims(array)
        if not (array[TIME].equals(arrays[0][TIME]) and array[REACH].equals(arrays[0][REACH])):
            raise ValueError("the probabilities of every threshold need the same days and reaches")
    chosen = np.flatnonzero(_season_days(pd.DatetimeIndex(arrays[0][TIME].values), months, year))
    values = [a.transpose(TIME, REACH).isel({TIME: chosen}).values for a in arrays]
    if any(((v < 0) | (v > 1)).any() for v in values):
        raise ValueError("probabilities must lie in [0, 1]")
    expected = {expected_days_above_column(t): np.nansum(v, axis=0) for t, v in zip(limits, values, strict=True)}
    return pd.DataFrame({**expected, "days_counted": np.isfinite(values[0]).sum(axis=0)},
                        index=pd.Index(arrays[0][REACH].values, name=REACH))


def climatology(predictions: xr.DataArray, window: int = 15) -> xr.DataArray:
    """Each reach's day-of-year climatology: its mean temperature on each calendar day, smoothed.

    Args:
        predictions: (time, reach) daily water temperature, °C (the baseline period: pass a time slice for another).
        window: odd number of calendar days of the centred circular moving mean (1: none). The mean is over
            every finite value in the window, so calendar days without data take their neighbours' mean.

    Returns:
        (dayofyear, reach) °C, float64, ``dayofyear`` 1–366 on the leap-year calendar (:data:`msgl_core.DAY_OF_YEAR`:
        60 is 29 February, 61 always 1 March); NaN where the window holds no finite value. Attrs: ``units``,
        ``baseline`` (first and last day) and ``window_days``.

    Raises ValueError if ``predictions`` is not (time, reach), has no day or repeats a day, or ``window`` is not a
    positive odd integer of at most 365 days.
    """
    _check_dims(predictions)
    if not (isinstance(window, int) and 1 <= window <= CALENDAR_DAYS - 1 and window % 2 == 1):
        raise ValueError(f"window must be a positive odd number of days up to {CALENDAR_DAYS - 1}, got {window!r}")
    time = pd.DatetimeIndex(predictions[TIME].values)
    if time.empty or not time.is_unique:
        raise ValueError("predictions need at least one day and no repeated day")
    slots = _calendar_day(time) - 1
    sums = np.zeros((CALENDAR_DAYS, predictions.sizes[REACH]))
    counts = np.zeros_like(sums)
    for year in np.unique(time.year):  # one year at a time: a lazy record is read in pieces, slots are unique
        rows = np.flatnonzero(time.year == year)
        block = predictions.isel({TIME: rows}).transpose(TIME, REACH).values.astype(np.float64)
        finite = np.isfinite(block)
        sums[slots[rows]] += np.where(finite, block, 0.0)
        counts[slots[rows]] += finite
    sums, counts = _circular_sum(sums, window), _circular_sum(counts, window)
    mean = np.divide(sums, counts, out=np.full_like(sums, np.nan), where=counts > 0)
    return xr.DataArray(mean, dims=(DAY_OF_YEAR, REACH), name="climatology",
                        coords={DAY_OF_YEAR: np.arange(1, CALENDAR_DAYS + 1), REACH: predictions[REACH].values},
                        attrs={"units": "degC", "baseline": f"{time[0]:%Y-%m-%d} to {time[-1]:%Y-%m-%d}",
                               "window_days": window})


def anomaly(temperature: xr.DataArray, clim: xr.DataArray) -> xr.DataArray:
    """``temperature`` minus its reach's climatology on the same calendar day, °C.

    Args:
        temperature: (time, reach) water temperature, °C (predicted or observed; any days, one is fine).
        clim: (dayofyear, reach) °C from :func:`climatology`, with the same reaches in the same order.

    Returns:
        (time, reach) °C, float64, named ``anomaly``, with ``temperature``'s coordinates; NaN where either is NaN.

    Raises ValueError if the dimensions are not these or the reaches differ.
    """
    _check_dims(temperature)
    _check_dims(clim, (DAY_OF_YEAR, REACH))
    if not np.array_equal(clim[REACH].values, temperature[REACH].values):
        raise ValueError("the climatology's reaches differ from the temperature's")
    slots = _calendar_day(pd.DatetimeIndex(temperature[TIME].values))
    normal = clim.sel({DAY_OF_YEAR: xr.DataArray(slots, dims=TIME)}).drop_vars(DAY_OF_YEAR)
    result = (temperature.astype(np.float64) - normal).transpose(*temperature.dims)
    return result.rename("anomaly").assign_attrs(units="degC")


def _calendar_day(time: pd.DatetimeIndex) -> np.ndarray:
    """Day of the leap-year calendar, 1–366: 29 February is 60 and 1 March always 61."""
    return time.day_of_year.to_numpy() + ((~time.is_leap_year) & (time.month > 2)).astype(int)


def _circular_sum(values: np.ndarray, window: int) -> np.ndarray:
    """Sum over a centred window of ``window`` rows, wrapping from the last row to the first (axis 0)."""
    half = window // 2
    padded = np.concatenate([values[len(values) - half:], values, values[:half]])
    cumulative = np.concatenate([np.zeros((1, *values.shape[1:])), np.cumsum(padded, axis=0)])
    return cumulative[window:] - cumulative[:-window]


def _check_dims(array: xr.DataArray, dims: tuple[str, str] = (TIME, REACH)) -> None:
    if set(array.dims) != set(dims) or array.ndim != len(dims):
        raise ValueError(f"expected an array with dimensions {dims}, got {array.dims}")


def _season_days(time: pd.DatetimeIndex, months: Sequence[int], year: int | None) -> np.ndarray:
    """(time,) bool: the days of ``months`` (of ``year``; every year when None). Raises ValueError for bad months,
    a year outside the record or a season without a day."""
    season = _months(months)
    chosen = np.isin(time.month, season)
    if year is not None:
        years = np.unique(time.year)
        if year not in years:
            record = f"{years[0]}–{years[-1]}" if years.size else "empty"
            raise ValueError(f"year {year} is not in the record ({record})")
        chosen &= time.year == year
    if not chosen.any():
        where = f" of {year}" if year is not None else ""
        raise ValueError(f"no day of the record{where} falls in months {', '.join(map(str, season))}")
    return chosen


def _months(months: Sequence[int]) -> np.ndarray:
    season = np.asarray(months)
    if (season.ndim != 1 or not season.size or not np.issubdtype(season.dtype, np.integer)
            or np.unique(season).size != season.size or season.min() < 1 or season.max() > 12):
        raise ValueError(f"months must be distinct calendar months 1–12 (at least one), got {list(months)!r}")
    return season


def _thresholds(thresholds: Sequence[float]) -> np.ndarray:
    limits = np.asarray(thresholds, dtype=float)
    if limits.ndim != 1 or not limits.size or not np.isfinite(limits).all() or (np.diff(limits) <= 0).any():
        raise ValueError(f"thresholds must be finite and strictly increasing (°C), got {list(thresholds)!r}")
    return limits
