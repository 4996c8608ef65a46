"""Every script in benchmarks/ has a smoke mode that runs on the tiny bundle in seconds, so none can rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPTS = sorted((ROOT / "benchmarks").glob("*.py"))
#: Scripts that drive a browser: their smoke run is a browser test.
BROWSER = {"dashboard_speed.py"}


def test_there_are_benchmarks() -> None:
    assert {p.name for p in SCRIPTS} >= {"train_speed.py", "data_build.py", "dashboard_speed.py", "prob_speed.py",
                                            "dynamic_graph_speed.py", "cv_variance.py", "ensemble_run.py"}


@pytest.mark.parametrize("script", [pytest.param(p, id=p.name, marks=[pytest.mark.browser] if p.name in BROWSER else [])
                                    for p in SCRIPTS])
def test_benchmark_smoke_mode_runs(script: Path, tmp_path: Path) -> None:
    if script.name in BROWSER and not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian chromium is not installed")
    out = tmp_path / "result.json"
    result = subprocess.run([sys.executable, str(script), "--smoke", "--out", str(out)], cwd=ROOT,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert out.is_file() and out.stat().st_size > 0
    if script.name == "dashboard_speed.py":  # the sessions opened at once each showed their own run and day
        report = json.loads(out.read_text())
        assert report["concurrent_sessions"]["all_isolated"] and report["clients_at_once"]["all_isolated"]
        assert report["server_peak_rss_mb"] > 0


def test_cv_variance_smoke_trains_the_whole_grid_through_run_cv(tmp_path: Path) -> None:
    out = tmp_path / "cv_variance.json"
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "cv_variance.py"), "--smoke", "--out", str(out)],
                            cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    values = json.loads(out.read_text())
    # 2 variants x 1 repeat x 2 folds x 2 seeds, all trained in a fresh runs folder, none failed.
    assert (values["folds"], values["repeats"], values["seeds"], values["epochs"]) == (2, 1, [1, 2], 1)
    assert values["runs"] == 8 and values["runs_per_variant"] == 4
    assert values["cached"] == 0 and values["failed"] == 0 and values["analysis_error"] == ""
    assert set(values["per_variant"]) == {"msgl", "rgcn_fine"}
    assert all(v["runs"] == 4 and v["rmse_mean"] > 0 for v in values["per_variant"].values())
    assert len(values["run_s"]) == 8 and all(s >= 0 for s in values["run_s"])
    assert values["total_s"] > 0 and abs(values["per_run_s"] - values["total_s"] / 8) < 0.01
    # The target is stated for the default real-data grid only.
    assert values["target"]["total_s_max"] == 3600.0
    assert values["target"]["applies"] is False and values["target"]["met"] is None
