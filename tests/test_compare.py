"""``msgl compare``: the grid, cached re-runs, the Dask path, the table and the files it writes."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from distributed import LocalCluster
from typer.testing import CliRunner

from msgl_core.cli import app as cli
from msgl_core.compare import (
    RunOutcome,
    comparisons_root,
    format_table,
    grid,
    read_comparison,
    run_grid,
    summarise,
    write_outputs,
)
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


def _outputs(folder: Path) -> tuple[list[RunOutcome], pd.DataFrame]:
    """``msgl compare`` outputs of a small made-up grid (one failed run) written to ``folder``."""
    outcomes = [RunOutcome("msgl", 0.01, 1, 1.0, 3.5, "/srv/runs/msgl_a", True),
                RunOutcome("msgl", 0.01, 2, 2.0, 4.0, "/srv/runs/msgl_b", False),
                RunOutcome("rgcn_fine", 0.01, 1, 3.0, 2.0, "/srv/runs/rgcn_a", True),
                RunOutcome("rgcn_fine", 1.0, 1, math.nan, 0.0, "/srv/runs", False, "ValueError: boom")]
    table = summarise(outcomes)
    write_outputs(outcomes, table, folder, "tiny: test RMSE")
    return outcomes, table


def test_read_comparison_reads_back_what_compare_wrote(tmp_path: Path) -> None:
    outcomes, table = _outputs(tmp_path / "tiny")
    outputs = read_comparison(tmp_path / "tiny")
    assert outputs.title == "tiny: test RMSE" and outputs.figure == tmp_path / "tiny" / "rmse_vs_sparsity.png"
    pd.testing.assert_frame_equal(outputs.table, table)
    assert format_table(outputs.table) == format_table(table)
    expected = pd.DataFrame([vars(o) for o in outcomes])
    pd.testing.assert_frame_equal(outputs.runs, expected, check_dtype=False)
    assert list(outputs.runs["error"]) == ["", "", "", "ValueError: boom"]
    (tmp_path / "tiny" / "rmse_vs_sparsity.png").unlink()
    assert read_comparison(tmp_path / "tiny").figure is None  # the figure is optional


def _damage_json(field: str, value: object) -> Callable[[Path], None]:
    def damage(folder: Path) -> None:
        values = json.loads((folder / "comparison.json").read_text())
        if field == "units":
            values["units"] = value
        else:
            values["table"][0][field] = value
        (folder / "comparison.json").write_text(json.dumps(values))
    return damage


@pytest.mark.parametrize(("damage", "message"), [
    (lambda f: (f / "comparison.json").write_text("{not json"), r"tiny/comparison.json: not JSON"),
    (_damage_json("units", "degF"), r"tiny/comparison.json: field 'units' must be 'degC'"),
    (_damage_json("rmse_mean", "fast"), r"tiny/comparison.json: row 0 of 'table': field 'rmse_mean' must be a number"),
    (lambda f: (f / "comparison.json").write_text('{"title": "t", "units": "degC", "table": [{"variant": "msgl"}]}'),
     r"tiny/comparison.json: row 0 of 'table' lacks field\(s\) sparsity"),
    (lambda f: (f / "runs.csv").write_text("variant,seed\nmsgl,1\n"), r"tiny/runs.csv: missing column\(s\) sparsity"),
    (lambda f: (f / "runs.csv").write_text(""), r"tiny/runs.csv: not a table of runs"),
    (lambda f: (f / "runs.csv").write_text((f / "runs.csv").read_text().replace("1.0,3.5", "one,3.5")),
     r"tiny/runs.csv: column 'test_rmse' must hold numbers"),
    (lambda f: (f / "rmse_vs_sparsity.png").write_bytes(b"GIF89a"), r"tiny/rmse_vs_sparsity.png: not a PNG image"),
])
def test_read_comparison_names_the_damaged_file_and_field(tmp_path: Path, damage: Callable[[Path], object],
                                                          message: str) -> None:
    _outputs(tmp_path / "tiny")
    damage(tmp_path / "tiny")
    with pytest.raises(ValueError, match=message):
        read_comparison(tmp_path / "tiny")


def test_read_comparison_of_a_folder_without_outputs(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"rancocas/comparison.json: missing; run `msgl compare`"):
        read_comparison(tmp_path / "rancocas")


def test_comparisons_root_follows_the_option_then_the_environment(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MSGL_COMPARISONS_DIR", raising=False)
    assert comparisons_root() == Path("comparisons")
    monkeypatch.setenv("MSGL_COMPARISONS_DIR", str(tmp_path / "env"))
    assert comparisons_root() == tmp_path / "env"
    assert comparisons_root(tmp_path / "given") == tmp_path / "given"
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file; expected a folder"):
        comparisons_root(tmp_path / "file")


def test_compare_writes_to_the_comparisons_root_by_default(tiny_data: MultiscaleData, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """One source of truth: without --out, ``msgl compare`` writes to comparisons_root() / basin, which the
    dashboard reads."""
    monkeypatch.setenv("MSGL_COMPARISONS_DIR", str(tmp_path / "comparisons"))
    config = tmp_path / "base.yaml"
    config.write_text(BASE.to_yaml({}))
    result = CliRunner().invoke(cli, ["compare", "--config", str(config), "--variants", "remap", "--sparsity", "1",
                                      "--seeds", "1", "--workers", "0", "--runs-dir", str(tmp_path / "runs"),
                                      "--data-dir", str(tiny_data.bundle_dir),
                                      "--cache-dir", str(tiny_data.path.parent)])
    assert result.exit_code == 0, result.output
    outputs = read_comparison(comparisons_root() / "drb")
    assert list(outputs.table["variant"]) == ["remap"] and format_table(outputs.table) in result.stdout


def test_a_local_cluster_splits_the_cpus_between_its_runs(tiny_data: MultiscaleData, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    import distributed
    import torch

    in_process = distributed.LocalCluster
    monkeypatch.setattr(distributed, "LocalCluster", lambda n_workers, **kw: in_process(
        n_workers=n_workers, threads_per_worker=1, processes=False, dashboard_address=":0"))
    monkeypatch.setattr(os, "cpu_count", lambda: 4)
    unset = BASE.with_overrides(threads=None)
    try:
        outcomes = run_grid(grid(unset, ["rgcn_fine"], [1.0], [1, 2]) + grid(BASE, ["rgcn_fine"], [1.0], [3]),
                            tiny_data, tmp_path / "runs", workers=2)
    finally:
        torch.set_num_threads(1)
    threads = [RunConfig.from_yaml(Path(o.path) / "config.yaml").threads for o in outcomes]
    assert threads == [2, 2, 1]  # 4 CPUs / 2 workers when unset; the config's own value otherwise
