"""Training, train-or-load, predictions and evaluation on the tiny dataset."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import xarray as xr

from msgl_core.config import RUN_FORMAT, RunConfig
from msgl_core.data import MultiscaleData
from msgl_core.data.dataset import prepare
from msgl_core.registry import get_variant, variant_names
from msgl_core.runs import CHECKPOINT, METRICS, load_model, load_run, train_or_load, write_predictions
from msgl_core.train.loop import fit
from tests.tiny_bundle import N_REACHES, PERIODS, TIME


def _cfg(**overrides: object) -> RunConfig:
    values = {"basin": "drb", "window": 20, "epochs": 2, "device": "cpu", "learning_rate": 0.02, **PERIODS}
    return RunConfig.from_dict({**values, **overrides})


@pytest.mark.parametrize("variant", ["msgl", "rgcn_fine"])
def test_two_epochs_lower_the_loss(tiny_data: MultiscaleData, variant: str) -> None:
    cfg = _cfg(variant=variant, epochs=3)
    result = fit(cfg, prepare(tiny_data, cfg), get_variant(variant), torch.device("cpu"), progress=False)
    losses = [r.train_loss for r in result.history]
    assert losses[-1] < losses[0]
    assert all(r.val_rmse > 0 for r in result.history)


def test_faithful_and_efficient_msgl_steps_both_train(tiny_data: MultiscaleData) -> None:
    cfg = _cfg(faithful_step=True)
    result = fit(cfg, prepare(tiny_data, cfg), get_variant("msgl"), torch.device("cpu"), progress=False)
    assert len(result.history) == 2 and result.history[-1].train_loss > 0


def test_train_or_load_returns_the_same_run(tiny_data: MultiscaleData, tmp_path: Path) -> None:
    cfg = _cfg(variant="rgcn_fine")
    first = train_or_load(cfg, tiny_data, runs_dir=tmp_path, progress=False)
    stamp = (first.path / CHECKPOINT).stat().st_mtime_ns
    second = train_or_load(cfg.with_overrides(threads=1), tiny_data, runs_dir=tmp_path, progress=False)
    assert second.path == first.path and second.metrics.to_json() == first.metrics.to_json()
    assert (first.path / CHECKPOINT).stat().st_mtime_ns == stamp
    assert set(p.name for p in first.path.iterdir()) == {"config.yaml", "model.pt", "history.csv",
                                                          "metrics.json", "predictions.nc", ".lock"}
    with pytest.raises(ValueError, match="holds a different run"):
        train_or_load(cfg.with_overrides(seed=5), tiny_data, run_dir=first.path, progress=False)


def test_predictions_metrics_and_holdout(tiny_data: MultiscaleData, tmp_path: Path) -> None:
    run = train_or_load(_cfg(holdout_segments=[104]), tiny_data, runs_dir=tmp_path, progress=False)
    fine = run.metrics.fine.overall
    assert fine.n_obs == 21 and fine.rmse > 0  # site S-on-101 daily over the 21 test days
    assert run.metrics.holdout is not None and run.metrics.holdout.overall.n_obs == 7  # S-on-104 every third day
    assert set(run.metrics.fine.per_month) == set(range(1, 13))
    assert run.metrics.coarse is not None
    out = write_predictions(run, tiny_data, tmp_path / "pred.nc", device="cpu")
    ds = xr.open_dataset(out)
    assert ds["prediction"].dims == ("time", "reach") and ds["prediction"].shape == (len(TIME), N_REACHES)
    assert ds["prediction"].attrs["units"] == "degC" and bool(ds["prediction"].notnull().all())


def test_cancel_leaves_no_complete_run(tiny_data: MultiscaleData, tmp_path: Path) -> None:
    with pytest.raises(RuntimeError, match="cancelled after epoch 1"):
        train_or_load(_cfg(), tiny_data, run_dir=tmp_path / "run", callback=lambda report: False, progress=False)
    assert not (tmp_path / "run" / METRICS).exists()
    assert (tmp_path / "run" / CHECKPOINT).exists()  # the best checkpoint so far, written atomically
    assert not list((tmp_path / "run").glob(".*tmp"))


def test_bad_configs_and_mismatched_checkpoint(tiny_data: MultiscaleData, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown variant 'msg'; did you mean 'msgl'"):
        train_or_load(_cfg(variant="msg"), tiny_data, runs_dir=tmp_path)
    with pytest.raises(ValueError, match="unknown basin 'atlantis'"):
        train_or_load(_cfg(basin="atlantis"), tiny_data, runs_dir=tmp_path)
    run = train_or_load(_cfg(variant="rgcn_fine", epochs=1), tiny_data, runs_dir=tmp_path, progress=False)
    torch.save({"weight": torch.zeros(3)}, run.path / CHECKPOINT)
    with pytest.raises(ValueError, match="does not match the run's config"):
        load_model(load_run(run.path), tiny_data)


def test_registry_lists_variants() -> None:
    assert {"msgl", "rgcn_fine"} <= set(variant_names())


def test_list_runs_skips_unreadable_runs(tiny_data: MultiscaleData, tmp_path: Path) -> None:
    from msgl_core.runs import list_runs

    good = train_or_load(_cfg(variant="rgcn_fine", epochs=1), tiny_data, runs_dir=tmp_path, progress=False)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "config.yaml").write_text(f"lr: 0.1\nrun_format: {RUN_FORMAT}\n")
    (broken / METRICS).write_text("{}")
    listing = list_runs(tmp_path)
    assert [r.path for r in listing.runs] == [good.path]
    assert len(listing.unreadable) == 1 and listing.unreadable[0].startswith("broken: ")
    assert "config.yaml: unknown config key 'lr'" in listing.unreadable[0]
