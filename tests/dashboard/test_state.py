"""Session state without a browser: settings, checks, training jobs, loading, picking, per-session isolation."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from dashboard.jobs import CANCELLED, DONE, FAILED, TrainingJob
from dashboard.resources import Resources, resources_from_data
from dashboard.state import UPSTREAM, AppState, RunSettings
from dashboard.views.compare import runs_table
from dashboard.views.controls import RunControls
from msgl_core import (
    METRICS,
    WHOLE_BASIN,
    MultiscaleData,
    Run,
    RunConfig,
    kept_count,
    prepare,
    split_days,
    variant_names,
)


def _state(resources: Resources, base: RunConfig, runs: Path, **settings: object) -> AppState:
    state = AppState(resources, base, runs)
    state.settings.param.update(**settings)
    return state


def _finish(state: AppState) -> None:
    assert state.job is not None
    state.job.wait(60)
    assert state.poll() is False


def test_settings_round_trip_through_run_config(base_config: RunConfig) -> None:
    settings = RunSettings.from_config(base_config.with_overrides(epochs=40, sparsity=0.25, seed=3))
    assert settings.epochs == 10  # a demo trains in minutes: the base's 40 epochs are capped
    assert settings.param.variant.objects == variant_names()
    cfg = settings.to_config()
    assert (cfg.basin, cfg.sparsity, cfg.seed, cfg.epochs, cfg.window) == (WHOLE_BASIN, 0.25, 3, 10, 20)
    settings.apply_config(cfg.with_overrides(basin="104"))
    assert (settings.domain, settings.outlet, settings.basin) == (UPSTREAM, 104, "104")


def test_invalid_choices_are_explained_not_raised(resources: Resources, base_config: RunConfig, tmp_path: Path) -> None:
    state = _state(resources, base_config, tmp_path, domain=UPSTREAM)
    assert not state.check.ok and "click a segment" in state.check.error
    state.train()
    assert state.job is None and state.alert_level == "danger" and "click a segment" in state.alert
    with pytest.raises(ValueError, match="greater than 0"):
        state.settings.sparsity = 0.0  # the widgets cannot produce it either
    if not torch.cuda.is_available():
        state.settings.param.update(domain="drb", device="cuda")
        assert "no CUDA GPU" in state.check.error


def _trained_on(data: MultiscaleData, cfg: RunConfig) -> int:
    """Fine targets that training gets on fit days (training and validation periods)."""
    prepared = prepare(data, cfg)
    days = split_days(prepared.time, cfg)
    return int(np.isfinite(prepared.y_fine[days["train"] | days["val"]]).sum())


def test_sparsity_shows_the_reach_days_it_keeps(resources: Resources, dash_data: MultiscaleData,
                                                base_config: RunConfig, tmp_path: Path) -> None:
    state = _state(resources, base_config, tmp_path, sparsity=0.1)
    counts = state.check.counts
    assert counts is not None and counts.holdout == 0 and counts.eligible == counts.observed > 0
    assert counts.kept == kept_count(counts.eligible, 0.1) == _trained_on(dash_data, state.check.config)
    assert state.check.n_reaches == 10
    state.settings.param.update(domain=UPSTREAM, outlet=102)  # 102 has no site: nothing to train on
    assert state.check.n_reaches == 1 and "no fine observations" in state.check.error


@pytest.mark.parametrize("sparsity", [1.0, 0.5])
def test_kept_reach_days_are_counted_after_the_holdout(resources: Resources, dash_data: MultiscaleData,
                                                       base_config: RunConfig, tmp_path: Path, sparsity: float) -> None:
    """With a hold-out in the base config the page shows what training keeps (it once showed 94 for 24)."""
    state = AppState(resources, base_config.with_overrides(holdout_segments=[101]), tmp_path)
    state.settings.sparsity = sparsity
    controls = RunControls(state=state)
    check = state.check
    assert check.ok and check.config.holdout_segments == (101,)
    kept = _trained_on(dash_data, check.config)
    assert check.counts.kept == kept > 0 and check.counts.holdout > 0
    assert f"**{kept:,}** of {check.counts.eligible:,} observed reach-days" in controls._counts.object
    assert check.counts.observed == check.counts.eligible + check.counts.holdout


def test_a_holdout_outside_the_domain_is_reported_before_training(resources: Resources, base_config: RunConfig,
                                                                  tmp_path: Path) -> None:
    state = AppState(resources, base_config.with_overrides(holdout_segments=[999]), tmp_path)
    assert not state.check.ok and "999" in state.check.error and state.check.counts is None
    state.train()
    assert state.job is None and state.alert_level == "danger" and "999" in state.alert
    other = _state(resources, base_config.with_overrides(holdout_segments=[101]), tmp_path, domain=UPSTREAM,
                   outlet=102)  # hold-out 101 lies outside the domain upstream of 102
    assert "holdout segments [101] are not in basin '102'" in other.check.error


def test_train_in_background_then_load_instead_of_training_again(resources: Resources, base_config: RunConfig,
                                                                 tmp_path: Path) -> None:
    state = _state(resources, base_config, tmp_path, variant="rgcn_fine", sparsity=0.5, threads=1)
    assert state.check.existing is None
    state.train()
    assert state.job is not None and state.progress is not None
    _finish(state)
    assert state.progress.status == DONE and state.progress.epoch == 2
    assert len(state.progress.history) == 2 and state.progress.summary().startswith("done")
    history = state.progress.run.history()  # the best weights are msgl_core's choice, not the page's
    assert state.progress.best_val_rmse == pytest.approx(history.loc[history["best"], "val_rmse"].iloc[-1])
    assert state.results is not None and state.view == "day" and state.alert_level == "success"
    assert [r.path for r in state.cached_runs] == [state.results.run.path]
    assert state.check.existing == state.results.run.path
    stamp = (state.results.run.path / METRICS).stat().st_mtime_ns
    state.train()  # same settings: the cached run loads, nothing trains
    assert state.job is None and (state.results.run.path / METRICS).stat().st_mtime_ns == stamp


def test_cancel_and_failure_leave_the_app_usable(resources: Resources, base_config: RunConfig, tmp_path: Path,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    state = _state(resources, base_config, tmp_path, variant="rgcn_fine", epochs=500)
    state.train()
    state.cancel()
    _finish(state)
    assert state.progress is not None and state.progress.status == CANCELLED
    assert state.alert_level == "warning" and state.results is None
    assert not list(tmp_path.glob(f"*/{METRICS}"))  # nothing saved as complete

    def fail(*args: object, **kwargs: object) -> Run:
        raise ValueError("no data for segment 999")

    monkeypatch.setattr("dashboard.jobs.train_or_load", fail)
    broken = AppState(resources, base_config, tmp_path)
    broken.train()
    _finish(broken)
    assert broken.progress is not None and broken.progress.status == FAILED
    assert broken.alert_level == "danger" and "999" in broken.alert
    assert broken.job is None and not broken.check.error  # the user can change settings and train again


def test_a_queued_job_waits_for_the_training_slot(dash_data: MultiscaleData, base_config: RunConfig,
                                                  tmp_path: Path) -> None:
    cfg = base_config.with_overrides(variant="rgcn_fine", epochs=200)
    first = TrainingJob(cfg, dash_data, tmp_path / "a").start()
    second = TrainingJob(cfg.with_overrides(seed=2), dash_data, tmp_path / "b").start()
    second.cancel()
    assert second.wait(30).status == CANCELLED
    first.cancel()
    assert first.wait(60).status == CANCELLED


def test_load_errors_are_reported(resources: Resources, base_config: RunConfig, tmp_path: Path, tiny_run: Run) -> None:
    state = AppState(resources, base_config, tmp_path)
    assert state.load(tmp_path / "missing") is False
    assert state.alert_level == "danger" and "not a complete run" in state.alert and state.results is None
    assert state.load(tiny_run.path) is True
    assert state.results is not None and state.date is not None and state.reach is None


def test_runs_cache_listing_skips_broken_folders(resources: Resources, base_config: RunConfig, runs_dir: Path,
                                                 tmp_path: Path) -> None:
    state = AppState(resources, base_config, runs_dir)
    assert len(state.cached_runs) == 2 and not state.skipped_runs
    assert any(r.label().startswith("rgcn_fine · drb · ρ 50% · seed 1 · 2 ep · ") for r in state.cached_runs)
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / METRICS).write_text("{}")
    (broken / "config.yaml").write_text("variant: [unclosed")
    other = AppState(resources, base_config, tmp_path)
    assert other.cached_runs == [] and other.skipped_runs and other.skipped_runs[0].startswith("broken")
    table = runs_table(state.cached_runs)
    assert sorted(table["sparsity"]) == [0.5, 1.0] and (table["rmse"] > 0).all()


def test_map_clicks_pick_reaches_and_outlets(resources: Resources, base_config: RunConfig, tiny_run: Run) -> None:
    state = AppState(resources, base_config, tiny_run.path.parent)
    x, y = resources.reaches.loc["104_2", ["x", "y"]]
    assert state.pick_reach(x, y) is None  # no run loaded yet
    state.load(tiny_run.path)
    assert state.pick_reach(x + 50, y) == "104_2" and state.reach == "104_2"
    assert state.pick_reach(x + 1e6, y) is None and state.reach == "104_2"
    assert state.pick_segment(x, y) == 104
    assert state.settings.domain == UPSTREAM and state.settings.basin == "104"
    assert state.check.n_segments == 4  # 101, 102, 103 drain to 104
    state.select_reach("not-a-reach")
    assert state.reach == "104_2"


def test_missing_map_layers_are_tolerated(tiny_data: MultiscaleData) -> None:
    resources = resources_from_data(tiny_data)  # the plain tiny bundle has no outline or reservoirs
    assert resources.layers is None and "not available" in resources.layers_note
    assert resources.boundary_paths() == [] and resources.site_points().empty


def test_sessions_do_not_share_state(resources: Resources, base_config: RunConfig, runs_dir: Path) -> None:
    """Ten sessions load runs and pick days and reaches at once; each keeps its own."""
    states = [AppState(resources, base_config, runs_dir) for _ in range(10)]
    runs = sorted(states[0].cached_runs, key=lambda r: r.config.sparsity)
    reaches = ["101_1", "104_1"]
    errors: list[BaseException] = []

    def session(k: int) -> None:
        try:
            state = states[k]
            state.load(runs[k % 2].path)
            state.date = state.results.time[k]
            state.select_reach(reaches[k % 2])
        except BaseException as error:  # noqa: BLE001 - re-raised below in the test thread
            errors.append(error)

    threads = [threading.Thread(target=session, args=(k,)) for k in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not errors
    for k, state in enumerate(states):
        assert state.results.run.path == runs[k % 2].path
        assert state.date == state.results.time[k] and state.reach == reaches[k % 2]
        assert state.settings.sparsity == runs[k % 2].config.sparsity


def test_a_loaded_run_is_what_the_settings_describe_even_with_other_keys(resources: Resources, dash_data: MultiscaleData,
                                                                         base_config: RunConfig, tmp_path: Path) -> None:
    # Defect: a run with a key the sidebar cannot show (a hold-out, a learning rate, ensemble settings) loaded, and
    # the page then said the settings describe another run and offered to train it.
    from msgl_core import train_or_load

    run = train_or_load(base_config.with_overrides(variant="rgcn_fine", holdout_segments=[104], learning_rate=0.01),
                        dash_data, runs_dir=tmp_path, progress=False)
    state = AppState(resources, base_config, tmp_path)
    assert state.load(run.path)
    assert state.check.existing == run.path and "the settings now describe" not in state.shown_run_note()
    state.settings.seed = 7  # a new seed of that run: trained with its hold-out and learning rate
    assert state.check.config.holdout_segments == (104,) and state.check.config.learning_rate == 0.01
    assert "the settings now describe rgcn_fine" in state.shown_run_note()
