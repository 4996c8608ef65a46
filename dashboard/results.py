"""A trained run's results in the shapes the views draw: day slices, reach series, error tables.

:func:`open_results` is cached per process (``pn.cache``), so sessions that open the same run share
one read-only copy of its predictions; :func:`read_run` caches the run records every page lists.
"""

from __future__ import annotations

import functools
import io
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import panel as pn
import xarray as xr

from msgl_core import (
    CONFIG,
    METRICS,
    PARENT_SEGMENT,
    PREDICTIONS,
    REACH,
    THRESHOLDS,
    TIME,
    Run,
    anomaly,
    climatology,
    exceedance_variable,
    is_complete,
    load_run,
    monthly_scores,
    quantile_variable,
    split_labels,
)

#: Run records kept by :func:`read_run` (a run cache of a few thousand runs stays listed without reading them again).
RUN_RECORDS = 4096
#: Predictions up to this size (bytes in memory) are loaded eagerly; bigger ones stay lazy on disk.
EAGER_BYTES = 150_000_000
#: Days sampled from the record for colour ranges (the whole record's, and each calendar month's).
RANGE_SAMPLE_DAYS = 1200


def percentile_range(values: np.ndarray, low: float = 2, high: float = 98) -> tuple[float, float]:
    """A colour range (°C): the ``low``–``high`` percentiles of the finite ``values``, widened to whole degrees
    and at least 1 °C wide; (0, 30) when no value is finite."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return 0.0, 30.0
    bottom, top = np.percentile(finite, [low, high])
    return float(np.floor(bottom)), float(np.ceil(max(top, bottom + 1)))


#: The ensemble quantiles a reach's series carries for an ensemble run (°C).
ENSEMBLE_QUANTILES = tuple(quantile_variable(level) for level in (0.05, 0.25, 0.75, 0.95))


@dataclass(frozen=True, eq=False)
class RunResults:
    """A run with its predictions opened.

    Attributes:
        run: the run (config, metrics, folder).
        predictions: Dataset with ``prediction``, ``water_temp_obs`` (time, reach) °C and ``obs_used``
            (time, reach) int8 (1 where the observation was kept for training/validation).
        reaches: reach ids of the run's domain (the predictions' ``reach`` coordinate).
        time: the daily time axis of the predictions.
        split: (time,) str, "train", "val", "test" or "" for each day (:func:`msgl_core.split_labels`).
        per_reach: the run's test scores per reach (:meth:`msgl_core.RunMetrics.per_reach_frame`).
        clim: (low, high) °C, a colour range covering ~98 % of predicted temperatures.
        held_out: (reaches,) bool, reaches of the run's hold-out segments (their training and validation
            observations were withheld from the model, not by the sparsity mask).
    """

    run: Run
    predictions: xr.Dataset
    reaches: pd.Index
    time: pd.DatetimeIndex
    split: np.ndarray
    per_reach: pd.DataFrame
    clim: tuple[float, float]
    held_out: np.ndarray

    @property
    def name(self) -> str:
        """The run's folder name."""
        return self.run.path.name

    @property
    def is_ensemble(self) -> bool:
        """Whether the run is an ensemble (its predictions hold quantiles and exceedance probabilities)."""
        return ENSEMBLE_QUANTILES[0] in self.predictions

    def day_index(self, date: object) -> int:
        """Position on :attr:`time` of ``date`` (clipped to the record)."""
        position = int(self.time.searchsorted(pd.Timestamp(date)))
        return min(max(position, 0), len(self.time) - 1)

    @cached_property
    def climatology(self) -> xr.DataArray:
        """(dayofyear, reach) °C: each reach's day-of-year climatology of this run's predictions over the whole
        record (:func:`msgl_core.climatology`, 15-day window), computed on first use and kept with the run."""
        return climatology(self.predictions["prediction"])

    @cached_property
    def month_clims(self) -> dict[int, tuple[float, float]]:
        """Calendar month (1–12) → colour range (°C) of its predictions over the record: the 2nd–98th
        percentile (:func:`percentile_range`) of up to :data:`RANGE_SAMPLE_DAYS` evenly spaced days."""
        days = np.arange(0, len(self.time), max(1, len(self.time) // RANGE_SAMPLE_DAYS))
        sample = self.predictions["prediction"].isel({TIME: days}).values
        months = self.time[days].month
        return {m: percentile_range(sample[months == m]) for m in range(1, 13)}

    def day_anomaly(self, date: object) -> pd.DataFrame:
        """One day's ``prediction`` and ``observed`` minus each reach's :attr:`climatology` on that calendar day, °C."""
        ds = self.predictions.isel({TIME: [self.day_index(date)]})
        return pd.DataFrame({name: anomaly(ds[variable], self.climatology).values[0]
                             for name, variable in (("prediction", "prediction"), ("observed", "water_temp_obs"))},
                            index=self.reaches)

    def day(self, date: object) -> pd.DataFrame:
        """One day on every reach: ``prediction``, ``observed``, ``difference`` (predicted − observed), °C, and ``used`` (bool);
        for an ensemble run also ``prediction_q05``, ``prediction_q95`` (°C) and ``p_exceed_20``, ``p_exceed_25`` (0–1)."""
        k = self.day_index(date)
        ds = self.predictions.isel({TIME: k})
        prediction = ds["prediction"].values.astype(float)
        observed = ds["water_temp_obs"].values.astype(float)
        day = pd.DataFrame({"prediction": prediction, "observed": observed, "difference": prediction - observed,
                            "used": ds["obs_used"].values.astype(bool)}, index=self.reaches)
        if self.is_ensemble:
            for name in (quantile_variable(0.05), quantile_variable(0.95), *map(exceedance_variable, THRESHOLDS)):
                day[name] = ds[name].values.astype(float)
        return day

    def is_held_out(self, reach: str) -> bool:
        """Whether ``reach`` lies on one of the run's hold-out segments."""
        return bool(self.held_out[self.reaches.get_loc(reach)])

    def reach_series(self, reach: str) -> pd.DataFrame:
        """Daily series of ``reach``: ``prediction``, ``observed`` (°C), ``used`` (bool) and ``split``, indexed by date;
        for an ensemble run also :data:`ENSEMBLE_QUANTILES` (°C, NaN on days that were not sampled).

        Raises KeyError if ``reach`` is not in the run's domain.
        """
        if reach not in self.reaches:
            raise KeyError(f"reach {reach!r} is not in run {self.name}'s domain")
        ds = self.predictions.sel({REACH: reach})
        series = pd.DataFrame({"prediction": ds["prediction"].values.astype(float),
                               "observed": ds["water_temp_obs"].values.astype(float),
                               "used": ds["obs_used"].values.astype(bool), "split": self.split}, index=self.time)
        if self.is_ensemble:
            for name in ENSEMBLE_QUANTILES:
                series[name] = ds[name].values.astype(float)
        return series

    def monthly_errors(self, reach: str) -> pd.DataFrame:
        """Test-period scores of ``reach`` by calendar month (1–12): ``month`` and the
        :class:`msgl_core.Scores` fields (°C for rmse, mae, bias), from :func:`msgl_core.monthly_scores`, so
        NaN below :data:`msgl_core.MIN_GROUP_OBS` observations, as in the run's metrics."""
        series = self.reach_series(reach)
        test = series[series["split"] == "test"]
        scores = monthly_scores(test["prediction"].to_numpy(), test["observed"].to_numpy(),
                                test.index.month.to_numpy())
        return pd.DataFrame([{"month": month, **vars(s)} for month, s in scores.items()])

    def default_date(self) -> pd.Timestamp:
        """The test-period day with the most observed reaches (the first day if there is none)."""
        observed = self.predictions["water_temp_obs"].notnull().sum(REACH).values
        observed = np.where(self.split == "test", observed, -1)
        return self.time[int(np.argmax(observed))]

    # -- downloads -------------------------------------------------------------------------------

    def predictions_netcdf(self) -> io.BytesIO:
        """The run's ``predictions.nc`` (prediction, observation and mask, °C), as bytes."""
        return io.BytesIO((self.run.path / PREDICTIONS).read_bytes())

    def predictions_csv(self, test_only: bool = False) -> io.StringIO:
        """Long CSV: ``date, reach, parent_segment, split, predicted_c, observed_c, obs_used`` (°C), every
        reach-day (or test days only)."""
        days = self.split == "test" if test_only else np.ones(len(self.time), dtype=bool)
        ds = self.predictions.isel({TIME: np.flatnonzero(days)})
        frame = pd.DataFrame({
            "date": np.repeat(ds[TIME].values, len(self.reaches)),
            REACH: np.tile(self.reaches.to_numpy(), ds.sizes[TIME]),
            PARENT_SEGMENT: np.tile(ds[PARENT_SEGMENT].values, ds.sizes[TIME]),
            "split": np.repeat(self.split[days], len(self.reaches)),
            "predicted_c": ds["prediction"].values.ravel().round(2),
            "observed_c": ds["water_temp_obs"].values.ravel().round(2),
            "obs_used": ds["obs_used"].values.ravel(),
        })
        out = io.StringIO()
        frame.to_csv(out, index=False, date_format="%Y-%m-%d")
        out.seek(0)
        return out

    def metrics_frame(self, reaches: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
        """Per-reach test metrics (°C for rmse, mae, bias) on every reach of the domain, with geometry (EPSG:4326)."""
        domain = reaches.loc[reaches.index.intersection(self.reaches)]
        table = self.per_reach.reindex(domain.index)
        table["n_obs"] = table["n_obs"].fillna(0).astype(int)
        table["holdout"] = self.held_out[self.reaches.get_indexer(domain.index)]
        frame = gpd.GeoDataFrame({PARENT_SEGMENT: domain[PARENT_SEGMENT].to_numpy(),
                                  **{c: table[c].to_numpy() for c in table}},
                                 geometry=domain.geometry.to_numpy(), crs=domain.crs, index=domain.index).to_crs(4326)
        frame.index.name = "reach_id"
        return frame

    def metrics_csv(self, reaches: gpd.GeoDataFrame) -> io.StringIO:
        """Per-reach test metrics as CSV (no geometry)."""
        out = io.StringIO()
        self.metrics_frame(reaches).drop(columns="geometry").to_csv(out)
        out.seek(0)
        return out

    def metrics_geopackage(self, reaches: gpd.GeoDataFrame) -> io.BytesIO:
        """Per-reach test metrics as a GeoPackage (layer ``per_reach_metrics``, EPSG:4326)."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "metrics.gpkg"
            self.metrics_frame(reaches).reset_index().to_file(path, layer="per_reach_metrics", driver="GPKG")
            return io.BytesIO(path.read_bytes())


@pn.cache(max_items=6)
def _open(path: str, stamp: float) -> RunResults:
    run = load_run(path)
    with run.predictions(lazy=True) as lazy:
        size = sum(v.size * v.dtype.itemsize for v in lazy.data_vars.values())
    predictions = run.predictions(lazy=size > EAGER_BYTES)
    time = pd.DatetimeIndex(predictions[TIME].values)
    sample = predictions["prediction"].isel({TIME: slice(None, None, max(1, len(time) // 400))}).values
    clim = percentile_range(sample, 1, 99)
    held_out = np.isin(predictions[PARENT_SEGMENT].values, run.config.holdout_segments)
    return RunResults(run, predictions, pd.Index(predictions[REACH].values.astype(str)), time,
                      split_labels(time, run.config), run.metrics.per_reach_frame(), clim, held_out)


def run_stamp(path: Path) -> tuple[int, int] | None:
    """When a run's record last changed: the modification times (ns) of its ``config.yaml`` and ``metrics.json``,
    or None when they cannot be read (no complete run there). It keys the per-process caches of run records
    (:func:`read_run`) and reliability verdicts (:meth:`dashboard.resources.Resources.reliability`)."""
    try:
        return (path / CONFIG).stat().st_mtime_ns, (path / METRICS).stat().st_mtime_ns
    except OSError:
        return None


def read_run(path: Path) -> Run:
    """:func:`msgl_core.load_run`, cached per process while the run's :func:`run_stamp` is unchanged: every page
    lists the run cache (:func:`msgl_core.list_runs`), and reading a hundred runs cost ~1 s of server time per
    page. Raises what :func:`msgl_core.load_run` raises (nothing is cached then)."""
    stamp = run_stamp(path)
    if stamp is None:
        return load_run(path)  # not a complete run: load_run says why
    return _read_run(str(path), stamp)


@functools.lru_cache(maxsize=RUN_RECORDS)
def _read_run(path: str, stamp: tuple[int, int]) -> Run:
    return load_run(path)


def open_results(path: str | Path) -> RunResults:
    """Open the run in ``path`` with its predictions (cached per process while the run is unchanged).

    Raises FileNotFoundError for an incomplete run, ValueError for an unreadable one.
    """
    path = Path(path).resolve()
    if not is_complete(path):
        raise FileNotFoundError(f"{path} is not a complete run (no {METRICS})")
    return _open(str(path), (path / METRICS).stat().st_mtime)
