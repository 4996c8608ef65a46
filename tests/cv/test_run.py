"""``run_cv`` through a Dask scheduler: one task per cell, the same tables as the serial path."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from distributed import LocalCluster

from msgl_core.compare import RunOutcome
from msgl_core.config import RunConfig
from msgl_core.cv import run as cv_run
from msgl_core.cv.analysis import AnalysisOptions
from msgl_core.cv.folds import FoldRules
from msgl_core.cv.run import PARTIAL_FILE, RESULTS_FILE, CVPlan, run_cv
from msgl_core.data import MultiscaleData
from tests.tiny_bundle import PERIODS

BASE = RunConfig.from_dict({"basin": "drb", "window": 20, "epochs": 1, "device": "cpu", "threads": 1, **PERIODS})
PLAN = CVPlan(BASE, ("remap",), (1, 2, 3), "segment", 2, 2, 0, rules=FoldRules(1, 1, 1.0),
              analysis=AnalysisOptions(replicates=50))


def test_run_cv_on_dask_writes_partial_then_final_tables(tiny_data: MultiscaleData, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    partial_sizes: list[int] = []
    write = cv_run._write_table

    def spy(path: Path, rows: list[dict], columns: tuple[str, ...]) -> pd.DataFrame:
        if path.name == PARTIAL_FILE:
            partial_sizes.append(len(rows))
        return write(path, rows, columns)

    monkeypatch.setattr(cv_run, "_write_table", spy)
    seen: list[RunOutcome] = []
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0") as cluster:
        result = run_cv(PLAN, tiny_data, tmp_path / "out", tmp_path / "runs", cluster.scheduler_address,
                        on_result=seen.append)
    assert len(seen) == 1 * 2 * 2 * 3 and not any(o.cached or o.error for o in seen), [o for o in seen if o.cached or o.error]
    assert partial_sizes == [10]  # every 10 finished runs; removed once the final table is written
    assert not (tmp_path / "out" / PARTIAL_FILE).exists()
    table = pd.read_parquet(tmp_path / "out" / RESULTS_FILE)
    assert len(table) == 12 and sorted(table["partition_id"].unique()) == [0, 1, 2, 3]
    assert result.analysis is not None and result.analysis.variants[0].repeat is not None
    assert {c.config.mask_seed for c in cv_run.cv_cells(PLAN, result.folds)} == {BASE.mask_seed, BASE.mask_seed + 1}
    again = run_cv(PLAN, tiny_data, tmp_path / "out", tmp_path / "runs", workers=0)
    assert again.results["cached"].all()  # no Dask, no training
    pd.testing.assert_frame_equal(again.results.drop(columns=["cached", "wall_s"]),
                                  result.results.drop(columns=["cached", "wall_s"]))
