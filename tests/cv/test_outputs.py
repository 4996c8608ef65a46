"""msgl_core.cv.outputs on a real (tiny) ``msgl cv`` grid: the files read back into the tables the dashboard shows."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from msgl_core.config import RunConfig
from msgl_core.cv.analysis import VARIANCE_FILE, AnalysisOptions
from msgl_core.cv.folds import FoldRules
from msgl_core.cv.outputs import (
    MIN_INTERVAL_OBS,
    PAIRED_COLUMNS,
    VARIANCE_COLUMNS,
    WATER_YEAR_REPLICATES,
    cv_folder_name,
    cv_grids,
    paired_table,
    reach_skill,
    read_cv,
    variance_table,
)
from msgl_core.cv.run import REACH_YEARS_FILE, RESULTS_FILE, CVPlan, run_cv
from msgl_core.cv.variance import water_year_interval
from msgl_core.data import MultiscaleData
from tests.tiny_bundle import PERIODS

BASE = RunConfig.from_dict({"basin": "drb", "window": 20, "epochs": 1, "device": "cpu", "threads": 1, **PERIODS})
PLAN = CVPlan(BASE, ("remap", "rgcn_fine"), (1, 2), "segment", 2, 1, 0, rules=FoldRules(1, 1, 1.0),
              analysis=AnalysisOptions(replicates=50))


@pytest.fixture(scope="module")
def cv_folder(tiny_data: MultiscaleData, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("cv_outputs")
    run_cv(PLAN, tiny_data, root / "cv", root / "runs", workers=0)
    return root / "cv"


def test_tables_match_the_analysis_file(cv_folder: Path) -> None:
    outputs = read_cv(cv_folder)
    values = json.loads((cv_folder / VARIANCE_FILE).read_text())
    table = variance_table(outputs)
    assert list(table.columns) == list(VARIANCE_COLUMNS) and list(table["variant"]) == ["remap", "rgcn_fine"]
    fold = values["variants"]["remap"]["fold"]
    row = table.iloc[0]
    assert row["mean_rmse"] == pytest.approx(fold["mean"])
    assert row["partition"] == pytest.approx(fold["components"]["partition"])
    assert row["mean_low"] <= row["mean_rmse"] <= row["mean_high"]
    assert (row["n_partitions"], row["n_seeds"]) == (2, 2)
    paired = paired_table(outputs)
    assert list(paired.columns) == list(PAIRED_COLUMNS) and (paired.loc[0, "a"], paired.loc[0, "b"]) == ("remap", "rgcn_fine")
    assert paired.loc[0, "difference"] == pytest.approx(row["mean_rmse"] - table.iloc[1]["mean_rmse"], abs=1e-9)


def test_reach_skill_summarises_each_reach_over_its_runs(cv_folder: Path) -> None:
    outputs = read_cv(cv_folder)
    skill = reach_skill(outputs)
    remap = skill[skill["variant"] == "remap"]
    # Every test reach is out-of-fold in exactly one fold per repeat: one run per seed.
    assert (remap["n_runs"] <= 2).all() and len(remap) == outputs.reach_results.query("variant == 'remap'")["reach_id"].nunique()
    assert remap["n_obs"].max() < MIN_INTERVAL_OBS and remap["rmse_p05"].isna().all()  # the tiny record is short
    lenient = reach_skill(outputs, min_obs=5)
    with_interval = lenient[lenient["variant"] == "remap"].dropna(subset=["rmse_p05"])
    assert len(with_interval) and (with_interval["n_obs"] >= 5).all()
    assert (with_interval["rmse_p05"] <= with_interval["rmse_p95"]).all()
    runs = outputs.reach_results.query("variant == 'remap'").groupby("reach_id")["rmse"]
    np.testing.assert_allclose(with_interval.set_index("reach_id")["rmse_p95"],
                               runs.quantile(0.95).reindex(with_interval["reach_id"]), rtol=1e-12)

    fold_of = outputs.folds[0].fold_of()
    assert list(remap["fold"]) == [fold_of[int(s)] for s in remap["seg_id_nat"]]


def test_water_year_sums_reproduce_each_runs_reach_scores(cv_folder: Path) -> None:
    outputs = read_cv(cv_folder)
    keys = ["variant", "repeat", "fold", "seed", "reach_id"]
    years = outputs.reach_years.groupby(keys)[["n_obs", "sse"]].sum()
    reaches = outputs.reach_results.set_index(keys)
    assert len(years) == len(reaches) and (years["n_obs"] == reaches["n_obs"].reindex(years.index)).all()
    scored = reaches["rmse"].notna()
    np.testing.assert_allclose(np.sqrt(years["sse"] / years["n_obs"]).reindex(reaches.index[scored]),
                               reaches.loc[scored, "rmse"], rtol=1e-5)
    assert set(outputs.reach_years["water_year"]) == {2000}  # the tiny record's test period: March 2000


def test_reach_skill_gives_the_water_year_bootstrap_of_the_pooled_rmse(cv_folder: Path) -> None:
    outputs = read_cv(cv_folder)
    one_year = reach_skill(outputs, min_obs=5)
    assert (one_year["n_water_years"] == 1).all() and one_year["rmse_wy_low"].isna().all()
    # A second water year with errors twice as large: every reach now has two blocks to resample.
    later = outputs.reach_years.assign(water_year=2001, sse=outputs.reach_years["sse"] * 4)
    two_years = dataclasses.replace(outputs, reach_years=pd.concat([outputs.reach_years, later], ignore_index=True))
    skill = reach_skill(two_years, min_obs=5).set_index(["variant", "reach_id"])
    row = skill.dropna(subset=["rmse_wy_low"]).iloc[0]
    pooled = outputs.reach_years[(outputs.reach_years["variant"] == row.name[0])
                                 & (outputs.reach_years["reach_id"] == row.name[1])][["n_obs", "sse"]].sum()
    assert row["n_water_years"] == 2
    assert row["rmse_pooled"] == pytest.approx(np.sqrt(5 * pooled["sse"] / (2 * pooled["n_obs"])))
    expected = water_year_interval(np.array([pooled["sse"], 4 * pooled["sse"]]), np.repeat(pooled["n_obs"], 2),
                                   WATER_YEAR_REPLICATES)
    assert (row["rmse_wy_low"], row["rmse_wy_high"]) == pytest.approx((expected.low, expected.high))
    short = skill[skill["n_obs"] < MIN_INTERVAL_OBS]
    assert reach_skill(two_years).set_index(["variant", "reach_id"]).loc[short.index, "rmse_wy_low"].isna().all()


def test_each_sparsity_gets_its_own_grid_folder(cv_folder: Path, tmp_path: Path) -> None:
    assert (cv_folder_name(0.01), cv_folder_name(1.0)) == ("cv_rho0.01", "cv_rho1")
    shutil.copytree(cv_folder, tmp_path / "drb" / cv_folder_name(0.01))
    shutil.copytree(cv_folder, tmp_path / "drb" / cv_folder_name(1.0))
    (tmp_path / "rancocas" / "cv_rho1").mkdir(parents=True)  # started, nothing written yet: not a grid
    assert cv_grids(tmp_path) == ["drb/cv_rho0.01", "drb/cv_rho1"]
    assert cv_grids(tmp_path / "missing") == [] and cv_grids(None) == []


def test_missing_and_damaged_files_are_named(cv_folder: Path, tmp_path: Path) -> None:
    copy = tmp_path / "cv"
    shutil.copytree(cv_folder, copy)
    (copy / VARIANCE_FILE).write_text(json.dumps({"format": 99}))
    with pytest.raises(ValueError, match=f"cv/{VARIANCE_FILE}: field 'format' must be 1"):
        read_cv(copy)
    (copy / VARIANCE_FILE).unlink()
    assert read_cv(copy).analysis is None and variance_table(read_cv(copy)).empty
    (copy / RESULTS_FILE).write_text("not parquet")
    with pytest.raises(ValueError, match=f"cv/{RESULTS_FILE}: not a Parquet table"):
        read_cv(copy)
    (copy / RESULTS_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=f"cv/{RESULTS_FILE}: missing; run `msgl cv`"):
        read_cv(copy)
    shutil.copy(cv_folder / RESULTS_FILE, copy / RESULTS_FILE)
    pd.read_parquet(cv_folder / REACH_YEARS_FILE).drop(columns="sse").to_parquet(copy / REACH_YEARS_FILE)
    with pytest.raises(ValueError, match=f"cv/{REACH_YEARS_FILE}: missing columns \\['sse'\\]"):
        read_cv(copy)
