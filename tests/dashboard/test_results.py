"""A run's results as the views use them: day slices, reach series, errors by month, downloads, geometry."""

from __future__ import annotations

import io

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from dashboard.geometry import Bounds, line_pieces, nearest_line, to_mercator
from dashboard.resources import Resources
from dashboard.results import open_results, per_reach_metrics
from dashboard.views.compare import rmse_by_sparsity
from dashboard.views.reach_detail import observation_class, split_spans
from msgl_core.runs import Run
from tests.tiny_bundle import N_REACHES, TIME


def test_line_pieces_keep_every_line_and_project_once(resources: Resources) -> None:
    pieces = resources.reach_pieces
    assert set(pieces["reach"]) == set(resources.reaches.index) and len(resources.reaches) == N_REACHES
    assert resources.reaches.crs.to_epsg() == 3857 and (pieces["x0"].abs() > 1e6).all()  # metres, not degrees
    lines = gpd.GeoSeries.from_wkt(["LINESTRING (0 0, 1 0, 2 0)", "MULTILINESTRING ((5 5, 6 6), (7 7, 8 8))"])
    table = line_pieces(lines, tolerance=0)
    assert table["line"].tolist() == [0, 0, 1, 1] and table[["x0", "x1"]].iloc[1].tolist() == [1.0, 2.0]
    assert nearest_line(lines, 1.0, 0.4, max_distance=1) == 0 and nearest_line(lines, 50, 50, max_distance=1) is None
    width, height = Bounds(0, 0, 100, 400).frame_size(500, 800)
    assert (width, height) == (200, 800)  # equal x/y scale: the tall extent narrows the frame
    assert to_mercator(resources.data.network.segments).crs.to_epsg() == 3857


def test_day_series_and_monthly_errors(tiny_run: Run) -> None:
    results = open_results(tiny_run.path)
    assert results is open_results(tiny_run.path)  # cached per process
    assert results.time.equals(pd.DatetimeIndex(TIME)) and len(results.reaches) == N_REACHES
    assert set(results.split) == {"train", "val", "test"}
    day = results.day("2000-03-20")
    assert day.loc["101_1", "difference"] == pytest.approx(day.loc["101_1", "prediction"] - day.loc["101_1", "observed"])
    assert np.isnan(day.loc["102_1", "observed"]) and np.isfinite(day["prediction"]).all()
    assert results.default_date() >= pd.Timestamp("2000-03-11")  # a test-period day
    series = results.reach_series("101_1")
    classes = observation_class(series)
    assert set(classes) <= {"used", "masked", "test"} and (classes == "test").sum() == 21
    months = results.monthly_errors("101_1")
    assert months["month"].tolist() == list(range(1, 13))
    assert months.loc[2, "n_obs"] == 21 and months.loc[2, "rmse"] > 0  # March: the test period
    with pytest.raises(KeyError, match="not in run"):
        results.reach_series("999_1")
    spans = split_spans(results.time, results.split, "val")
    assert spans == [(pd.Timestamp("2000-02-16"), pd.Timestamp("2000-03-11"))]


def test_per_reach_metrics_match_the_run(tiny_run: Run) -> None:
    table = per_reach_metrics(tiny_run)
    assert table.index.tolist() == sorted(tiny_run.metrics["fine"]["per_reach"])
    reach = table.index[0]
    assert table.loc[reach, "rmse"] == pytest.approx(tiny_run.metrics["fine"]["per_reach"][reach]["rmse"])


def test_downloads(tiny_run: Run, resources: Resources, tmp_path: object) -> None:
    results = open_results(tiny_run.path)
    netcdf = tmp_path / "p.nc"  # type: ignore[operator]
    netcdf.write_bytes(results.predictions_netcdf().getvalue())
    with xr.open_dataset(netcdf) as ds:
        assert ds["prediction"].attrs["units"] == "degC" and ds.sizes["reach"] == N_REACHES
    csv = pd.read_csv(results.predictions_csv())
    assert len(csv) == len(TIME) * N_REACHES
    assert list(csv.columns) == ["date", "reach", "segment", "split", "predicted_c", "observed_c", "obs_used"]
    test_csv = pd.read_csv(results.predictions_csv(test_only=True))
    assert set(test_csv["split"]) == {"test"} and len(test_csv) == 21 * N_REACHES
    metrics = pd.read_csv(results.metrics_csv(resources.reaches), index_col="reach_id")
    assert len(metrics) == N_REACHES and metrics["n_obs"].sum() == results.metrics["n_obs"].sum() > 0
    path = tmp_path / "m.gpkg"  # type: ignore[operator]
    path.write_bytes(results.metrics_geopackage(resources.reaches).getvalue())
    frame = gpd.read_file(path, layer="per_reach_metrics")
    assert frame.crs.to_epsg() == 4326 and len(frame) == N_REACHES and "rmse" in frame
    assert isinstance(results.metrics_csv(resources.reaches), io.StringIO)


def test_rmse_by_sparsity_averages_seeds() -> None:
    table = pd.DataFrame({"variant": ["a", "a", "a", "b"], "sparsity": [0.1, 0.1, 1.0, 0.1], "rmse": [1.0, 3.0, 1.5, 2.0]})
    summary = rmse_by_sparsity(table)
    row = summary[(summary["variant"] == "a") & (summary["sparsity"] == 0.1)].iloc[0]
    assert (row["mean"], row["min"], row["max"], row["count"]) == (2.0, 1.0, 3.0, 2)
