"""Background training: a worker thread that only records progress; the page polls it.

The worker calls :func:`msgl_core.train_or_load` with a callback that stores each epoch's
report in a lock-protected :class:`TrainingJob`, and a stop check that msgl_core asks before every
training window, so a cancel takes effect within one step (not at the end of the epoch). It never
touches widgets: the session polls :meth:`TrainingJob.progress` from a periodic callback (see
:class:`dashboard.state.AppState`).

Jobs belong to the server, not to a page: :func:`start_or_follow` starts a training or, when one
with the same run folder is already running (a reloaded page, a second tab, another user), makes
the session follow that one. A closed or reloaded page stops following (:meth:`TrainingJob.leave`)
but the training goes on and its run is cached, so the reloaded page finds it again
(:func:`running_job`). Cancel stops the training for every page that shows it.

Trainings of all sessions of a server share one slot (:func:`training_slot`), so a second
training waits ("queued") instead of halving the speed of both on a small CPU, and two sessions
never write the same run folder at once.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

import panel as pn

from msgl_core import EpochReport, MultiscaleData, Run, RunConfig, train_or_load

log = logging.getLogger(__name__)

QUEUED, PREPARING, RUNNING, DONE, FAILED, CANCELLED = "queued", "preparing", "running", "done", "failed", "cancelled"
FINISHED = (DONE, FAILED, CANCELLED)


@dataclass(frozen=True)
class Progress:
    """A snapshot of a training job.

    Attributes:
        status: queued, preparing, running, done, failed or cancelled.
        epoch, epochs: last finished epoch and the planned number.
        train_loss: mean training loss of the last epoch (standardised units).
        val_rmse: validation RMSE of the last epoch, °C (NaN without validation observations).
        best_val_rmse: validation RMSE of the epoch whose weights msgl_core keeps so far (``EpochReport.best``), °C.
        seconds: wall time since the job started, s.
        history: (epoch, train_loss, val_rmse °C, stage) of every finished epoch.
        message: error or cancellation text; for a finished run, a note when a cancel came too late
            or when the run had been trained elsewhere meanwhile ("" otherwise).
        run: the finished run (status done).
        stage: name of the training stage of the last epoch (see :class:`msgl_core.Stage`).
    """

    status: str = QUEUED
    epoch: int = 0
    epochs: int = 0
    train_loss: float = math.nan
    val_rmse: float = math.nan
    best_val_rmse: float = math.nan
    seconds: float = 0.0
    history: tuple[tuple[int, float, float, str], ...] = ()
    message: str = ""
    run: Run | None = None
    stage: str = ""

    @property
    def finished(self) -> bool:
        """True once the job is done, failed or cancelled."""
        return self.status in FINISHED

    def summary(self) -> str:
        """One line for the page, e.g. ``epoch 3/10 · loss 0.41 · validation RMSE 1.83 °C · 42 s``."""
        if self.status == QUEUED:
            return "queued: waiting for another training on this server to finish"
        if self.status == PREPARING:
            return f"preparing data · {self.seconds:.0f} s"
        if self.status == DONE and self.epoch == 0:
            return f"done: {self.message or 'loaded the cached run'}"
        parts = [f"epoch {self.epoch}/{self.epochs}" + (f" ({self.stage})" if self.stage else "")]
        if math.isfinite(self.train_loss):
            parts.append(f"loss {self.train_loss:.3f}")
        if math.isfinite(self.val_rmse):
            parts.append(f"validation RMSE {self.val_rmse:.2f} °C")
        parts.append(f"{self.seconds:.0f} s")
        text = " · ".join(parts)
        return text if self.status == RUNNING else f"{self.status}: {text}"


def training_slot() -> threading.Semaphore:
    """The server-wide training slot (one training at a time per process)."""
    return pn.state.as_cached("msgl-dashboard-training-slot", threading.BoundedSemaphore, value=1)


class _Registry:
    """The server's unfinished jobs by run folder (thread-safe)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.jobs: dict[Path, TrainingJob] = {}


def _registry() -> _Registry:
    return pn.state.as_cached("msgl-dashboard-jobs", _Registry)


def running_jobs() -> list[TrainingJob]:
    """The server's unfinished trainings, oldest first (every session's, and those no page follows)."""
    registry = _registry()
    with registry.lock:
        return [job for job in registry.jobs.values() if not job.progress().finished]


def running_job(path: Path) -> TrainingJob | None:
    """The server's unfinished training of the run folder ``path``, if any."""
    return next((job for job in running_jobs() if job.path == path), None)


def start_or_follow(cfg: RunConfig, data: MultiscaleData, path: Path,
                    runs_dir: Path | None = None) -> tuple[TrainingJob, bool]:
    """Follow the server's running training of ``path`` (the run folder of ``cfg``), else start one.

    Returns the job and whether it was started (False: an existing one is followed).
    """
    registry = _registry()
    with registry.lock:
        job = registry.jobs.get(path)
        if job is not None and not job.progress().finished:
            job.follow()
            return job, False
        job = TrainingJob(cfg, data, path, runs_dir)
        registry.jobs[path] = job
    return job.start(), True


@dataclass(eq=False)
class TrainingJob:
    """Train (or load) ``cfg`` on ``data`` in a daemon thread; thread-safe progress, followers and cancel.

    Use :func:`start_or_follow` rather than starting one directly, so that a run folder has one job.

    Attributes:
        cfg: the run config to train.
        data: the processed dataset.
        path: the run folder (:func:`msgl_core.run_path` of ``cfg``).
        runs_dir: the run cache folder (see :func:`msgl_core.runs_root`).
    """

    cfg: RunConfig
    data: MultiscaleData
    path: Path
    runs_dir: Path | None = None
    _followers: int = field(default=1, init=False)
    _progress: Progress = field(default_factory=Progress, init=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False)
    _cancel: threading.Event = field(default_factory=threading.Event, init=False)
    _thread: threading.Thread | None = field(default=None, init=False)
    _start: float = field(default=0.0, init=False)

    def start(self) -> TrainingJob:
        """Start the worker thread (returns self)."""
        self._start = time.perf_counter()
        self._update(status=QUEUED, epochs=self.cfg.epochs)
        self._thread = threading.Thread(target=self._work, args=(training_slot(),), daemon=True,
                                        name=f"msgl-train-{self.cfg.basin}")
        self._thread.start()
        return self

    def follow(self) -> None:
        """One more session shows this job."""
        with self._lock:
            self._followers += 1

    def leave(self) -> None:
        """A session stops showing this job (page closed or reloaded); the training goes on."""
        with self._lock:
            self._followers = max(self._followers - 1, 0)

    @property
    def followers(self) -> int:
        """How many sessions show this job."""
        with self._lock:
            return self._followers

    def cancel(self) -> None:
        """Stop the training, for every page that shows it: before its next training window (within one
        step) or, while queued, at once; once every epoch has finished, the run is kept.

        (A reloaded page's old session still counts as a follower until the server discards it, so
        follower counts cannot decide whether a cancel should stop the training.)
        """
        self._cancel.set()

    @property
    def cancelling(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._cancel.is_set()

    def progress(self) -> Progress:
        """The latest snapshot (safe to call from any thread)."""
        with self._lock:
            return replace(self._progress, seconds=time.perf_counter() - self._start if self._start else 0.0) \
                if not self._progress.finished else self._progress

    def wait(self, timeout: float | None = None) -> Progress:
        """Block until the worker ends (or ``timeout`` s); for scripts and tests."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.progress()

    def _update(self, **changes: object) -> None:
        with self._lock:
            self._progress = replace(self._progress, **changes)

    def _on_epoch(self, report: EpochReport) -> bool:
        with self._lock:
            p = self._progress
            best = report.val_rmse if report.best else p.best_val_rmse  # msgl_core's choice of weights
            self._progress = replace(p, status=RUNNING, epoch=report.epoch, epochs=report.epochs, stage=report.stage,
                                     train_loss=report.train_loss, val_rmse=report.val_rmse, best_val_rmse=best,
                                     history=(*p.history, (report.epoch, report.train_loss, report.val_rmse, report.stage)))
        return not self._cancel.is_set()

    def _work(self, slot: threading.Semaphore) -> None:
        while not slot.acquire(timeout=0.2):
            if self._cancel.is_set():
                self._finish(CANCELLED, "cancelled before training started")
                return
        try:
            if self._cancel.is_set():
                self._finish(CANCELLED, "cancelled before training started")
                return
            self._update(status=PREPARING)
            run = train_or_load(self.cfg, self.data, runs_dir=self.runs_dir, callback=self._on_epoch, progress=False,
                                stop=self._cancel.is_set)
            epochs = self.progress().epoch
            note = ("the run was trained meanwhile by another process; loaded it" if epochs == 0 else
                    "every epoch had finished when the cancel came, so the run was kept"
                    if self._cancel.is_set() else "")
            self._finish(DONE, note, run)
        except RuntimeError as error:
            self._finish(CANCELLED if self._cancel.is_set() else FAILED, str(error))
        except Exception as error:  # noqa: BLE001 - any failure is reported in the page, never raised
            log.exception("training failed")
            self._finish(FAILED, f"{type(error).__name__}: {error}")
        finally:
            slot.release()

    def _finish(self, status: str, message: str, run: Run | None = None) -> None:
        seconds = time.perf_counter() - self._start
        self._update(status=status, message=message, run=run, seconds=seconds)
        registry = _registry()
        with registry.lock:
            if registry.jobs.get(self.path) is self:
                del registry.jobs[self.path]
