"""The ``msgl`` command on the tiny bundle, as a user runs it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import xarray as xr
import yaml
from typer.testing import CliRunner

from msgl_core.cli import app
from msgl_core.data import load_dataset
from msgl_core.evaluate.reliability import reliability
from msgl_core.runs import load_run
from tests.tiny_bundle import N_REACHES, PERIODS, write_tiny_bundle

runner = CliRunner()


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    config = root / "run.yaml"
    config.write_text(yaml.safe_dump({"basin": "drb", "window": 20, "epochs": 2, **{
        k: [list(p) for p in v] for k, v in PERIODS.items()}}))
    return {"bundle": write_tiny_bundle(root / "bundle"), "cache": root / "cache", "config": config,
            "run": root / "run"}


def _invoke(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result.stdout


def test_data_info_json(paths: dict[str, Path]) -> None:
    info = json.loads(_invoke("data", "info", "--json", "--data-dir", str(paths["bundle"]),
                              "--cache-dir", str(paths["cache"])))
    assert (info["n_segments"], info["n_reaches"]) == (5, N_REACHES)


def test_train_evaluate_predict(paths: dict[str, Path]) -> None:
    common = ["--data-dir", str(paths["bundle"]), "--cache-dir", str(paths["cache"])]
    out = _invoke("train", "--config", str(paths["config"]), "--variant", "rgcn_fine", "--sparsity", "0.5",
                  "--device", "cpu", "--run-dir", str(paths["run"]), *common)
    assert "test RMSE" in out
    assert yaml.safe_load((paths["run"] / "config.yaml").read_text())["sparsity"] == 0.5
    metrics = json.loads(_invoke("evaluate", "--run-dir", str(paths["run"]), "--json"))
    assert metrics["fine"]["overall"]["n_obs"] > 0
    verdict = reliability(load_run(paths["run"]), load_dataset(paths["bundle"], paths["cache"]))
    text = _invoke("evaluate", "--run-dir", str(paths["run"]), *common)
    assert text.splitlines()[-1] == verdict.text() and text.startswith("fine ")
    target = paths["run"].parent / "pred.nc"
    _invoke("predict", "--run-dir", str(paths["run"]), "--out", str(target), "--device", "cpu", *common)
    assert xr.open_dataset(target)["prediction"].sizes["reach"] == N_REACHES


@pytest.mark.parametrize(("args", "message"), [
    (["train", "--sparsity", "2"], "sparsity must be in (0, 1]"),
    (["train", "--variant", "msgll"], "did you mean 'msgl'"),
    (["evaluate", "--run-dir", "/nonexistent"], "is not a complete run"),
])
def test_bad_input_exits_with_a_message(paths: dict[str, Path], args: list[str], message: str) -> None:
    result = runner.invoke(app, [*args, "--data-dir", str(paths["bundle"]), "--cache-dir", str(paths["cache"])]
                           if args[0] == "train" else args)
    assert result.exit_code == 2
    assert message in result.output


def test_variants_json() -> None:
    rows = json.loads(_invoke("variants", "--json"))
    assert {r["name"] for r in rows} >= {"msgl", "rgcn_fine"}
    assert all(r["citation"] and r["title"] for r in rows)
    assert [r["family"] for r in rows][:2] == ["multi-scale", "multi-scale"]  # grouped, the paper's models first
    assert {r["family"] for r in rows} == {"multi-scale", "fine-only graph baselines", "downscaling baselines",
                                          "probabilistic downscaling"}


def test_compare_writes_the_table_and_files(paths: dict[str, Path]) -> None:
    out = paths["run"].parent / "comparison"
    args = ["compare", "--config", str(paths["config"]), "--variants", "rgcn_fine,remap", "--sparsity", "0.5,1",
            "--seeds", "1", "--epochs", "1", "--device", "cpu", "--workers", "0", "--out", str(out),
            "--runs-dir", str(paths["run"].parent / "runs"), "--data-dir", str(paths["bundle"]),
            "--cache-dir", str(paths["cache"])]
    table = _invoke(*args)
    assert "| variant | ρ = 50 % | ρ = 100 % |" in table and "| remap |" in table
    assert {p.name for p in out.iterdir()} == {"runs.csv", "comparison.csv", "comparison.json", "rmse_vs_sparsity.png"}
    assert _invoke(*args) == table  # the second call loads every run from the cache
    only = runner.invoke(app, [*args[:6], "0.5,0.25", *args[7:], "--cached-only"])
    assert only.exit_code == 0 and "| rgcn_fine | 1.00 " not in only.stdout and "ρ = 25 %" not in only.stdout
    assert "2 of 4 runs are not in the run cache" in only.output
    result = runner.invoke(app, [*args[:4], "rgcn_fine,msgll", *args[5:]])
    assert result.exit_code == 2 and "did you mean 'msgl'" in result.output
