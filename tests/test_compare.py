"""``msgl compare``: the grid, cached re-runs, the Dask path, the table and the files it writes."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from distributed import LocalCluster

from msgl_core.compare import RunOutcome, format_table, grid, run_grid, summarise, write_outputs
from msgl_core.config import RunConfig
from msgl_core.data import MultiscaleData
from msgl_core.runs import METRICS
from tests.tiny_bundle import PERIODS

BASE = RunConfig.from_dict({"basin": "drb", "window": 20, "epochs": 1, "device": "cpu", "threads": 1, **PERIODS})


def test_grid_expands_and_validates() -> None:
    configs = grid(BASE, ["msgl", "rgcn_fine"], [0.1, 1.0], [1, 2, 3])
    assert len(configs) == 12 and {(c.variant, c.sparsity, c.seed) for c in configs} >= {("msgl", 0.1, 3)}
    assert all(c.window == 20 for c in configs)
    with pytest.raises(ValueError, match="did you mean 'remap'"):
        grid(BASE, ["remapp"], [1.0], [1])
    with pytest.raises(ValueError, match=r"sparsity must be in \(0, 1\]"):
        grid(BASE, ["msgl"], [1.5], [1])
    with pytest.raises(ValueError, match="at least one"):
        grid(BASE, ["msgl"], [], [1])


def test_summary_table_and_change_against_the_best_single_scale_model() -> None:
    def outcome(variant: str, rho: float, seed: int, rmse: float, error: str = "") -> RunOutcome:
        return RunOutcome(variant, rho, seed, rmse, 1.0, "p", False, error)

    outcomes = [outcome("msgl", 0.01, 1, 1.0), outcome("msgl", 0.01, 2, 2.0), outcome("rgcn_fine", 0.01, 1, 4.0),
                outcome("dcrnn", 0.01, 1, 3.0), outcome("remap", 0.01, 1, 0.5),
                outcome("dcrnn", 0.01, 2, math.nan, "ValueError: boom")]
    table = summarise(outcomes)
    assert list(table["variant"]) == ["msgl", "rgcn_fine", "dcrnn", "remap"]
    msgl = table.iloc[0]
    assert (msgl["rmse_mean"], msgl["n_seeds"]) == (1.5, 2) and msgl["rmse_std"] == pytest.approx(0.7071, abs=1e-4)
    assert msgl["change_vs_best_single_scale_pct"] == pytest.approx(-50.0)  # best fine-only is dcrnn (3.0), not remap
    assert table.loc[table["variant"] == "dcrnn", "n_seeds"].item() == 1  # the failed seed is left out
    assert math.isnan(table.loc[table["variant"] == "rgcn_fine", "change_vs_best_single_scale_pct"].item())
    assert "| msgl | 1.50 ± 0.71 (-50 %) |" in format_table(table)


def test_run_grid_trains_then_loads_from_the_cache(tiny_data: MultiscaleData, tmp_path: Path) -> None:
    configs = grid(BASE, ["remap", "rgcn_fine"], [0.5, 1.0], [1])
    seen: list[RunOutcome] = []
    first = run_grid(configs, tiny_data, tmp_path / "runs", workers=0, on_result=seen.append)
    assert len(seen) == 4 and not any(o.cached or o.error for o in first)
    assert all(o.test_rmse > 0 for o in first)
    stamps = {o.path: (Path(o.path) / METRICS).stat().st_mtime_ns for o in first}
    again = run_grid(configs, tiny_data, tmp_path / "runs", workers=0)
    assert all(o.cached for o in again) and [o.test_rmse for o in again] == [o.test_rmse for o in first]
    assert {o.path: (Path(o.path) / METRICS).stat().st_mtime_ns for o in again} == stamps

    table = summarise(first)
    paths = write_outputs(first, table, tmp_path / "out", "tiny")
    assert [p.name for p in paths] == ["runs.csv", "comparison.csv", "comparison.json", "rmse_vs_sparsity.png"]
    assert len(pd.read_csv(paths[0])) == 4 and len(pd.read_csv(paths[1])) == 4
    assert json.loads(paths[2].read_text())["units"] == "degC"
    assert paths[3].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not list((tmp_path / "out").glob(".*tmp"))


def test_run_grid_on_a_dask_scheduler(tiny_data: MultiscaleData, tmp_path: Path) -> None:
    # Withholding both observed segments leaves no fine training observation: that run fails alone.
    configs = grid(BASE, ["rgcn_fine"], [1.0], [1, 2]) + grid(BASE.with_overrides(holdout_segments=[101, 104]),
                                                               ["rgcn_fine"], [1.0], [1])
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        outcomes = run_grid(configs, tiny_data, tmp_path / "runs", scheduler=cluster.scheduler_address)
    assert [o.seed for o in outcomes] == [1, 2, 1]
    assert all(o.test_rmse > 0 and not o.cached for o in outcomes[:2])
    assert outcomes[0].test_rmse != outcomes[1].test_rmse  # seeds differ
    assert math.isnan(outcomes[2].test_rmse) and "no fine observations in the training periods" in outcomes[2].error


def test_run_grid_checks_basins_before_training(tiny_data: MultiscaleData, tmp_path: Path) -> None:
    configs = grid(BASE, ["rgcn_fine"], [1.0], [1]) + grid(BASE.with_overrides(basin="atlantis"), ["rgcn_fine"],
                                                           [1.0], [1])
    with pytest.raises(ValueError, match="unknown basin 'atlantis'"):
        run_grid(configs, tiny_data, tmp_path / "runs", workers=0)
    assert not (tmp_path / "runs").exists()
