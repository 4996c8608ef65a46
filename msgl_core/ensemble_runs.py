"""Training a probabilistic ``ot_diffusion`` run on top of its cached deterministic base run.

:func:`msgl_core.runs.train_or_load` calls :func:`train_ensemble` for a variant with ``probabilistic=True``
while it holds the run folder's lock. The base run (``ot_diffusion.base_variant``, default ``msgl``) has the
same basin, split, sparsity, mask seed, seed and hold-out (:func:`base_config`); it is trained first when it
is not cached. Besides the files of every run (``config.yaml``, ``history.csv``, ``predictions.nc``,
``metrics.json``), the folder holds:

* ``debias.npz``: the Stage 1 map (plain arrays, :func:`~msgl_core.debias.options.save_debiaser`);
* ``denoiser.pt``: the EMA weights of the graph denoiser (load with ``weights_only=True``);
* ``calibration.json``: the base run, σ_r, σ_c per season, γ, the sampler and what the prior learned from;
* ``members.nc``: the (member, time, reach) ensemble on the sampled days (the last ``calibration_days`` of the
  validation periods and every test day).

``predictions.nc`` holds the ensemble summary of :func:`~msgl_core.evaluate.ensemble.summarise_members` on the
whole record (NaN on days that were not sampled), the base run's prediction (``base_prediction``) and the
observations, so every deterministic metric and view works on the ensemble mean. The dashboard never samples.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import xarray as xr

from msgl_core import netcdf
from msgl_core.config import OTDiffusionConfig, RunConfig
from msgl_core.data.build import MultiscaleData
from msgl_core.data.dataset import PreparedData
from msgl_core.data.splits import period_mask
from msgl_core.debias.options import save_debiaser
from msgl_core.diffusion.fields import Conditioning, ResidualDomain, coarsen, residual_domain, within_segment
from msgl_core.diffusion.flow import (
    Calibration,
    PriorEpoch,
    build_denoiser,
    calibrate,
    coarse_source,
    debias_coarse,
    gaussian_calibration,
    members_celsius,
    sample_days,
    seasonal_noise_members,
    train_prior,
)
from msgl_core.dims import PARENT_SEGMENT, REACH, SEGMENT, TIME
from msgl_core.evaluate.ensemble import MEMBER, evaluate_ensemble, summarise_members
from msgl_core.evaluate.predict import netcdf_encoding
from msgl_core.evaluate.record import RunMetrics
from msgl_core.evaluate.report import evaluate
from msgl_core.models.graph_denoiser import GraphDenoiser
from msgl_core.registry import get_variant
from msgl_core.runs import Run, write_atomic
from msgl_core.train.loop import save_state
from msgl_core.train.runtime import seed_everything

log = logging.getLogger(__name__)

DEBIAS, DENOISER, CALIBRATION, MEMBERS = "debias.npz", "denoiser.pt", "calibration.json", "members.nc"
#: The files a probabilistic run folder holds beside those of every run.
ENSEMBLE_FILES = (DEBIAS, DENOISER, CALIBRATION, MEMBERS)
#: The config fields a base run must share with its probabilistic run (everything that defines the data it saw).
SHARED_FIELDS = ("basin", "sparsity", "seed", "mask_seed", "holdout_segments", "buffer_segments", "reservoir_features",
                 "train_periods", "val_periods", "test_periods", "window")
#: Written next to every ensemble score: what the prior was learned from.
PRIOR_SOURCE = ("base-run fields: within-segment anomalies of the base run's fine predictions on training days (not "
                "observed complete fields), fine-tuned on kept fine observations of training days")
NO_PRIOR = "no diffusion prior"
#: Most members of a seed ensemble (``msgl_seeds``): each member is a trained base run.
MAX_SEED_MEMBERS = 10


def base_config(cfg: RunConfig) -> RunConfig:
    """The config of ``cfg``'s base run: the same config with ``variant = ot_diffusion.base_variant`` (the
    ``ot_diffusion`` block reset, as it does not define the base run)."""
    return dataclasses.replace(cfg, variant=cfg.ot_diffusion.base_variant, ot_diffusion=OTDiffusionConfig())


def setup_difference(cfg: RunConfig, other: RunConfig) -> str | None:
    """The first of :data:`SHARED_FIELDS` where two configs differ; None when their runs saw the same data (split,
    masks, seed, hold-out): a probabilistic run, its base run and its baselines are compared on those."""
    return next((name for name in SHARED_FIELDS if getattr(cfg, name) != getattr(other, name)), None)


def check_base(cfg: RunConfig, base: RunConfig) -> None:
    """Raise ValueError naming the first of :data:`SHARED_FIELDS` where the base run's config differs."""
    name = setup_difference(cfg, base)
    if name is not None:
        raise ValueError(f"the base run's {name} is {getattr(base, name)!r}, but this ot_diffusion run needs "
                         f"{getattr(cfg, name)!r}: base and ensemble must share split, masks, seed and hold-out")


def train_ensemble(cfg: RunConfig, data: MultiscaleData, prepared: PreparedData, path: Path, device: torch.device,
                   base_run: Callable[[RunConfig], Run],
                   on_epoch: Callable[[PriorEpoch], bool | None] | None = None) -> tuple[xr.Dataset, RunMetrics]:
    """Fit the three stages in run folder ``path`` and return the predictions and the metrics (without
    ``training``); the caller writes ``predictions.nc`` and ``metrics.json``.

    Args:
        base_run: train-or-load of a config, returning its :class:`~msgl_core.runs.Run`.
        on_epoch: called after every prior epoch; returning False cancels (RuntimeError).

    Raises ValueError if the base run does not match (naming the key) or from the debiasing guards;
    RuntimeError if cancelled.
    """
    options, kind = cfg.ot_diffusion, get_variant(cfg.variant).ensemble
    base = base_run(base_config(cfg))
    check_base(cfg, base.config)
    base_pred = base.predictions()
    base_fine = base_pred["prediction"].values.astype(np.float64)
    domain = residual_domain(prepared)
    val_days = np.flatnonzero(prepared.split_days["val"])[-options.calibration_days:]
    days = np.union1d(val_days, np.flatnonzero(period_mask(prepared.time, cfg.test_periods)))
    on_val = np.isin(days, val_days)
    rng = np.random.default_rng(cfg.seed)
    seconds: dict[str, float] = {}
    clock = time.perf_counter()

    if kind == "gaussian_noise":  # the base run plus seasonal Gaussian noise: no Stage 1 or 2
        debiased = coarsen(domain.operator, base_fine)  # not debiased: the base run's own coarse level
        calibration = gaussian_calibration(prepared, base_fine, len(val_days))
        members = seasonal_noise_members(base_fine[days], prepared.time[days], calibration.sigma_c, options.members,
                                         rng)
        seconds["sample"] = time.perf_counter() - clock
    elif kind == "seeds":  # the base runs of consecutive seeds: nothing fitted
        if options.members > MAX_SEED_MEMBERS:
            raise ValueError(f"{cfg.variant} trains (or loads) one {options.base_variant} run per member: ask for at "
                             f"most {MAX_SEED_MEMBERS} members (e.g. --members 3), not {options.members}")
        debiased = coarsen(domain.operator, base_fine)  # the seed-s base run's coarse level
        calibration = Calibration(0.0, (0.0, 0.0, 0.0, 0.0), 1.0, 0)
        runs = [base, *(base_run(dataclasses.replace(base_config(cfg), seed=cfg.seed + k))
                        for k in range(1, options.members))]
        members = np.stack([run.predictions()["prediction"].values[days].astype(np.float64) for run in runs])
        seconds["sample"] = time.perf_counter() - clock
    else:
        # Stage 1: debias the coarse source.
        debiaser, debiased = debias_coarse(cfg, prepared, coarse_source(cfg, prepared, domain, base_fine))
        write_atomic(path / DEBIAS, lambda tmp: save_debiaser(debiaser, tmp))
        seconds["debias"], clock = time.perf_counter() - clock, time.perf_counter()
        # Stage 2: the residual prior, standardised by one global scale (none for the broadcast baseline).
        train_days = np.flatnonzero(prepared.split_days["train"])
        anomaly = within_segment(domain.operator, base_fine)
        sigma_r = max(float(np.sqrt(np.mean(anomaly[train_days] ** 2))), 1e-6)
        if kind == "diffusion":
            cond = Conditioning(domain, prepared.target_scalers["fine"].apply(debiased), prepared.time,
                                options.conditioning)
            network = _trained_prior(cfg, domain, cond, anomaly / sigma_r,
                                     (prepared.y_fine - debiased[:, prepared.parent]) / sigma_r, train_days, device,
                                     path, on_epoch)
            seconds["prior"], clock = time.perf_counter() - clock, time.perf_counter()
            # Stage 3: sample the calibration days and the test periods, calibrate on the former.
            residuals = sample_days(cfg, network, cond, days, device)
        else:
            residuals = torch.zeros(options.members, len(days), domain.operator.n_reaches)
        calibration = calibrate(cfg, prepared, domain, debiased, residuals[:, on_val], days[on_val], sigma_r, rng,
                                inflate=kind == "diffusion")
        members = members_celsius(domain, debiased, residuals, days, prepared.time, calibration, rng).numpy()
        seconds["sample"] = time.perf_counter() - clock

    prior = PRIOR_SOURCE if kind == "diffusion" else NO_PRIOR
    sampled = base_pred.isel({TIME: days})
    members_da = xr.DataArray(members.astype(np.float32), dims=(MEMBER, TIME, REACH), coords={
        TIME: sampled[TIME].values, REACH: sampled[REACH].values, PARENT_SEGMENT: (REACH, sampled[PARENT_SEGMENT].values)},
        attrs={"units": "degC", "long_name": "ensemble member of daily mean water temperature"})
    coarse_da = xr.DataArray(debiased[days].astype(np.float32), dims=(TIME, SEGMENT),
                             coords={TIME: sampled[TIME].values, SEGMENT: prepared.segment_ids})
    attrs: dict[str, str | float | int] = {"debias_method": options.debias.method, "debias_eps": options.debias.eps,
             "coarse_source": options.coarse_source, "sampler": options.sampler, "steps": options.steps,
             "members": options.members, "spread_inflation": calibration.inflation,
             "sigma_r_degC": calibration.sigma_r, "ensemble": str(kind),
             "sigma_c_degC": ", ".join(f"{s:.3f}" for s in calibration.sigma_c), "common_noise": int(options.common_noise),
             "base_run": base.path.name, "prior_learned_from": prior,
             "sampled_days": "the last calibration_days of the validation periods and every test day"}
    summary = summarise_members(members_da, coarse_da, attrs).reindex({TIME: prepared.time},
                                                                      fill_value={"n_members": 0})
    summary["n_members"] = summary["n_members"].astype(np.int16)
    predictions = summary.assign(water_temp_obs=base_pred["water_temp_obs"], obs_used=base_pred["obs_used"],
                                 base_prediction=base_pred["prediction"].assign_attrs(
                                     long_name=f"{options.base_variant} (base run) predicted daily mean water temperature"))
    members_ds = members_da.to_dataset(name="members")
    write_atomic(path / MEMBERS, lambda tmp: netcdf.write(members_ds, tmp, netcdf_encoding(members_ds)))
    record = {"base_run": base.path.name, "base_key": base.config.key(base.data_fingerprint),
              **dataclasses.asdict(calibration), "members": options.members, "sampler": options.sampler,
              "steps": options.steps, "sampled_days": int(len(days)), "ensemble": kind,
              "seconds": {k: round(v, 1) for k, v in seconds.items()},
              "prior_learned_from": prior}
    write_atomic(path / CALIBRATION, lambda tmp: tmp.write_text(json.dumps(record, indent=2)))

    metrics = evaluate(predictions, cfg, data.coarse["water_temp_obs"])
    probabilistic = evaluate_ensemble(members_da, sampled["water_temp_obs"], cfg, sampled["prediction"])
    return predictions, dataclasses.replace(metrics, probabilistic=probabilistic)


def _trained_prior(cfg: RunConfig, domain: ResidualDomain, cond: Conditioning, residual_base: np.ndarray,
                   residual_obs: np.ndarray, train_days: np.ndarray, device: torch.device, path: Path,
                   on_epoch: Callable[[PriorEpoch], bool | None] | None) -> GraphDenoiser:
    """Stage 2: build (seeded), train and save the graph denoiser; returns it with its EMA weights."""
    seed_everything(cfg.seed)
    network = build_denoiser(cfg.ot_diffusion, domain, cond.width)

    def report(epoch: PriorEpoch) -> bool | None:
        log.info("%s epoch %d: loss %.4f (%.1f s)", epoch.stage, epoch.epoch, epoch.loss, epoch.seconds)
        return on_epoch(epoch) if on_epoch is not None else None

    state, _ = train_prior(cfg, network, cond, residual_base, residual_obs, train_days, device,
                           torch.Generator().manual_seed(cfg.seed), report)
    save_state(state, path / DENOISER)
    network.load_state_dict(state)
    return network


def prior_learned_from(run_path: str | Path) -> str:
    """What the ensemble of a probabilistic run folder was learned from (``calibration.json``), as written there.

    Raises ValueError naming the file if it is missing or unreadable.
    """
    file = Path(run_path) / CALIBRATION
    try:
        return str(json.loads(file.read_text())["prior_learned_from"])
    except (OSError, ValueError, KeyError) as error:
        raise ValueError(f"{file}: cannot be read ({type(error).__name__}: {error}); train the run again") from None


def read_members(run_path: str | Path) -> xr.DataArray:
    """The (member, time, reach) ensemble of a probabilistic run folder, °C.

    Raises ValueError naming the file if it is missing or unreadable.
    """
    file = Path(run_path) / MEMBERS
    if not file.is_file():
        raise ValueError(f"{file} is missing: {run_path} is not a complete probabilistic run; train it again")
    return netcdf.read(file)["members"]
