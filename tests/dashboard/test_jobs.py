"""Trainings belong to the server: a reloaded page finds its training again, a second page follows the same
training instead of queueing behind it, cancel acts within one step, and a cancel that comes after the last
epoch keeps the run."""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from dashboard.jobs import CANCELLED, DONE, QUEUED, TrainingJob, running_jobs, training_slot
from dashboard.resources import Resources
from dashboard.state import AppState
from dashboard.views.training import TrainingProgress, server_activity
from msgl_core import METRICS, EpochReport, RunConfig


@pytest.fixture
def slot_held() -> Iterator[threading.Semaphore]:
    """The server's training slot held by the test, so a started job stays queued until released."""
    slot = training_slot()
    assert slot.acquire(timeout=30)
    try:
        yield slot
    finally:
        slot.release()


def _page(resources: Resources, base: RunConfig, runs: Path, **settings: object) -> AppState:
    state = AppState(resources, base, runs)
    state.settings.param.update(**settings)
    return state


def test_a_reloaded_page_follows_its_running_training(resources: Resources, base_config: RunConfig, tmp_path: Path,
                                                      slot_held: threading.Semaphore) -> None:
    # Defect: after a reload the new page showed no trace of the job, and Train queued behind it.
    first = _page(resources, base_config, tmp_path, variant="rgcn_fine", epochs=3)
    first.train()
    job = first.job
    assert job is not None and job.progress().status == QUEUED and running_jobs() == [job]
    first.leave()  # the page is reloaded: its session ends, the training goes on
    assert job.followers == 0 and not job.cancelling
    second = _page(resources, base_config, tmp_path, variant="rgcn_fine", epochs=3)  # the URL restores the settings
    assert second.job is job and job.followers == 1 and "already running on this server" in second.alert
    progress = TrainingProgress(state=second)
    assert progress._layout.visible and "queued" in progress._text.object
    second.train()  # pressing Train again does not queue a second training
    assert running_jobs() == [job]
    slot_held.release()
    try:
        job.wait(60)
    finally:
        assert slot_held.acquire(timeout=30)
    assert second.poll() is False and second.results is not None and second.progress.status == DONE
    assert second.progress.epoch == 3 and "Trained in" in second.alert and running_jobs() == []


def test_cancel_in_one_of_two_pages_stops_it_for_both(resources: Resources, base_config: RunConfig, tmp_path: Path,
                                                       slot_held: threading.Semaphore) -> None:
    first = _page(resources, base_config, tmp_path, variant="rgcn_fine", epochs=3)
    first.train()
    second = _page(resources, base_config, tmp_path, variant="rgcn_fine", epochs=3)
    assert second.job is first.job and first.job.followers == 2
    assert "rgcn_fine on drb" in server_activity(running_jobs(), None)
    assert server_activity(running_jobs(), first.job) == ""
    job = first.job
    second.cancel()
    assert job.cancelling and "also for 1 other page" in second.alert
    job.wait(30)  # a queued job ends at once
    assert first.poll() is False and first.progress.status == CANCELLED and running_jobs() == []
    assert second.poll() is False and second.progress.status == CANCELLED


def test_cancel_stops_within_the_epoch(resources: Resources, base_config: RunConfig, tmp_path: Path) -> None:
    # Defect: Cancel waited for the end of the epoch. 400 epochs of the tiny record; cancel at the first report.
    state = _page(resources, base_config, tmp_path, variant="rgcn_fine", epochs=400)
    state.train()
    job = state.job
    assert job is not None
    deadline = threading.Event()
    while job.progress().epoch < 1 and not deadline.wait(0.01):
        pass
    state.cancel()
    progress = job.wait(30)
    assert progress.status == CANCELLED and progress.epoch < 400
    assert "cancelled after epoch" in progress.message and not list(tmp_path.glob(f"*/{METRICS}"))


def test_a_cancel_after_the_last_epoch_keeps_the_run(resources: Resources, base_config: RunConfig, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    # Defect: a run cancelled during its last epoch, after all epochs completed, was thrown away.
    original = TrainingJob._on_epoch

    def cancel_at_the_end(job: TrainingJob, report: EpochReport) -> bool:
        keep_going = original(job, report)
        if report.epoch == report.epochs:  # the user presses Cancel right after the last epoch
            job.cancel()
        return keep_going

    monkeypatch.setattr(TrainingJob, "_on_epoch", cancel_at_the_end)
    state = _page(resources, base_config, tmp_path, variant="rgcn_fine", epochs=2)
    state.train()
    assert state.job is not None
    state.job.wait(60)
    assert state.poll() is False and state.progress.status == DONE and state.results is not None
    assert "the run was kept" in state.alert and (state.results.run.path / METRICS).is_file()


def test_the_validation_curve_appears_during_training_in_the_page(resources: Resources, base_config: RunConfig,
                                                                  tmp_path: Path) -> None:
    # Defect: the curve failed in the periodic callback at epoch 2 (Bokeh stylesheet TypeError when a rendered
    # HoloViews pane became visible inside the template) and appeared only after training ended.
    from bokeh.document import Document
    from bokeh.models import DataRange1d

    from dashboard.app import Dashboard

    state = _page(resources, base_config, tmp_path, variant="rgcn_fine", epochs=3)
    dashboard = Dashboard(state=state)
    dashboard.template().server_doc(Document())
    progress = next(v for v in dashboard.sidebar if isinstance(v, TrainingProgress))
    state.train()
    state.job.wait(60)
    state.progress = state.job.progress()  # what the poll copies; the view draws the epochs so far
    assert progress._curve.visible and len(progress._source.data["epoch"]) == 3
    assert list(progress._source.data["stage"]) == ["train"] * 3
    # Defect: the curve's axes kept the range of its first two epochs, so later epochs fell outside it.
    curve = progress._curve[0].object
    assert isinstance(curve.y_range, DataRange1d) and math.isnan(curve.y_range.start)  # not fixed at creation
