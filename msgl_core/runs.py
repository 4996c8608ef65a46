"""Run directories: train or load, with a cache keyed by the config and the data.

A complete run directory holds ``config.yaml`` (config, package version, data fingerprint),
``model.pt`` (best-validation state dict, loaded with ``weights_only=True``), ``history.csv``,
``predictions.nc`` and ``metrics.json``; ``metrics.json`` is written last, so a directory without
it (an interrupted run) is trained again. Every file is written to a temporary name first.
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import torch
import xarray as xr
import yaml

from msgl_core import __version__
from msgl_core.config import RunConfig
from msgl_core.data.build import MultiscaleData, load_dataset
from msgl_core.data.dataset import PreparedData, prepare
from msgl_core.evaluate.predict import netcdf_encoding, predict_record
from msgl_core.evaluate.report import evaluate
from msgl_core.registry import Variant, get_variant
from msgl_core.train.loop import Callback, fit
from msgl_core.train.runtime import resolve_device, set_threads

RUNS_DIR_ENV = "MSGL_RUNS_DIR"
CONFIG, CHECKPOINT, HISTORY, PREDICTIONS, METRICS = (
    "config.yaml", "model.pt", "history.csv", "predictions.nc", "metrics.json")


@dataclass(frozen=True)
class Run:
    """A complete run: its folder, config, data fingerprint and metrics."""

    path: Path
    config: RunConfig
    data_fingerprint: str
    metrics: dict

    @property
    def test_rmse(self) -> float:
        """Overall fine-scale test RMSE, °C."""
        return float(self.metrics["fine"]["overall"]["rmse"])

    def history(self) -> pd.DataFrame:
        """Per-epoch training history."""
        return pd.read_csv(self.path / HISTORY)

    def predictions(self) -> xr.Dataset:
        """Predicted and observed daily fine temperature, see :func:`predict_record`."""
        return xr.open_dataset(self.path / PREDICTIONS)


def runs_root(path: str | Path | None = None) -> Path:
    """Folder of cached runs: ``path``, else ``$MSGL_RUNS_DIR``, else ``runs/`` here."""
    return Path(path or os.environ.get(RUNS_DIR_ENV) or "runs")


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
    """A complete run from its folder. Raises FileNotFoundError if the run is not complete."""
    path = Path(path)
    if not is_complete(path):
        raise FileNotFoundError(f"{path} is not a complete run (no {METRICS}); train it first")
    values = yaml.safe_load((path / CONFIG).read_text())
    fingerprint = values.pop("data_fingerprint", "")
    values.pop("msgl_version", None)
    return Run(path, RunConfig.from_dict(values), fingerprint, json.loads((path / METRICS).read_text()))


@dataclass(frozen=True)
class RunListing:
    """The run cache: complete runs (newest first) and the folders that could not be read."""

    runs: list[Run]
    unreadable: list[str]


def list_runs(root: str | Path | None = None) -> RunListing:
    """Complete runs under ``root`` (see :func:`runs_root`), newest first.

    A run whose files cannot be read (bad YAML, unknown config keys, ...) is listed in
    ``unreadable`` as ``"folder: reason"`` instead of failing the whole listing.
    """
    folder = runs_root(root)
    runs, unreadable = [], []
    for metrics in sorted(folder.glob(f"*/{METRICS}")) if folder.is_dir() else []:
        try:
            runs.append(load_run(metrics.parent))
        except (OSError, ValueError, TypeError, yaml.YAMLError, json.JSONDecodeError) as error:
            unreadable.append(f"{metrics.parent.name}: {error}")
    runs.sort(key=lambda r: (r.path / METRICS).stat().st_mtime, reverse=True)
    return RunListing(runs, unreadable)


def train_or_load(cfg: RunConfig, data: MultiscaleData | None = None, runs_dir: str | Path | None = None,
                  run_dir: str | Path | None = None, callback: Callback | None = None,
                  progress: bool = True) -> Run:
    """Load the run of ``cfg`` if it exists, else train, predict, evaluate and save it.

    Args:
        cfg: the run's config.
        data: the processed dataset (default: :func:`load_dataset` with default locations).
        runs_dir: cache folder (see :func:`runs_root`); run_dir: explicit folder for this run.
        callback: called after every epoch; returning False cancels (the run is not saved as complete).

    Raises ValueError for an unknown variant or basin, or when ``run_dir`` holds a different run;
    RuntimeError if training was cancelled.
    """
    variant = get_variant(cfg.variant)
    data = data or load_dataset()
    fingerprint = data.path.name
    path = Path(run_dir) if run_dir else run_path(cfg, fingerprint, runs_dir)
    if is_complete(path):
        existing = load_run(path)
        if existing.config.key(existing.data_fingerprint) != cfg.key(fingerprint):
            raise ValueError(f"{path} holds a different run (config or data differ); choose another --run-dir")
        return existing
    path.mkdir(parents=True, exist_ok=True)
    set_threads(cfg.threads)
    device = resolve_device(cfg.device)
    _write_text(path / CONFIG, yaml.safe_dump({**cfg.to_dict(), "msgl_version": __version__,
                                               "data_fingerprint": fingerprint}, sort_keys=False))
    prepared = prepare(data, cfg)
    start = time.perf_counter()
    result = fit(cfg, prepared, variant, device, callback, path / CHECKPOINT, progress)
    if result.cancelled:
        raise RuntimeError(f"training cancelled after epoch {result.history[-1].epoch}; nothing was saved as complete")
    history = pd.DataFrame([vars(r) for r in result.history])
    _write_text(path / HISTORY, history.to_csv(index=False))
    model = variant.build(prepared, cfg)
    model.load_state_dict(result.state_dict)
    predictions = predict_record(model.to(device), variant, prepared, cfg.window, device)
    _write_netcdf(predictions, path / PREDICTIONS)
    metrics = evaluate(predictions, cfg, data.coarse["water_temp_obs"])
    metrics["training"] = {"best_epoch": result.best_epoch, "epochs_run": len(result.history),
                           "seconds": round(time.perf_counter() - start, 1), "device": str(device)}
    _write_text(path / METRICS, json.dumps(_finite(metrics), indent=2))
    return load_run(path)


def load_model(run: Run, data: MultiscaleData) -> tuple[Variant, torch.nn.Module, PreparedData]:
    """Rebuild a run's model with its best weights. Raises ValueError if the checkpoint does not fit."""
    variant = get_variant(run.config.variant)
    prepared = prepare(data, run.config)
    model = variant.build(prepared, run.config)
    state = torch.load(run.path / CHECKPOINT, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        raise ValueError(f"{run.path / CHECKPOINT} does not match the run's config "
                         f"(variant {run.config.variant}, basin {run.config.basin}): {error}") from error
    return variant, model, prepared


def write_predictions(run: Run, data: MultiscaleData, out: str | Path, device: str = "auto") -> Path:
    """Predict the whole record for every reach of the run's domain and write NetCDF to ``out``."""
    variant, model, prepared = load_model(run, data)
    target = resolve_device(device)
    predictions = predict_record(model.to(target), variant, prepared, run.config.window, target)
    predictions.attrs = {"title": f"msgl predictions: {run.path.name}", "variant": run.config.variant,
                         "basin": run.config.basin, "sparsity": run.config.sparsity, "msgl_version": __version__}
    out = Path(out)
    _write_netcdf(predictions, out)
    return out


def _write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def _write_netcdf(ds: xr.Dataset, path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    ds.to_netcdf(tmp, encoding=netcdf_encoding(ds))
    os.replace(tmp, path)


def _finite(value: object) -> object:
    """``value`` with non-finite floats replaced by None (JSON has no NaN)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
