"""Run folders: train or load, with a cache keyed by the config, the data and the run format.

A complete run folder holds ``config.yaml`` (the config and the declared metadata: package version,
run format, data fingerprint; it reads back with :meth:`RunConfig.from_yaml`), ``model.pt``
(best-validation state dict, loaded with ``weights_only=True``), ``history.csv`` (written after
every epoch), ``predictions.nc`` and ``metrics.json`` (a :class:`RunMetrics`). ``metrics.json`` is
written last, so a folder without it is interrupted (or still training: a training holds the
folder's lock) and is trained again from epoch 1, with a message that says so. Every file is written
to a temporary name first; temporary files left by a killed process are removed on the next start.
A run whose training loss or predictions are not finite is never saved as complete.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import logging
import math
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch
import xarray as xr

from msgl_core import __version__, netcdf
from msgl_core.config import RUN_FORMAT, RunConfig
from msgl_core.data.build import MultiscaleData, load_dataset
from msgl_core.data.dataset import PreparedData, prepare
from msgl_core.evaluate.predict import netcdf_encoding, predict_record
from msgl_core.evaluate.record import RunMetrics, TrainingSummary
from msgl_core.evaluate.report import evaluate
from msgl_core.registry import Variant, get_variant
from msgl_core.train.loop import Callback, EpochReport, StopCheck, TrainingDiverged, fit
from msgl_core.train.runtime import resolve_device, set_threads

if TYPE_CHECKING:
    from msgl_core.diffusion.flow import PriorEpoch

log = logging.getLogger(__name__)

RUNS_DIR_ENV = "MSGL_RUNS_DIR"
CONFIG, CHECKPOINT, HISTORY, PREDICTIONS, METRICS = (
    "config.yaml", "model.pt", "history.csv", "predictions.nc", "metrics.json")
LOCK = ".lock"


@dataclass(frozen=True)
class Run:
    """A complete run: its folder, config, data fingerprint, package version and results."""

    path: Path
    config: RunConfig
    data_fingerprint: str
    msgl_version: str
    metrics: RunMetrics

    @property
    def test_rmse(self) -> float:
        """Overall fine-scale test RMSE of the gauged reaches, °C."""
        return self.metrics.test_rmse

    def label(self) -> str:
        """One line naming the run: variant, basin, ρ, seed, epochs and test RMSE (°C)."""
        cfg, rmse = self.config, self.test_rmse
        score = f"{rmse:.2f} °C" if math.isfinite(rmse) else "n/a"
        return f"{cfg.variant} · {cfg.basin} · ρ {cfg.sparsity * 100:g}% · seed {cfg.seed} · {cfg.epochs} ep · {score}"

    def summary(self) -> dict[str, object]:
        """One flat row describing the run (the CLI's, ``msgl compare``'s and the dashboard's run tables):
        folder name, variant, basin, sparsity, seed, epochs per stage, overall gauged test scores
        (rmse, mae, bias in °C; nse, kge; n_obs) and training seconds."""
        cfg, training = self.config, self.metrics.training
        return {"run": self.path.name, "variant": cfg.variant, "basin": cfg.basin, "sparsity": cfg.sparsity,
                "seed": cfg.seed, "epochs": cfg.epochs, **vars(self.metrics.fine.overall),
                "train_s": training.seconds if training is not None else math.nan}

    def history(self) -> pd.DataFrame:
        """Per-epoch training history (columns of :class:`~msgl_core.train.loop.EpochReport`)."""
        return pd.read_csv(self.path / HISTORY)

    def predictions(self, lazy: bool = False) -> xr.Dataset:
        """Predicted and observed daily fine temperature, see :func:`predict_record`: loaded into memory, or
        opened with ``lazy`` (see :func:`msgl_core.netcdf.read`)."""
        return netcdf.read(self.path / PREDICTIONS, lazy=lazy)


def runs_root(path: str | Path | None = None) -> Path:
    """Folder of cached runs: ``path``, else ``$MSGL_RUNS_DIR``, else ``runs/`` here.

    Raises ValueError if it exists and is not a folder.
    """
    root = Path(path or os.environ.get(RUNS_DIR_ENV) or "runs")
    if root.exists() and not root.is_dir():
        raise ValueError(f"runs folder {root} is a file; expected a folder")
    return root


def run_name(cfg: RunConfig, data_fingerprint: str) -> str:
    """Readable, unique folder name of a run."""
    return f"{cfg.variant}_{cfg.basin}_rho{cfg.sparsity:g}_seed{cfg.seed}_{cfg.key(data_fingerprint)[:10]}"


def run_path(cfg: RunConfig, data_fingerprint: str, runs_dir: str | Path | None = None) -> Path:
    """The cache folder of ``cfg``'s run on the data with ``data_fingerprint`` (it may not exist yet)."""
    return runs_root(runs_dir) / run_name(cfg, data_fingerprint)


def is_complete(path: str | Path) -> bool:
    """Whether ``path`` holds a complete run (``metrics.json`` is written last)."""
    return (Path(path) / METRICS).is_file()


def load_run(path: str | Path) -> Run:
    """A complete run from its folder.

    Raises FileNotFoundError if the run is not complete; ValueError if ``path`` is a file, if the run
    was written in another run format, or if its files cannot be read (naming the file).
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file; expected a run folder")
    if not is_complete(path):
        raise FileNotFoundError(f"{path} is not a complete run (no {METRICS}); train it first")
    metadata = _metadata(path / CONFIG)
    if metadata.get("run_format") != RUN_FORMAT:
        raise ValueError(f"{path} was written by msgl {metadata.get('msgl_version', '?')} in run format "
                         f"{metadata.get('run_format', 1)}; this msgl {__version__} reads format {RUN_FORMAT}: "
                         "train the run again")
    config = RunConfig.from_yaml(path / CONFIG)
    try:
        metrics = RunMetrics.from_json((path / METRICS).read_text(), str(path / METRICS))
    except UnicodeDecodeError:
        raise ValueError(f"{path / METRICS}: not a text file") from None
    return Run(path, config, str(metadata.get("data_fingerprint", "")), str(metadata.get("msgl_version", "")),
               metrics)


def _metadata(config_file: Path) -> dict:
    import yaml

    try:
        values = yaml.safe_load(config_file.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise ValueError(f"{config_file}: cannot be read ({error})") from None
    if not isinstance(values, dict):
        raise ValueError(f"{config_file}: expected a mapping of config keys")
    return values


@dataclass(frozen=True)
class RunListing:
    """The run cache: complete runs (newest first) and the folders that could not be read."""

    runs: list[Run]
    unreadable: list[str]


def list_runs(root: str | Path | None = None, load: Callable[[Path], Run] = load_run) -> RunListing:
    """Complete runs under ``root`` (see :func:`runs_root`), newest first.

    A run whose files cannot be read (bad YAML, unknown config keys, other run format, ...) is listed
    in ``unreadable`` as ``"folder: reason"`` instead of failing the whole listing. ``load`` reads one run
    folder (:func:`load_run`; a long-lived process such as the dashboard passes a cached one).
    """
    folder = runs_root(root)
    runs, unreadable = [], []
    for metrics in sorted(folder.glob(f"*/{METRICS}")) if folder.is_dir() else []:
        try:
            runs.append(load(metrics.parent))
        except (OSError, ValueError) as error:
            unreadable.append(f"{metrics.parent.name}: {error}")
    runs.sort(key=lambda r: (r.path / METRICS).stat().st_mtime, reverse=True)
    return RunListing(runs, unreadable)


def train_or_load(cfg: RunConfig, data: MultiscaleData | None = None, runs_dir: str | Path | None = None,
                  run_dir: str | Path | None = None, callback: Callback | None = None,
                  progress: bool = True, stop: StopCheck | None = None) -> Run:
    """Load the run of ``cfg`` if it exists, else train, predict, evaluate and save it.

    Everything that can be checked (variant, basin, hold-out, device, folders) is checked before
    anything is written. The run folder is locked while training, so a second identical training
    waits and then loads the first one's run.

    Args:
        cfg: the run's config.
        data: the processed dataset (default: :func:`load_dataset` with default locations).
        runs_dir: cache folder (see :func:`runs_root`); run_dir: explicit folder for this run.
        callback: called after every epoch; returning False cancels (the run is not saved as complete).
        stop: asked before data preparation and before every training window; True cancels at once
            (see :func:`~msgl_core.train.loop.fit`). Once every epoch has finished it is no longer
            asked: the run is predicted, evaluated and saved.

    Raises ValueError for an unknown variant or basin, a bad hold-out, an unavailable device, a file
    where a folder is expected, or when ``run_dir`` holds a different run; RuntimeError if training
    was cancelled; :class:`TrainingDiverged` if the loss or predictions are not finite (nothing is
    cached); OSError if a file cannot be written (disk full, ...).
    """
    variant = get_variant(cfg.variant)
    data = data or load_dataset()
    fingerprint = data.path.name
    path = Path(run_dir) if run_dir else run_path(cfg, fingerprint, runs_dir)
    if path.exists() and not path.is_dir():
        raise ValueError(f"run folder {path} is a file; expected a folder")
    if is_complete(path):
        return _load_same(path, cfg, fingerprint)
    device = resolve_device(cfg.device)
    cancelled = "training cancelled {} the data was prepared; nothing was written"
    if stop is not None and stop():
        raise RuntimeError(cancelled.format("before"))
    prepared = prepare(data, cfg)
    if stop is not None and stop():
        raise RuntimeError(cancelled.format("while"))
    path.mkdir(parents=True, exist_ok=True)
    with _locked(path):
        if is_complete(path):  # trained by another process while this one waited
            return _load_same(path, cfg, fingerprint)
        _clean_temporary(path)
        if (path / HISTORY).is_file():
            done = len(pd.read_csv(path / HISTORY)) if (path / HISTORY).stat().st_size else 0
            log.warning("%s holds an interrupted run (%d epochs done); training restarts from epoch 1", path, done)
            (path / HISTORY).unlink()
        set_threads(cfg.threads)
        _write_text(path / CONFIG, cfg.to_yaml({"msgl_version": __version__, "run_format": RUN_FORMAT,
                                                "data_fingerprint": fingerprint}))
        start = time.perf_counter()
        history: list[EpochReport] = []

        def on_epoch(report: EpochReport) -> bool | None:
            history.append(report)
            _write_text(path / HISTORY, pd.DataFrame([vars(r) for r in history]).to_csv(index=False))
            return callback(report) if callback is not None else None

        if variant.probabilistic:
            return _train_probabilistic(cfg, data, prepared, path, device, runs_dir, on_epoch, progress, stop, start)
        result = fit(cfg, prepared, variant, device, on_epoch, path / CHECKPOINT, progress, stop)
        if result.cancelled:
            done = result.history[-1].epoch if result.history else 0
            raise RuntimeError(f"training cancelled after epoch {done}; nothing was saved as complete")
        model = variant.build(prepared, cfg)
        model.load_state_dict(result.state_dict)
        predictions = predict_record(model.to(device), variant, prepared, cfg.window, device)
        if not np.isfinite(predictions["prediction"].values).all():
            raise TrainingDiverged(f"{path}: the trained model predicts non-finite temperatures; "
                                   "the run is not cached")
        _write_netcdf(predictions, path / PREDICTIONS)
        metrics = evaluate(predictions, cfg, data.coarse["water_temp_obs"]).with_training(TrainingSummary(
            result.best_epoch, len(result.history), round(time.perf_counter() - start, 1), str(device)))
        _write_text(path / METRICS, metrics.to_json())
    return load_run(path)


def _train_probabilistic(cfg: RunConfig, data: MultiscaleData, prepared: PreparedData, path: Path, device: torch.device,
                         runs_dir: str | Path | None, on_epoch: Callback, progress: bool, stop: StopCheck | None,
                         start: float) -> Run:
    """The ensemble flow of :mod:`msgl_core.ensemble_runs` in the locked folder ``path``: the base run trains (or
    loads) in the same runs folder; every prior epoch is reported as an :class:`EpochReport` (no validation RMSE)."""
    from msgl_core.ensemble_runs import train_ensemble

    options = cfg.ot_diffusion
    total = options.pretrain_epochs + options.finetune_epochs

    def base_run(base_cfg: RunConfig) -> Run:
        return train_or_load(base_cfg, data, runs_dir, progress=progress, stop=stop)

    def prior_epoch(epoch: PriorEpoch) -> bool | None:
        if stop is not None and stop():
            return False
        done = epoch.epoch + (options.pretrain_epochs if epoch.stage == "finetune" else 0)
        return on_epoch(EpochReport(done, total, epoch.stage, epoch.loss, math.nan, True, epoch.seconds))

    predictions, metrics = train_ensemble(cfg, data, prepared, path, device, base_run, prior_epoch)
    if not np.isfinite(predictions["prediction"].values[predictions["n_members"].values > 0]).all():
        raise TrainingDiverged(f"{path}: the ensemble holds non-finite temperatures; the run is not cached")
    _write_netcdf(predictions, path / PREDICTIONS)
    if not (path / HISTORY).is_file():  # a baseline without a prior has no epochs
        _write_text(path / HISTORY, pd.DataFrame(columns=list(EpochReport.__dataclass_fields__)).to_csv(index=False))
    done = len(pd.read_csv(path / HISTORY))
    metrics = metrics.with_training(TrainingSummary(done, done, round(time.perf_counter() - start, 1), str(device)))
    _write_text(path / METRICS, metrics.to_json())
    return load_run(path)


def _load_same(path: Path, cfg: RunConfig, fingerprint: str) -> Run:
    existing = load_run(path)
    if existing.config.key(existing.data_fingerprint) != cfg.key(fingerprint):
        raise ValueError(f"{path} holds a different run (config or data differ); choose another --run-dir")
    return existing


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on run folder ``path`` (waits for another training of the same run)."""
    with open(path / LOCK, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _clean_temporary(path: Path) -> None:
    """Remove temporary files a killed process left in run folder ``path`` (the caller holds its lock)."""
    for tmp in path.glob(".*.tmp"):
        tmp.unlink(missing_ok=True)


def load_model(run: Run, data: MultiscaleData) -> tuple[Variant, torch.nn.Module, PreparedData]:
    """Rebuild a run's model with its best weights.

    Raises ValueError if the checkpoint is missing, unreadable or does not fit the run's config.
    """
    variant = get_variant(run.config.variant)
    if variant.probabilistic:
        from msgl_core.ensemble_runs import ENSEMBLE_FILES

        raise ValueError(f"{run.path.name} is a probabilistic run: it holds an ensemble ({', '.join(ENSEMBLE_FILES)}), "
                         "not one network; `msgl predict` writes its stored ensemble summary")
    prepared = prepare(data, run.config)
    model = variant.build(prepared, run.config)
    checkpoint = run.path / CHECKPOINT
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise ValueError(f"{checkpoint} is missing; train the run again") from None
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError, ... for a damaged file
        raise ValueError(f"{checkpoint} is not a readable model checkpoint ({type(error).__name__}); "
                         "train the run again") from None
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as error:
        raise ValueError(f"{checkpoint} does not match the run's config "
                         f"(variant {run.config.variant}, basin {run.config.basin}): {error}") from None
    return variant, model, prepared


def check_output_file(out: str | Path, suffix: str = ".nc") -> Path:
    """``out`` as a file to write: its folder must exist and it must not be a folder.

    Raises ValueError naming the problem (checked before any computation).
    """
    out = Path(out)
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name ending in {suffix}")
    if not out.parent.is_dir():
        raise ValueError(f"--out {out}: folder {out.parent} does not exist")
    if out.suffix != suffix:
        raise ValueError(f"--out {out}: expected a file name ending in {suffix}")
    if not os.access(out.parent, os.W_OK):
        raise ValueError(f"--out {out}: folder {out.parent} is not writable")
    return out


def write_predictions(run: Run, data: MultiscaleData, out: str | Path, device: str = "auto",
                      members: bool = False) -> Path:
    """Predict the whole record for every reach of the run's domain and write NetCDF to ``out``.

    A probabilistic run is not sampled again: its stored ensemble summary is written (see
    :mod:`msgl_core.ensemble_runs`) and, with ``members``, its (member, time, reach) ensemble on the sampled days
    beside it as ``<out stem>_members.nc``.

    Raises ValueError for a bad ``out`` (see :func:`check_output_file`) or checkpoint, before predicting, and for
    ``members`` on a deterministic run; OSError if the file cannot be written.
    """
    out = check_output_file(out)
    if get_variant(run.config.variant).probabilistic:
        from msgl_core.ensemble_runs import read_members

        if members:
            ensemble = read_members(run.path).to_dataset()
            write_atomic(out.with_name(f"{out.stem}_members.nc"),
                         lambda tmp: netcdf.write(ensemble, tmp, netcdf_encoding(ensemble)))
        _write_netcdf(run.predictions(), out)
        return out
    if members:
        raise ValueError(f"--members: {run.path.name} is a deterministic run ({run.config.variant}); it has no members")
    target = resolve_device(device)
    variant, model, prepared = load_model(run, data)
    predictions = predict_record(model.to(target), variant, prepared, run.config.window, target)
    predictions.attrs = {"title": f"msgl predictions: {run.path.name}", "variant": run.config.variant,
                         "basin": run.config.basin, "sparsity": run.config.sparsity, "msgl_version": __version__}
    _write_netcdf(predictions, out)
    return out


def _write_text(path: Path, text: str) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text))


def _write_netcdf(ds: xr.Dataset, path: Path) -> None:
    write_atomic(path, lambda tmp: netcdf.write(ds, tmp, netcdf_encoding(ds)))


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Write ``path`` through a temporary file and a rename; on failure remove the temporary file and
    raise OSError naming ``path`` (netCDF reports a full disk as ``RuntimeError: NetCDF: HDF error``)."""
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as error:
        tmp.unlink(missing_ok=True)
        code = error.errno if isinstance(error, OSError) and error.errno else errno.EIO
        reason = os.strerror(code) if isinstance(error, OSError) and error.errno else str(error)
        hint = " (is the disk full?)" if code in (errno.ENOSPC, errno.EIO) else ""
        raise OSError(code, f"could not write {path}: {reason}{hint}") from error
