"""A run's results as the views use them: day slices, reach series, errors by month, downloads, geometry,
and the Compare view's statistics (msgl compare's own)."""

from __future__ import annotations

import io
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import xarray as xr

from dashboard.geometry import Bounds, line_pieces, nearest_line, to_mercator
from dashboard.resources import Resources
from dashboard.results import open_results
from dashboard.views.compare import comparisons, runs_table
from dashboard.views.reach_detail import observation_class, split_spans
from msgl_core import (
    MIN_GROUP_OBS,
    PARENT_SEGMENT,
    MultiscaleData,
    Run,
    RunConfig,
    RunMetrics,
    Scores,
    SkillSection,
    format_table,
    grid,
    list_runs,
    monthly_scores,
    run_grid,
    summarise,
)
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
    assert list(months.columns) == ["month", *Scores.LABELS]
    with pytest.raises(KeyError, match="not in run"):
        results.reach_series("999_1")
    spans = split_spans(results.time, results.split, "val")
    assert spans == [(pd.Timestamp("2000-02-16"), pd.Timestamp("2000-03-11"))]


def test_reach_months_use_the_core_minimum_of_observations(tiny_run: Run) -> None:
    """The reach panel's month table is msgl_core's: NaN below MIN_GROUP_OBS (10) test observations, not 3."""
    results = open_results(tiny_run.path)
    sparse = results.monthly_errors("104_1").set_index("month").loc[3]  # observed every third day: 7 test days
    assert 3 <= sparse["n_obs"] < MIN_GROUP_OBS
    assert np.isnan(sparse[["rmse", "mae", "bias", "nse", "kge"]].to_numpy(dtype=float)).all()
    dense = results.monthly_errors("101_1").set_index("month").loc[3]
    assert dense["n_obs"] >= MIN_GROUP_OBS and np.isfinite(dense["rmse"])
    series = results.reach_series("101_1")
    test = series[series["split"] == "test"]
    core = monthly_scores(test["prediction"].to_numpy(), test["observed"].to_numpy(), test.index.month.to_numpy())
    assert dense["rmse"] == core[3].rmse and dense["n_obs"] == core[3].n_obs
    assert results.per_reach.loc["104_1", "n_obs"] == sparse["n_obs"] and np.isnan(results.per_reach.loc["104_1", "rmse"])


def test_per_reach_scores_are_the_runs(tiny_run: Run) -> None:
    results = open_results(tiny_run.path)
    pd.testing.assert_frame_equal(results.per_reach, tiny_run.metrics.per_reach_frame())
    assert results.per_reach.index.tolist() == sorted(tiny_run.metrics.fine.per_node)
    reach = results.per_reach.index[0]
    assert results.per_reach.loc[reach, "rmse"] == pytest.approx(tiny_run.metrics.fine.per_node[reach].rmse)
    assert not results.held_out.any()


def test_downloads(tiny_run: Run, resources: Resources, tmp_path: object) -> None:
    results = open_results(tiny_run.path)
    netcdf = tmp_path / "p.nc"  # type: ignore[operator]
    netcdf.write_bytes(results.predictions_netcdf().getvalue())
    with xr.open_dataset(netcdf) as ds:
        assert ds["prediction"].attrs["units"] == "degC" and ds.sizes["reach"] == N_REACHES
    csv = pd.read_csv(results.predictions_csv())
    assert len(csv) == len(TIME) * N_REACHES
    assert list(csv.columns) == ["date", "reach", PARENT_SEGMENT, "split", "predicted_c", "observed_c", "obs_used"]
    assert (csv.loc[csv["reach"] == "104_2", PARENT_SEGMENT] == 104).all()
    test_csv = pd.read_csv(results.predictions_csv(test_only=True))
    assert set(test_csv["split"]) == {"test"} and len(test_csv) == 21 * N_REACHES
    metrics = pd.read_csv(results.metrics_csv(resources.reaches), index_col="reach_id")
    assert len(metrics) == N_REACHES and metrics["n_obs"].sum() == results.per_reach["n_obs"].sum() > 0
    assert PARENT_SEGMENT in metrics and not metrics["holdout"].any()
    path = tmp_path / "m.gpkg"  # type: ignore[operator]
    path.write_bytes(results.metrics_geopackage(resources.reaches).getvalue())
    frame = gpd.read_file(path, layer="per_reach_metrics")
    assert frame.crs.to_epsg() == 4326 and len(frame) == N_REACHES and "rmse" in frame
    assert isinstance(results.metrics_csv(resources.reaches), io.StringIO)


def test_compare_view_reports_what_msgl_compare_reports(runs_dir: Path, dash_data: MultiscaleData,
                                                          base_config: RunConfig) -> None:
    """The Compare view's table is `msgl compare`'s (run_grid over the same cache, then summarise)."""
    runs = list_runs(runs_dir).runs
    (group,) = comparisons(runs)
    assert group.label == "" and len(group.runs) == 2
    outcomes = run_grid(grid(base_config, ["rgcn_fine"], [1.0, 0.5], [1]), dash_data, runs_dir, train=False)
    expected = summarise(outcomes)
    pd.testing.assert_frame_equal(group.table, expected)
    assert group.markdown() == format_table(expected)
    assert list(runs_table(runs).columns) == list(runs[0].summary())


def _fake_run(name: str, rmse: float, **overrides: object) -> Run:
    cfg = RunConfig().with_overrides(**overrides)
    scores = Scores(rmse, rmse, 0.0, 0.5, 0.5, 100)
    return Run(Path("/runs") / name, cfg, "data", "0", RunMetrics(cfg.test_periods, SkillSection(scores, {}, {})))


def test_compare_pools_seeds_but_not_other_settings() -> None:
    runs = [_fake_run("a", 1.0, variant="rgcn_fine", seed=1), _fake_run("b", 3.0, variant="rgcn_fine", seed=2),
            _fake_run("c", 5.0, variant="rgcn_fine", seed=1, epochs=2)]
    groups = {g.label: g for g in comparisons(runs)}
    assert set(groups) == {"epochs 2", "epochs 40"}
    row = groups["epochs 40"].table.iloc[0]
    assert (row["rmse_mean"], row["rmse_std"], row["n_seeds"]) == (2.0, pytest.approx(np.sqrt(2)), 2)
    assert groups["epochs 2"].table.iloc[0]["n_seeds"] == 1


def test_run_records_and_verdicts_are_read_once_per_state_of_their_files(tiny_run: Run, resources: Resources,
                                                                        tmp_path: Path) -> None:
    """Every page lists the run cache; the records and reliability verdicts are cached until a run's files change."""
    import os
    import shutil

    from dashboard.results import read_run
    from msgl_core import METRICS, load_run, reliability

    folder = tmp_path / "runs"
    shutil.copytree(tiny_run.path, folder / tiny_run.path.name)
    path = folder / tiny_run.path.name
    first = list_runs(folder, load=read_run).runs[0]
    assert read_run(path) is first and first.label() == load_run(path).label()  # (NaN scores: no ==)
    verdict = resources.reliability(first)
    assert resources.reliability(first) is verdict and verdict == reliability(first, resources.data)
    later = (path / METRICS).stat().st_mtime_ns + 10**9
    os.utime(path / METRICS, ns=(later, later))  # the run was written again
    again = read_run(path)
    assert again is not first and again.config == first.config
    assert resources.reliability(again) is not verdict and resources.reliability(again) == verdict
    with pytest.raises(FileNotFoundError, match="not a complete run"):
        read_run(tmp_path / "nothing")
