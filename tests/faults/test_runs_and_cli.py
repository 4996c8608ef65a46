"""Bad input and faults around a run (issue: no traceback, no silent wrong number, nothing half-written).

Each test is one row of the table of cases in docs/results.md §"Bad input"; every command must end
with one clear line (exit 2) and leave no run folder, config or temporary file behind.
"""

from __future__ import annotations

import errno
import logging
import threading
from pathlib import Path

import pandas as pd
import pytest
import torch
import yaml
from typer.testing import CliRunner

from msgl_core import runs as runs_module
from msgl_core.cli import app
from msgl_core.config import RUN_FORMAT, RunConfig
from msgl_core.data import MultiscaleData
from msgl_core.registry import Stage, Variant, get_variant
from msgl_core.runs import CHECKPOINT, CONFIG, HISTORY, METRICS, load_run, train_or_load
from msgl_core.train.loop import TrainingDiverged
from msgl_core.train.steps import StepResult
from tests.tiny_bundle import PERIODS, write_tiny_bundle

runner = CliRunner()


def _cfg(**overrides: object) -> RunConfig:
    values = {"basin": "drb", "window": 20, "epochs": 2, "device": "cpu", "variant": "rgcn_fine", **PERIODS}
    return RunConfig.from_dict({**values, **overrides})


@pytest.fixture(scope="module")
def cli(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A tiny bundle, its cache, a config and one trained run, as a user's folders."""
    root = tmp_path_factory.mktemp("faults")
    config = root / "run.yaml"
    config.write_text(yaml.safe_dump({"basin": "drb", "window": 20, "epochs": 1, "variant": "rgcn_fine",
                                      **{k: [list(p) for p in v] for k, v in PERIODS.items()}}))
    paths = {"root": root, "bundle": write_tiny_bundle(root / "bundle"), "cache": root / "cache", "config": config,
             "runs": root / "runs", "file": root / "a_file.txt"}
    paths["file"].write_text("not a folder")
    result = runner.invoke(app, ["train", "--config", str(config), "--device", "cpu", "--run-dir", str(root / "run"),
                                 *_data(paths)])
    assert result.exit_code == 0, result.output
    paths["run"] = root / "run"
    return paths


def _data(paths: dict[str, Path]) -> list[str]:
    return ["--data-dir", str(paths["bundle"]), "--cache-dir", str(paths["cache"])]


def _fails(args: list[str], message: str) -> str:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    assert message in result.output, result.output
    assert "Traceback" not in result.output
    return result.output


# -- config --------------------------------------------------------------------------------------

@pytest.mark.parametrize(("text", "message"), [
    ("epochs: 2.5\n", "epochs must be an integer, got 2.5"),
    ("seed: abc\n", "seed must be an integer, got 'abc'"),
    ("sparsity: '0.1'\n", "sparsity must be a number"),
    ("faithful_step: 1\n", "faithful_step must be true or false"),
    ("threads: 0\n", "threads must be >= 1"),
    ("epochs: [1\n", "not valid YAML"),
    ("- 1\n- 2\n", "expected a mapping of config keys"),
    ("basin: x/../../../escaped\n", "basin must be 'drb', a preset name or an outlet seg_id_nat"),
    ("holdout_segments: [abc]\n", "holdout_segments must be integer seg_id_nat"),
    ("test_periods: [[2020-13-01, 2021-01-01]]\n", "not valid YAML: month must be in 1..12"),
    ("test_periods: [['2020-13-01', '2021-01-01']]\n", "is not an ISO date"),
    ("heads: 3\n", "heads (3) must divide hidden (20)"),
])
def test_bad_yaml_values_name_the_file_and_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match="bad.yaml: ") as error:
        RunConfig.from_yaml(path)
    assert message in str(error.value)


def test_a_runs_own_config_reads_back(cli: dict[str, Path]) -> None:
    saved = yaml.safe_load((cli["run"] / CONFIG).read_text())
    assert saved["run_format"] == RUN_FORMAT and "data_fingerprint" in saved and "msgl_version" in saved
    cfg = RunConfig.from_yaml(cli["run"] / CONFIG)
    assert cfg == load_run(cli["run"]).config and cfg.variant == "rgcn_fine"


def test_cache_key_covers_every_result_defining_setting() -> None:
    base = _cfg()
    for change in ({"grad_clip": 1.0}, {"grad_clip": None}, {"dropout": 0.2}, {"heads": 2}, {"mask_seed": 1}):
        assert base.with_overrides(**change).key("d") != base.key("d"), change
    assert base.with_overrides(threads=1, device="auto").key("d") == base.key("d")


def test_grad_clip_from_the_config_reaches_the_step(tiny_data: MultiscaleData, monkeypatch: pytest.MonkeyPatch) -> None:
    import msgl_core.variants.fine_only as fine_only

    seen = []
    monkeypatch.setattr(fine_only, "single_task_step", lambda loss, opt, model, clip: seen.append(clip))
    from msgl_core.data.dataset import batch, prepare

    cfg = _cfg(grad_clip=0.5)
    prepared = prepare(tiny_data, cfg)
    model = get_variant("rgcn_fine").build(prepared, cfg)
    fine_only.step(model, batch(prepared, prepared.windows["train"][0]), None, cfg)
    assert seen == [0.5]


# -- CLI: folders, files, ports ----------------------------------------------------------------

@pytest.mark.parametrize(("option", "command"), [
    ("--run-dir", "train"), ("--runs-dir", "train"), ("--cache-dir", "train"), ("--cache-dir", "data"),
])
def test_a_file_where_a_folder_is_expected(cli: dict[str, Path], option: str, command: str) -> None:
    args = ["data", "info"] if command == "data" else ["train", "--config", str(cli["config"]), "--device", "cpu"]
    data = [a for a in _data(cli)]
    if option == "--cache-dir":
        data[3] = str(cli["file"])
        args += data
    else:
        args += [option, str(cli["file"]), *data]
    _fails(args, f"{option} {cli['file']} is a file; expected a folder")


def test_evaluate_and_predict_on_a_file_given_as_run(cli: dict[str, Path]) -> None:
    _fails(["evaluate", "--run-dir", str(cli["file"])], "is a file; expected a run folder")


def test_compare_out_is_a_file(cli: dict[str, Path]) -> None:
    _fails(["compare", "--config", str(cli["config"]), "--variants", "rgcn_fine", "--sparsity", "1", "--seeds", "1",
            "--workers", "0", "--out", str(cli["file"]), *_data(cli)], "is a file; expected a folder")


@pytest.mark.parametrize("target", ["missing/pred.nc", "folder"])
def test_predict_out_is_checked_before_computing(cli: dict[str, Path], target: str,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    (cli["root"] / "folder").mkdir(exist_ok=True)
    monkeypatch.setattr(runs_module, "load_model", lambda *a: pytest.fail("predicted before checking --out"))
    message = "does not exist" if target.startswith("missing") else "is a folder"
    _fails(["predict", "--run-dir", str(cli["run"]), "--out", str(cli["root"] / target), "--device", "cpu",
            *_data(cli)], message)


def test_predict_with_a_corrupted_checkpoint(cli: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(cli["run"], copy)
    (copy / CHECKPOINT).write_bytes((copy / CHECKPOINT).read_bytes()[:100])
    _fails(["predict", "--run-dir", str(copy), "--out", str(tmp_path / "p.nc"), "--device", "cpu", *_data(cli)],
           "model.pt is not a readable model checkpoint")
    assert not (tmp_path / "p.nc").exists()


@pytest.mark.parametrize("port", ["99999", "0"])
def test_serve_rejects_a_port_out_of_range(port: str) -> None:
    result = runner.invoke(app, ["serve", "--port", port])
    assert result.exit_code == 2 and "Invalid value for '--port'" in result.output


def test_threads_zero_is_refused(cli: dict[str, Path]) -> None:
    _fails(["train", "--config", str(cli["config"]), "--threads", "0", "--runs-dir", str(cli["runs"]), *_data(cli)],
           "threads must be >= 1")


# -- nothing half-written ------------------------------------------------------------------------

@pytest.mark.parametrize(("extra", "message"), [
    (["--basin", "atlantis"], "unknown basin 'atlantis'"),
    (["--basin", "x/../../../escaped"], "basin must be 'drb'"),
    (["--holdout-segments", "999"], "holdout segments [999] are not in basin"),
    (["--holdout-segments", "abc"], "holdout_segments must be integer"),
    (["--seed", "-1"], "seed must be >= 0"),
    (["--threads", "0"], "threads must be >= 1"),
    (["--device", "tpu"], "device must be one of"),
    (["--device", "cuda"], "no CUDA GPU is available"),
    (["--variant", "msgll"], "did you mean 'msgl'"),
    (["--sparsity", "0"], "sparsity must be in (0, 1]"),
])
def test_rejected_trainings_leave_nothing_behind(cli: dict[str, Path], tmp_path: Path, extra: list[str],
                                                 message: str) -> None:
    if extra == ["--device", "cuda"] and torch.cuda.is_available():
        pytest.skip("a GPU is present")
    runs = tmp_path / "runs"
    _fails(["train", "--config", str(cli["config"]), *extra, "--runs-dir", str(runs), *_data(cli)], message)
    assert not runs.exists() and not list(tmp_path.parent.glob("escaped*"))


@pytest.mark.parametrize("basin", ["nowhere", "../../x"])
def test_compare_with_a_bad_basin_fails_and_writes_nothing(cli: dict[str, Path], tmp_path: Path, basin: str) -> None:
    out = tmp_path / "cmp"
    _fails(["compare", "--config", str(cli["config"]), "--basin", basin, "--variants", "rgcn_fine", "--sparsity", "1",
            "--seeds", "1", "--workers", "0", "--out", str(out), "--runs-dir", str(tmp_path / "runs"), *_data(cli)],
           "basin")
    assert not out.exists() and not (tmp_path / "runs").exists()


def test_compare_cluster_listens_on_loopback_only(tiny_data: MultiscaleData, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    import distributed

    from msgl_core.compare import run_grid

    seen = {}

    def fake_cluster(**kwargs: object) -> None:
        seen.update(kwargs)
        raise OSError("stop here")

    monkeypatch.setattr(distributed, "LocalCluster", fake_cluster)
    with pytest.raises(OSError, match="stop here"):
        run_grid([_cfg()], tiny_data, tmp_path / "runs", workers=1)
    assert seen["host"] == "127.0.0.1" and str(seen["dashboard_address"]).startswith("127.0.0.1:")


# -- faults during training ----------------------------------------------------------------------

def _diverging_variant(name: str) -> Variant:
    base = get_variant("rgcn_fine")

    def step(model: torch.nn.Module, batch: object, optimizer: object, cfg: RunConfig) -> StepResult:
        return StepResult(float("nan"), (1.0,))

    return Variant(name, "diverges", "-", "diverging test variant", "fine-only graph baselines", True, False, False,
                   base.build, (Stage("train", step),), base.predict_fine)


def test_a_diverging_training_is_never_cached(tiny_data: MultiscaleData, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runs_module, "get_variant", lambda name: _diverging_variant(name))
    with pytest.raises(TrainingDiverged, match="non-finite training loss in stage 'train', epoch 1"):
        train_or_load(_cfg(), tiny_data, run_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / METRICS).exists()


def test_non_finite_predictions_are_never_cached(tiny_data: MultiscaleData, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    real = runs_module.predict_record

    def broken(*args: object, **kwargs: object):
        ds = real(*args, **kwargs)
        ds["prediction"][0, 0] = float("inf")
        return ds

    monkeypatch.setattr(runs_module, "predict_record", broken)
    with pytest.raises(TrainingDiverged, match="non-finite temperatures"):
        train_or_load(_cfg(epochs=1), tiny_data, run_dir=tmp_path / "run", progress=False)
    assert not (tmp_path / "run" / METRICS).exists()


@pytest.mark.parametrize("writer", ["torch", "netcdf"])
def test_disk_full_is_a_clear_error_and_leaves_no_temporary_file(tiny_data: MultiscaleData, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch, writer: str) -> None:
    if writer == "torch":
        def full(*args: object, **kwargs: object) -> None:
            Path(args[1]).write_bytes(b"partial")
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

        monkeypatch.setattr(torch, "save", full)
        name = CHECKPOINT
    else:
        def full(self: object, path: Path, **kwargs: object) -> None:
            Path(path).write_bytes(b"partial")
            raise RuntimeError("NetCDF: HDF error")

        import xarray as xr

        monkeypatch.setattr(xr.Dataset, "to_netcdf", full)
        name = "predictions.nc"
    with pytest.raises(OSError, match=f"could not write .*{name}.*disk full"):
        train_or_load(_cfg(epochs=1), tiny_data, run_dir=tmp_path / "run", progress=False)
    assert not list((tmp_path / "run").glob(".*.tmp")) and not (tmp_path / "run" / METRICS).exists()


def test_history_is_written_every_epoch_and_an_interrupted_run_says_it_restarts(
        tiny_data: MultiscaleData, tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    folder = tmp_path / "run"
    rows = []

    def kill_after_two(report: object) -> bool:
        rows.append(len(pd.read_csv(folder / HISTORY)))
        return len(rows) < 2  # "killed" after epoch 2 of 3

    with pytest.raises(RuntimeError, match="cancelled after epoch 2"):
        train_or_load(_cfg(epochs=3), tiny_data, run_dir=folder, callback=kill_after_two, progress=False)
    assert rows == [1, 2] and len(pd.read_csv(folder / HISTORY)) == 2
    (folder / ".model.pt.tmp").write_bytes(b"left by kill -9")
    with caplog.at_level(logging.WARNING, logger="msgl_core.runs"):
        run = train_or_load(_cfg(epochs=3), tiny_data, run_dir=folder, progress=False)
    assert "holds an interrupted run (2 epochs done); training restarts from epoch 1" in caplog.text
    assert len(run.history()) == 3 and not list(folder.glob(".*.tmp"))


def test_cancel_during_the_last_epoch_keeps_the_finished_run(tiny_data: MultiscaleData, tmp_path: Path) -> None:
    run = train_or_load(_cfg(epochs=2), tiny_data, run_dir=tmp_path / "run",
                        callback=lambda report: report.epoch < 2, progress=False)
    assert (run.path / METRICS).is_file() and len(run.history()) == 2


def test_two_identical_trainings_at_once_share_one_run(tiny_data: MultiscaleData, tmp_path: Path) -> None:
    results, errors = [], []

    def train() -> None:
        try:
            results.append(train_or_load(_cfg(epochs=1), tiny_data, runs_dir=tmp_path, progress=False))
        except Exception as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=train) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(results) == 2 and results[0].path == results[1].path
    assert results[0].metrics.to_json() == results[1].metrics.to_json()


def test_a_run_of_another_format_is_not_loaded(cli: dict[str, Path], tmp_path: Path) -> None:
    import shutil

    copy = tmp_path / "old"
    shutil.copytree(cli["run"], copy)
    values = yaml.safe_load((copy / CONFIG).read_text())
    values["run_format"] = RUN_FORMAT - 1
    (copy / CONFIG).write_text(yaml.safe_dump(values))
    _fails(["evaluate", "--run-dir", str(copy)], f"reads format {RUN_FORMAT}: train the run again")


def test_unwritable_out_errno_names_the_file(tmp_path: Path) -> None:
    error = OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(OSError, match="could not write .*x.txt: No space left on device"):
        runs_module.write_atomic(tmp_path / "x.txt", lambda tmp: (_ for _ in ()).throw(error))


def test_stop_cancels_within_the_epoch(tiny_data: MultiscaleData, tmp_path: Path) -> None:
    # Defect (dashboard): a cancel waited for the end of the epoch. `stop` is asked before every window.
    asked: list[int] = []

    def stop() -> bool:
        asked.append(1)
        return len(asked) > 3  # after the data was prepared (2 asks) and one training window

    epochs: list[int] = []
    with pytest.raises(RuntimeError, match="cancelled after epoch 0"):
        train_or_load(_cfg(epochs=3), tiny_data, run_dir=tmp_path / "run", progress=False, stop=stop,
                      callback=lambda report: epochs.append(report.epoch) is None)
    assert epochs == [] and len(asked) == 4 and not (tmp_path / "run" / METRICS).exists()


def test_stop_before_the_data_is_prepared_writes_nothing(tiny_data: MultiscaleData, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="cancelled before the data was prepared; nothing was written"):
        train_or_load(_cfg(epochs=1), tiny_data, runs_dir=tmp_path, progress=False, stop=lambda: True)
    assert not list(tmp_path.iterdir())


def test_stop_after_the_last_window_keeps_the_run(tiny_data: MultiscaleData, tmp_path: Path) -> None:
    finished: list[int] = []
    run = train_or_load(_cfg(epochs=2), tiny_data, run_dir=tmp_path / "run", progress=False,
                        callback=lambda report: finished.append(report.epoch) is None, stop=lambda: len(finished) == 2)
    assert (run.path / METRICS).is_file() and len(run.history()) == 2
