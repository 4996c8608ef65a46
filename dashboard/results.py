"""A trained run's results in the shapes the views draw: day slices, reach series, error tables.

:func:`open_results` is cached per process (``pn.cache``), so sessions that open the same run share
one read-only copy of its predictions.
"""

from __future__ import annotations

import io
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import panel as pn
import xarray as xr

from msgl_core.data.splits import period_mask
from msgl_core.evaluate.metrics import skill
from msgl_core.runs import METRICS, PREDICTIONS, Run, is_complete, load_run

#: Predictions up to this size (bytes in memory) are loaded eagerly; bigger ones stay lazy on disk.
EAGER_BYTES = 150_000_000
#: Metrics per reach, in the order of the tables.
METRIC_COLUMNS = ["rmse", "mae", "bias", "nse", "kge", "n_obs"]
#: Labels and units of the metrics.
METRIC_LABELS = {"rmse": "RMSE (°C)", "mae": "MAE (°C)", "bias": "bias, predicted − observed (°C)",
                 "nse": "NSE (–)", "kge": "KGE (–)", "n_obs": "test observations"}
SPLITS = ("train", "val", "test")
#: Fewest test observations for a reach-month error in :meth:`RunResults.monthly_errors`.
MIN_MONTH_OBS = 3


def per_reach_metrics(run: Run) -> pd.DataFrame:
    """Test-period metrics per gauged reach (``rmse``, ``mae``, ``bias`` in °C; ``nse``, ``kge``; ``n_obs``).

    Reaches held out from training are included with ``holdout`` True. NaN where a metric is undefined.
    """
    frames = []
    for section in ("fine", "holdout"):
        rows = run.metrics.get(section, {}).get("per_reach", {})
        frame = pd.DataFrame.from_dict(rows, orient="index", columns=METRIC_COLUMNS, dtype=float)
        frame["holdout"] = section == "holdout"
        frames.append(frame)
    table = pd.concat(frames) if frames else pd.DataFrame(columns=[*METRIC_COLUMNS, "holdout"])
    table.index = table.index.astype(str)
    table.index.name = "reach"
    table["n_obs"] = table["n_obs"].fillna(0).astype(int)
    return table.sort_index()


@dataclass(frozen=True, eq=False)
class RunResults:
    """A run with its predictions opened.

    Attributes:
        run: the run (config, metrics, folder).
        predictions: Dataset with ``prediction``, ``water_temp_obs`` (time, reach) °C and ``obs_used``
            (time, reach) int8 (1 where the observation was kept for training/validation).
        reaches: reach ids of the run's domain (the predictions' ``reach`` coordinate).
        time: the daily time axis of the predictions.
        split: (time,) str, "train", "val", "test" or "" for each day.
        metrics: :func:`per_reach_metrics` of the run.
        clim: (low, high) °C, a colour range covering ~98 % of predicted temperatures.
    """

    run: Run
    predictions: xr.Dataset
    reaches: pd.Index
    time: pd.DatetimeIndex
    split: np.ndarray
    metrics: pd.DataFrame
    clim: tuple[float, float]

    @property
    def name(self) -> str:
        """The run's folder name."""
        return self.run.path.name

    def describe(self) -> str:
        """One line: variant, domain, sparsity, seed, epochs, test RMSE (°C)."""
        cfg = self.run.config
        return (f"{cfg.variant} · {cfg.basin} · ρ = {cfg.sparsity:.3g} · seed {cfg.seed} · {cfg.epochs} epochs · "
                f"test RMSE {self.run.test_rmse:.2f} °C")

    def day_index(self, date: object) -> int:
        """Position on :attr:`time` of ``date`` (clipped to the record)."""
        position = int(self.time.searchsorted(pd.Timestamp(date)))
        return min(max(position, 0), len(self.time) - 1)

    def day(self, date: object) -> pd.DataFrame:
        """One day on every reach: ``prediction``, ``observed``, ``difference`` (predicted − observed), °C, and ``used`` (bool)."""
        k = self.day_index(date)
        ds = self.predictions.isel(time=k)
        prediction = ds["prediction"].values.astype(float)
        observed = ds["water_temp_obs"].values.astype(float)
        return pd.DataFrame({"prediction": prediction, "observed": observed, "difference": prediction - observed,
                             "used": ds["obs_used"].values.astype(bool)}, index=self.reaches)

    def reach_series(self, reach: str) -> pd.DataFrame:
        """Daily series of ``reach``: ``prediction``, ``observed`` (°C), ``used`` (bool) and ``split``, indexed by date.

        Raises KeyError if ``reach`` is not in the run's domain.
        """
        if reach not in self.reaches:
            raise KeyError(f"reach {reach!r} is not in run {self.name}'s domain")
        ds = self.predictions.sel(reach=reach)
        return pd.DataFrame({"prediction": ds["prediction"].values.astype(float),
                             "observed": ds["water_temp_obs"].values.astype(float),
                             "used": ds["obs_used"].values.astype(bool), "split": self.split}, index=self.time)

    def monthly_errors(self, reach: str) -> pd.DataFrame:
        """Test-period RMSE and bias (°C) of ``reach`` by calendar month (1–12); NaN below :data:`MIN_MONTH_OBS` observations."""
        series = self.reach_series(reach)
        test = series[series["split"] == "test"]
        rows = []
        for month in range(1, 13):
            chunk = test[test.index.month == month]
            s = skill(chunk["prediction"].to_numpy(), chunk["observed"].to_numpy(), MIN_MONTH_OBS)
            rows.append({"month": month, "rmse": s["rmse"], "bias": s["bias"], "n_obs": s["n_obs"]})
        return pd.DataFrame(rows)

    def default_date(self) -> pd.Timestamp:
        """The test-period day with the most observed reaches (the first day if there is none)."""
        observed = self.predictions["water_temp_obs"].notnull().sum("reach").values
        observed = np.where(self.split == "test", observed, -1)
        return self.time[int(np.argmax(observed))]

    def masked_observations(self) -> int:
        """Number of training/validation observations withheld from the model by the sparsity mask."""
        fit_days = np.isin(self.split, ("train", "val"))
        obs = self.predictions["water_temp_obs"].values[fit_days]
        used = self.predictions["obs_used"].values[fit_days].astype(bool)
        return int((np.isfinite(obs) & ~used).sum())

    # -- downloads -------------------------------------------------------------------------------

    def predictions_netcdf(self) -> io.BytesIO:
        """The run's ``predictions.nc`` (prediction, observation and mask, °C), as bytes."""
        return io.BytesIO((self.run.path / PREDICTIONS).read_bytes())

    def predictions_csv(self, test_only: bool = False) -> io.StringIO:
        """Long CSV: ``date, reach, segment, split, predicted_c, observed_c, obs_used`` (°C), every reach-day (or test days only)."""
        days = self.split == "test" if test_only else np.ones(len(self.time), dtype=bool)
        ds = self.predictions.isel(time=np.flatnonzero(days))
        frame = pd.DataFrame({
            "date": np.repeat(ds["time"].values, len(self.reaches)),
            "reach": np.tile(self.reaches.to_numpy(), ds.sizes["time"]),
            "segment": np.tile(ds["segment"].values, ds.sizes["time"]),
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
        table = self.metrics.reindex(domain.index)
        table["n_obs"] = table["n_obs"].fillna(0).astype(int)
        table["holdout"] = table["holdout"].astype("boolean").fillna(False).astype(bool)
        frame = gpd.GeoDataFrame({"segment": domain["segment"].to_numpy(), **{c: table[c].to_numpy() for c in table}},
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


def split_labels(time: pd.DatetimeIndex, run: Run) -> np.ndarray:
    """(time,) "train", "val", "test" or "" from the run's periods."""
    labels = np.full(len(time), "", dtype=object)
    cfg = run.config
    for name, periods in (("train", cfg.train_periods), ("val", cfg.val_periods), ("test", cfg.test_periods)):
        labels[period_mask(time, periods)] = name
    return labels


#: netCDF4/HDF5 are not thread-safe: sessions and training threads open prediction files one at a time.
_OPEN_LOCK = threading.Lock()


@pn.cache(max_items=6)
def _open(path: str, stamp: float) -> RunResults:
    run = load_run(path)
    with _OPEN_LOCK:
        with run.predictions() as lazy:
            size = sum(v.size * v.dtype.itemsize for v in lazy.data_vars.values())
        predictions = run.predictions()
        if size <= EAGER_BYTES:
            loaded = predictions.load()
            predictions.close()
            predictions = loaded
    time = pd.DatetimeIndex(predictions["time"].values)
    sample = predictions["prediction"].isel(time=slice(None, None, max(1, len(time) // 400))).values
    finite = sample[np.isfinite(sample)]
    low, high = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 30.0))
    clim = (float(np.floor(low)), float(np.ceil(max(high, low + 1))))
    return RunResults(run, predictions, pd.Index(predictions["reach"].values.astype(str)), time,
                      split_labels(time, run), per_reach_metrics(run), clim)


def open_results(path: str | Path) -> RunResults:
    """Open the run in ``path`` with its predictions (cached per process while the run is unchanged).

    Raises FileNotFoundError for an incomplete run, ValueError for an unreadable one.
    """
    path = Path(path).resolve()
    if not is_complete(path):
        raise FileNotFoundError(f"{path} is not a complete run (no {METRICS})")
    return _open(str(path), (path / METRICS).stat().st_mtime)
