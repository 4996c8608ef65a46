"""``msgl cv`` end to end on the tiny bundle (1 epoch, K = 2, R = 1, 2 seeds, no Dask), its cache and its errors."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from typer.testing import CliRunner

from msgl_core import compare
from msgl_core.cli import app as cli
from msgl_core.config import RunConfig
from msgl_core.cv.folds import read_folds
from msgl_core.cv.run import REACH_COLUMNS, RESULT_COLUMNS
from msgl_core.data import MultiscaleData
from msgl_core.data.splits import period_mask
from tests.tiny_bundle import PERIODS

BASE = RunConfig.from_dict({"basin": "drb", "window": 20, "epochs": 1, "device": "cpu", "threads": 1, **PERIODS})
#: The tiny bundle has two gauged reaches: the fold rules are loosened to one reach and one observation.
TINY = ["--folds", "2", "--repeats", "1", "--seeds", "1,2", "--cv-scheme", "segment", "--buffer-hops", "0",
        "--min-fold-reaches", "1", "--min-fold-obs", "1", "--fold-balance", "1", "--bootstrap", "50", "--workers", "0"]


def invoke(tiny_data: MultiscaleData, tmp_path: Path, *args: str) -> object:
    config = tmp_path / "base.yaml"
    config.write_text(BASE.to_yaml({}))
    return CliRunner().invoke(cli, ["cv", "--config", str(config), "--runs-dir", str(tmp_path / "runs"),
                                    "--out", str(tmp_path / "out"), "--data-dir", str(tiny_data.bundle_dir),
                                    "--cache-dir", str(tiny_data.path.parent), *args])


def test_cv_trains_every_cell_writes_the_outputs_and_repeats_from_the_cache(tiny_data: MultiscaleData,
                                                                            tmp_path: Path) -> None:
    result = invoke(tiny_data, tmp_path, "--variants", "rgcn_fine,remap", *TINY)
    assert result.exit_code == 0, result.output
    out = tmp_path / "out"
    runs = pd.read_parquet(out / "cv_results.parquet")
    assert list(runs.columns) == list(RESULT_COLUMNS) and len(runs) == 2 * 1 * 2 * 2
    assert (runs["status"] == "ok").all() and not runs["cached"].any()
    reaches = pd.read_parquet(out / "cv_reach_results.parquet")
    assert list(reaches.columns) == list(REACH_COLUMNS)
    (folds,) = read_folds(out / "folds.json")
    fold_of = folds.fold_of()
    for row in runs.itertuples():
        # The run withheld its test fold and was scored on it only; no test-fold observation was used.
        run_cfg = RunConfig.from_yaml(Path(row.run_dir) / "config.yaml")
        assert set(folds.folds[row.fold].segments) <= set(run_cfg.holdout_segments)
        with xr.open_dataset(Path(row.run_dir) / "predictions.nc") as predictions:
            in_fold = np.isin(predictions["parent_segment"].values, folds.folds[row.fold].segments)
            fit = period_mask(pd.DatetimeIndex(predictions["time"].values), BASE.train_periods + BASE.val_periods)
            assert predictions["obs_used"].values[np.ix_(fit, in_fold)].sum() == 0
            assert predictions["obs_used"].values[np.ix_(fit, ~in_fold)].sum() > 0
        mine = reaches[(reaches["variant"] == row.variant) & (reaches["fold"] == row.fold) & (reaches["seed"] == row.seed)]
        assert {fold_of[s] for s in mine["seg_id_nat"]} == {row.fold} and mine["n_obs"].sum() == row.n_obs_test
    values = json.loads((out / "variance_components.json").read_text())
    assert set(values["variants"]) == {"rgcn_fine", "remap"} and values["paired"][0]["a"] == "rgcn_fine"
    assert values["settings"]["folds"] == 2 and values["variants"]["remap"]["repeat"] is None
    assert "| rgcn_fine |" in result.stdout and "rgcn_fine − remap: Δ RMSE" in result.stdout
    assert not list(out.glob("*.partial.parquet")) and not list(out.glob(".*.tmp"))

    again = invoke(tiny_data, tmp_path, "--variants", "rgcn_fine,remap", *TINY)
    assert again.exit_code == 0, again.output
    cached = pd.read_parquet(out / "cv_results.parquet")
    assert cached["cached"].all()  # a repeated call trains nothing
    pd.testing.assert_frame_equal(cached.drop(columns="cached"), runs.drop(columns="cached"))


def test_failed_cells_are_named_and_stop_the_analysis(tiny_data: MultiscaleData, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A variant that fails in some cells: the grid goes on, the analysis names the missing cells and stops."""
    real = compare.train_or_load

    def flaky(cfg: RunConfig, *args: object, **kwargs: object) -> object:
        if cfg.seed == 2 and 104 in cfg.holdout_segments:
            raise RuntimeError("out of luck")
        return real(cfg, *args, **kwargs)

    monkeypatch.setattr(compare, "train_or_load", flaky)
    result = invoke(tiny_data, tmp_path, "--variants", "remap", *TINY)
    runs = pd.read_parquet(tmp_path / "out" / "cv_results.parquet")
    assert (runs["status"] == "failed").sum() == 1 and (runs["status"] == "ok").sum() == 3
    assert result.exit_code == 1
    (fold,) = runs.loc[runs["status"] == "failed", "fold"]
    assert f"failed: remap repeat 0 fold {fold} seed 2: RuntimeError: out of luck" in result.output
    assert f"error: 1 of 4 cross-validation runs failed, so the grid is unbalanced: remap repeat 0 fold {fold} seed 2" \
        in result.output
    assert not (tmp_path / "out" / "variance_components.json").exists()


@pytest.mark.parametrize(("args", "message"), [
    (["--cv-scheme", "kriging"], "error: unknown cv scheme 'kriging'; expected one of subbasin, segment"),
    (["--folds", "1"], "error: folds must be >= 2"),
    (["--folds", "9"], r"error: folds \(9\) is larger than the number of segment blocks \(5\)"),
    (["--seeds", "3"], "error: seeds must list at least 2 different seeds"),
    (["--design", "split"], "error: unknown design 'split'"),
    (["--holdout-segments", "101,104"], "error: basin 'drb' has no observed fine reach-days outside the hold-out"),
    (["--min-fold-obs", "500"], r"error: invalid folds for basin 'drb', segment, K = 2: .*fold 1: weight"),
])
def test_bad_input_gets_one_clear_error_and_writes_nothing(tiny_data: MultiscaleData, tmp_path: Path,
                                                          args: list[str], message: str) -> None:
    options = dict(zip(TINY[::2], TINY[1::2])) | dict(zip(args[::2], args[1::2]))
    result = invoke(tiny_data, tmp_path, "--variants", "remap", *[v for kv in options.items() for v in kv])
    assert result.exit_code == 2, result.output
    assert len([line for line in result.output.splitlines() if line.startswith("error:")]) == 1
    assert re.search(message, result.output), result.output
    assert not (tmp_path / "out").exists() and not (tmp_path / "runs").exists()
