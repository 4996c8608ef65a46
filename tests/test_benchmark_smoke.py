"""Every script in benchmarks/ has a smoke mode that runs on the tiny bundle in seconds, so none can rot."""

from __future__ import annotations

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
                                            "dynamic_graph_speed.py"}


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
