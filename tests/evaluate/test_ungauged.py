"""Hold-out choice and held-out skill on the tiny network: observed segments 101 (21 test days) and 104
(7 test days, below "Tiny Dam")."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from msgl_core.cli import app as cli
from msgl_core.compare import grid, run_grid, summarise, write_outputs
from msgl_core.config import RunConfig
from msgl_core.data import MultiscaleData
from msgl_core.evaluate.metrics import skill
from msgl_core.evaluate.ungauged import choose_holdout, heldout_skill, heldout_table, summarise_heldout
from msgl_core.runs import train_or_load
from tests.tiny_bundle import PERIODS

TEST = PERIODS["test_periods"]


def _cfg(**overrides: object) -> RunConfig:
    values = {"basin": "drb", "window": 20, "epochs": 1, "device": "cpu", "threads": 1, **PERIODS}
    return RunConfig.from_dict({**values, **overrides})


def test_choose_holdout_starts_with_the_most_observed_and_respects_the_dam_quota(tiny_data: MultiscaleData) -> None:
    assert choose_holdout(tiny_data, "drb", 1, test_periods=TEST, min_obs=5) == (101,)
    assert choose_holdout(tiny_data, "drb", 1, below_dam=1, test_periods=TEST, min_obs=5) == (104,)
    assert choose_holdout(tiny_data, "drb", 2, below_dam=1, test_periods=TEST, min_obs=5) == (101, 104)
    assert choose_holdout(tiny_data, "drb", 1, test_periods=TEST, min_obs=10) == (101,)  # 104 has 7


def test_choose_holdout_says_what_is_missing(tiny_data: MultiscaleData) -> None:
    with pytest.raises(ValueError, match=r"has 2 segments with >= 5 test observations \(1 below a dam\); asked for 2 "
                                         r"\(2 below a dam\)"):
        choose_holdout(tiny_data, "drb", 2, below_dam=2, test_periods=TEST, min_obs=5)
    with pytest.raises(ValueError, match="0 <= below_dam <= n"):
        choose_holdout(tiny_data, "drb", 1, below_dam=2)
    with pytest.raises(ValueError, match="unknown basin"):
        choose_holdout(tiny_data, "atlantis", 1)


def test_heldout_skill_per_segment_and_below_dam(tiny_data: MultiscaleData, tmp_path: Path) -> None:
    cfg = _cfg(variant="rgcn_fine", holdout_segments=[104])
    run = train_or_load(cfg, tiny_data, runs_dir=tmp_path, progress=False)
    segments, groups = heldout_skill(run.predictions(), cfg, tiny_data)
    assert segments.loc[104, "n_obs"] == 7 and bool(segments.loc[104, "below_dam"])
    assert segments.loc[104, "dam_name"] == "Tiny Dam" and segments.loc[104, "n_reaches"] == 3
    assert np.isnan(segments.loc[104, "rmse"])  # 7 pairs < MIN_GROUP_OBS
    ds = run.predictions()
    test = (ds.time >= np.datetime64(TEST[0][0])) & (ds.time <= np.datetime64(TEST[0][1]))
    expected = skill(ds["prediction"].sel(reach="104_1").values[test], ds["water_temp_obs"].sel(reach="104_1").values[test])
    assert groups.loc["all", "n_obs"] == 7 and groups.loc["below_dam", "n_obs"] == 7 and groups.loc["rest", "n_obs"] == 0
    assert run.metrics.holdout is not None and run.metrics.holdout.overall.n_obs == expected.n_obs == 7
    with pytest.raises(ValueError, match="no holdout_segments"):
        heldout_skill(ds, cfg.with_overrides(holdout_segments=[]), tiny_data)


def test_heldout_table_and_summary_over_seeds(tiny_data: MultiscaleData, tmp_path: Path) -> None:
    runs = [train_or_load(_cfg(variant="rgcn_fine", holdout_segments=[101], seed=s), tiny_data, runs_dir=tmp_path,
                          progress=False) for s in (1, 2)]
    table = heldout_table([("cmp", r) for r in runs], tiny_data)
    assert set(table["unit"]) == {"all", "below_dam", "rest", "101"} and len(table) == 8
    rest = table[table["unit"] == "rest"]
    # metrics.json scores the float64 prediction, predictions.nc stores it as float32
    np.testing.assert_allclose(rest["rmse"], [r.metrics.holdout.overall.rmse for r in runs], rtol=2e-4)
    summary = summarise_heldout(table).set_index("unit")
    assert summary.loc["rest", "n_seeds"] == 2 and summary.loc["below_dam", "n_seeds"] == 0
    np.testing.assert_allclose(summary.loc["rest", "rmse_mean"], rest["rmse"].mean())


def test_cli_holdout_and_ungauged(tiny_bundle: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    env = {"MSGL_DATA_DIR": str(tiny_bundle), "MSGL_CACHE_DIR": str(tmp_path / "cache")}
    config = tmp_path / "tiny.yaml"
    config.write_text(_cfg().to_yaml())
    result = runner.invoke(cli, ["holdout", "--config", str(config), "--n", "1", "--min-obs", "5"], env=env)
    assert result.exit_code == 0 and result.output.strip() == "101"
    result = runner.invoke(cli, ["holdout", "--config", str(config), "--n", "3"], env=env)
    assert result.exit_code == 2 and "asked for 3" in result.output
    from msgl_core.data import load_dataset

    data = load_dataset(tiny_bundle, tmp_path / "cache")
    outcomes = run_grid(grid(_cfg(holdout_segments=[101]), ["rgcn_fine"], [1.0], [1, 2]), data, tmp_path / "runs",
                        workers=0)
    write_outputs(outcomes, summarise(outcomes), tmp_path / "cmp", "tiny")
    result = runner.invoke(cli, ["ungauged", str(tmp_path / "cmp"), "--out", str(tmp_path / "h.csv")], env=env)
    assert result.exit_code == 0, result.output
    assert "rgcn_fine" in result.output and " ± " in result.output and (tmp_path / "h.csv").is_file()
    result = runner.invoke(cli, ["ungauged", str(tmp_path / "cmp"), "--out", str(tmp_path / "h.txt")], env=env)
    assert result.exit_code == 2 and "ending in .csv" in result.output
