"""Days above thresholds, day-of-year climatology and anomaly on hand-built arrays with known answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from msgl_core import DAY_OF_YEAR, REACH, TIME, anomaly, climatology, days_above, expected_days_above


def _array(values: list[list[float]], start: str) -> xr.DataArray:
    """(time, reach) °C from rows of days, reaches "a", "b", ... from ``start``."""
    data = np.asarray(values, dtype=float)
    return xr.DataArray(data, dims=(TIME, REACH), coords={TIME: pd.date_range(start, periods=data.shape[0]),
                                                          REACH: [chr(97 + k) for k in range(data.shape[1])]})


def test_days_above_counts_strictly_above_and_skips_missing_days() -> None:
    # 30 Jun .. 2 Sep 2011 on two reaches: the season (Jul–Aug) excludes the first and last days.
    days = pd.date_range("2011-06-30", "2011-09-02")
    a = np.full(len(days), 10.0)
    b = np.full(len(days), 30.0)  # above both thresholds every day
    a[[0, -1]] = 30.0  # outside the season: never counted
    a[1:4] = [20.0, 20.01, 25.0]  # 1–3 Jul: exactly 20 is not above 20, exactly 25 not above 25
    b[5:15] = np.nan  # ten season days without a prediction
    temperature = xr.DataArray(np.stack([a, b], axis=1), dims=(TIME, REACH), coords={TIME: days, REACH: ["a", "b"]})
    table = days_above(temperature, months=(7, 8), year=2011)
    assert list(table.columns) == ["days_above_20", "days_above_25", "days_counted", "season_days"]
    assert table.index.name == REACH and list(table.index) == ["a", "b"]
    assert table.loc["a"].to_dict() == {"days_above_20": 2, "days_above_25": 0, "days_counted": 62, "season_days": 62}
    assert table.loc["b"].to_dict() == {"days_above_20": 52, "days_above_25": 52, "days_counted": 52, "season_days": 62}
    assert days_above(temperature, thresholds=(19.99,), months=(7,), year=2011).loc["a", "days_above_19.99"] == 3


def test_days_above_pools_every_year_without_a_year() -> None:
    temperature = _array([[21.0]] * (365 + 366), "2011-01-01")  # 2011 and 2012 (leap)
    assert days_above(temperature, months=(2,)).loc["a", "days_above_20"] == 28 + 29
    assert days_above(temperature, months=(2,), year=2012).loc["a", "season_days"] == 29


def test_expected_days_above_sum_the_daily_probabilities_of_the_season() -> None:
    # 30 Jun .. 3 Jul 2011; July only. Reach a: P(>20) 0.5 every day, P(>25) 0.25 on one; reach b: one day
    # without members.
    p20 = _array([[1.0, 1.0], [0.5, 1.0], [0.5, np.nan], [0.5, 0.2]], "2011-06-30")
    p25 = _array([[1.0, 1.0], [0.0, 0.0], [0.25, np.nan], [0.0, 0.0]], "2011-06-30")
    table = expected_days_above({20.0: p20, 25.0: p25}, months=(7,), year=2011)
    assert list(table.columns) == ["expected_days_above_20", "expected_days_above_25", "days_counted"]
    assert table.loc["a"].tolist() == pytest.approx([1.5, 0.25, 3]) and table.loc["b"].tolist() == pytest.approx(
        [1.2, 0.0, 2])
    # 0/1 probabilities (one member, or a certain forecast) give days_above's counts of the same season.
    temperature = _array([[19.0], [21.0], [26.0], [22.0]], "2011-06-30")
    certain = {t: (temperature > t).astype(float) for t in (20.0, 25.0)}
    counts = days_above(temperature, months=(7,), year=2011)
    expected = expected_days_above(certain, months=(7,), year=2011)
    assert expected.loc["a", "expected_days_above_20"] == counts.loc["a", "days_above_20"] == 3
    with pytest.raises(ValueError, match="lie in"):
        expected_days_above({20.0: p20 * 2}, months=(7,))
    with pytest.raises(ValueError, match="same days and reaches"):
        expected_days_above({20.0: p20, 25.0: p25.isel({TIME: slice(1, None)})}, months=(7,))
    with pytest.raises(ValueError, match="not in the record"):
        expected_days_above({20.0: p20}, months=(7,), year=1999)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"months": ()}, "months must be"),
    ({"months": (0, 7)}, "months must be"),
    ({"months": (7, 7)}, "months must be"),
    ({"thresholds": (25.0, 20.0)}, "strictly increasing"),
    ({"thresholds": ()}, "strictly increasing"),
    ({"thresholds": (20.0, float("nan"))}, "strictly increasing"),
    ({"year": 1999}, r"year 1999 is not in the record \(2011–2011\)"),
    ({"months": (12,), "year": 2011}, "no day of the record of 2011 falls in months 12"),
])
def test_days_above_rejects_bad_seasons_and_thresholds(kwargs: dict, message: str) -> None:
    temperature = _array([[21.0]] * 10, "2011-07-01")
    with pytest.raises(ValueError, match=message):
        days_above(temperature, **kwargs)


def test_days_above_needs_time_and_reach() -> None:
    with pytest.raises(ValueError, match="dimensions"):
        days_above(_array([[1.0]], "2011-07-01").rename({REACH: "segment"}))


def test_climatology_is_the_mean_of_each_calendar_day() -> None:
    # Three years; reach a is 10 + year offset (0, 1, 2) every day, with one missing day; reach b is NaN in 2012.
    time = pd.date_range("2011-01-01", "2013-12-31")
    offset = (time.year - 2011).to_numpy(dtype=float)
    a = 10.0 + offset
    a[time.get_loc("2013-03-01")] = np.nan
    b = np.where(time.year == 2012, np.nan, 4.0 + time.month.to_numpy())
    temperature = xr.DataArray(np.stack([a, b], axis=1), dims=(TIME, REACH), coords={TIME: time, REACH: ["a", "b"]})
    clim = climatology(temperature, window=1)
    assert clim.dims == (DAY_OF_YEAR, REACH) and clim.sizes[DAY_OF_YEAR] == 366
    assert clim.attrs["units"] == "degC" and clim.attrs["baseline"] == "2011-01-01 to 2013-12-31"
    assert clim.sel({DAY_OF_YEAR: 1, REACH: "a"}) == pytest.approx(11.0)
    assert clim.sel({DAY_OF_YEAR: 60, REACH: "a"}) == pytest.approx(11.0)  # 29 Feb: only 2012
    assert clim.sel({DAY_OF_YEAR: 61, REACH: "a"}) == pytest.approx(10.5)  # 1 Mar: 2011 and 2012 (2013 missing)
    assert clim.sel({DAY_OF_YEAR: 200, REACH: "b"}) == pytest.approx(11.0)  # July, 2011 and 2013
    assert np.isnan(clim.sel({DAY_OF_YEAR: 60, REACH: "b"}))  # 29 Feb 2012 missing on b


def test_climatology_window_wraps_around_the_year() -> None:
    # One non-leap year with 3 °C on 31 Dec and 0 °C elsewhere: a 3-day window spreads it to 30 Dec and 1 Jan.
    time = pd.date_range("2011-01-01", "2011-12-31")
    values = np.where(time == "2011-12-31", 3.0, 0.0)[:, None]
    temperature = xr.DataArray(values, dims=(TIME, REACH), coords={TIME: time, REACH: ["a"]})
    clim = climatology(temperature, window=3).sel({REACH: "a"})
    assert clim.sel({DAY_OF_YEAR: [365, 366, 1, 2]}).values == pytest.approx([1.0, 1.0, 1.0, 0.0])
    assert clim.sel({DAY_OF_YEAR: 60}) == pytest.approx(0.0)  # 29 Feb: no day of its own, its neighbours' mean
    for window in (0, 2, 366, 3.0):
        with pytest.raises(ValueError, match="window must be"):
            climatology(temperature, window=window)  # type: ignore[arg-type]


def test_anomaly_subtracts_the_calendar_days_climatology() -> None:
    time = pd.date_range("2011-01-01", "2012-12-31")
    seasonal = 10.0 + time.month.to_numpy() + time.day.to_numpy() / 100  # the same on each calendar day
    temperature = xr.DataArray(np.stack([seasonal, seasonal + np.where(time.year == 2012, 1.0, -1.0)], axis=1),
                               dims=(TIME, REACH), coords={TIME: time, REACH: ["a", "b"]})
    clim = climatology(temperature, window=1)
    result = anomaly(temperature.sel({TIME: ["2012-07-04"]}), clim)
    assert result.dims == (TIME, REACH) and result.attrs["units"] == "degC"
    assert result.values[0] == pytest.approx([0.0, 1.0], abs=1e-9)
    observed = temperature.sel({TIME: ["2012-07-04"]}).copy(data=[[np.nan, 30.0]])
    assert np.isnan(anomaly(observed, clim).values[0, 0])
    with pytest.raises(ValueError, match="reaches differ"):
        anomaly(temperature.sel({REACH: ["b", "a"]}), clim)
