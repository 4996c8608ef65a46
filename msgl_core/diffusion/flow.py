"""The three stages of ``ot_diffusion`` on a prepared domain, as computations (no files; the run folder is
:mod:`msgl_core.ensemble_runs`). After Wan et al., "Debias Coarsely, Sample Conditionally", NeurIPS 2023,
arXiv 2305.15618, adapted as docs/probabilistic.md §6 describes:

1. :func:`debias_coarse`: fit ``debias.method`` of the coarse source onto coarse observations of the fit period
   (validation in ``model`` mode, training in ``simulation`` mode) and apply it to the whole record;
2. :func:`train_prior`: pretrain the graph denoiser on the base run's within-segment anomalies of training days
   (every reach weighted 1), then fine-tune on kept training observations (``r_obs = x_obs − y'_parent``, weight
   1) anchored to the base anomalies elsewhere (weight λ_u); Adam, warm-up and cosine decay in pretraining, a
   constant rate in fine-tuning, an exponential moving average (EMA) of the weights for sampling;
3. :func:`sample_days`: conditional members ``R y'_m + σ_r (r̄ + γ (r_m − r̄))`` with ``C'r_m = 0`` exactly, in
   chunks of days; :func:`calibrate` fits σ_c (coarse noise per season) and γ (spread inflation) on the last
   validation days.
"""

from __future__ import annotations

import functools
import math
import time as clock
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
import xarray as xr
from torch import Tensor
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from msgl_core.config import OTDiffusionConfig, RunConfig
from msgl_core.data.dataset import PreparedData
from msgl_core.data.splits import period_mask
from msgl_core.debias.base import Debiaser, season
from msgl_core.debias.options import fit_debiaser
from msgl_core.debias.scope import FitScope
from msgl_core.diffusion.conditional import assemble, calibrate_inflation, coarse_noise_std, sample_residuals
from msgl_core.diffusion.fields import Conditioning, ResidualDomain, coarsen
from msgl_core.diffusion.schedule import VPSchedule
from msgl_core.diffusion.training import DenoiserBatch, denoiser_step
from msgl_core.dims import SEGMENT, TIME
from msgl_core.models.graph_denoiser import GraphDenoiser

#: Reach-nodes per sampling forward pass (days × members × N_f). On CPU 2·10⁵ (the spec says ≤ 10⁶, but passes of
#: 10⁶ nodes cost twice as much per node, measured on Rancocas: 15 µs against 6–7 µs per reach-evaluation).
NODE_BUDGET = {"cpu": 200_000, "cuda": 20_000_000}
#: Warm-up steps of pretraining (at most a tenth of all steps) and the final fraction of the cosine decay.
WARMUP_STEPS, FINAL_LR_FRACTION = 200, 0.01


def coarse_source(cfg: RunConfig, prepared: PreparedData, domain: ResidualDomain, base_fine: np.ndarray) -> np.ndarray:
    """(time, N_c) °C coarse source: ``C'`` of the base run's fine prediction (``model``) or PRMS-SNTemp
    (``simulation``). Shapes: base_fine (time, N_f) °C."""
    if cfg.ot_diffusion.coarse_source == "simulation":
        return prepared.sim_coarse
    return coarsen(domain.operator, base_fine)


def debias_coarse(cfg: RunConfig, prepared: PreparedData, source: np.ndarray) -> tuple[Debiaser, np.ndarray]:
    """Fit Stage 1 and debias the whole record.

    Shapes: source (time, N_c) °C (NaN kept) → the map and (time, N_c) debiased °C.
    Raises ValueError from the leakage guards (e.g. a fit period that overlaps a test period) or the fit.
    """
    options = cfg.ot_diffusion.debias
    fit_periods = cfg.val_periods if cfg.ot_diffusion.coarse_source == "model" else cfg.train_periods
    coords = {TIME: prepared.time, SEGMENT: prepared.segment_ids}
    inside = period_mask(prepared.time, fit_periods)
    target = np.where(inside[:, None], prepared.y_coarse, np.nan)
    static = xr.DataArray(prepared.x_static_coarse, dims=(SEGMENT, "feature"), coords={SEGMENT: prepared.segment_ids})
    scope = FitScope(tuple(fit_periods), tuple(cfg.test_periods), cfg.holdout_segments + cfg.buffer_segments)
    source_da = xr.DataArray(source, dims=(TIME, SEGMENT), coords=coords)
    debiaser = fit_debiaser(options, source_da, xr.DataArray(target, dims=(TIME, SEGMENT), coords=coords), scope,
                            static=static, seed=cfg.seed)
    return debiaser, debiaser.transform(source_da).values


@dataclass(frozen=True)
class PriorEpoch:
    """One pass of prior training: stage (``pretrain`` or ``finetune``), epoch, mean loss, seconds."""

    stage: str
    epoch: int
    loss: float
    seconds: float


def build_denoiser(options: OTDiffusionConfig, domain: ResidualDomain, in_cond: int) -> GraphDenoiser:
    """The graph denoiser of ``options`` on ``domain`` (on CPU)."""
    op = domain.operator
    return GraphDenoiser(in_cond, domain.downstream_edges, op.parent, op.weights, op.n_segments,
                         hidden=options.hidden, blocks=options.blocks, segment_pool=options.segment_pool)


def train_prior(cfg: RunConfig, network: GraphDenoiser, cond: Conditioning, residual_base: np.ndarray,
                residual_obs: np.ndarray, train_days: np.ndarray, device: torch.device, generator: torch.Generator,
                on_epoch: Callable[[PriorEpoch], bool | None] | None = None) -> tuple[dict[str, Tensor], list[PriorEpoch]]:
    """Pretrain, then fine-tune, the denoiser; returns the EMA weights (on CPU) and the epoch history.

    Shapes: residual_base (time, N_f) standardised base anomalies; residual_obs (time, N_f) standardised
    observed residuals (NaN where no kept observation); train_days (n,) record positions of training days.
    ``on_epoch`` is called after every epoch; returning False cancels.

    Raises RuntimeError when cancelled; ValueError from the loss for a non-finite weighted target.
    """
    options, schedule = cfg.ot_diffusion, VPSchedule()
    network = network.to(device)
    ema = AveragedModel(network, multi_avg_fn=get_ema_multi_avg_fn(options.ema))
    history: list[PriorEpoch] = []
    observed_days = train_days[np.isfinite(residual_obs[train_days]).any(axis=1)]
    stages = [("pretrain", train_days, options.pretrain_epochs, options.learning_rate),
              ("finetune", observed_days, options.finetune_epochs if len(observed_days) else 0,
               options.finetune_learning_rate)]
    for stage, days, epochs, lr in stages:
        optimizer = torch.optim.Adam(network.parameters(), lr=lr)
        per_epoch = math.ceil(len(days) / options.batch_days)
        total, warmup = epochs * per_epoch, min(WARMUP_STEPS, max(1, epochs * per_epoch // 10))
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, functools.partial(_pretrain_rate, warmup=warmup,
                                                                                    total=total)) \
            if stage == "pretrain" else None
        for epoch in range(1, epochs + 1):
            start, losses = clock.perf_counter(), []
            order = days[torch.randperm(len(days), generator=generator).numpy()]
            for k in range(0, len(order), options.batch_days):
                chunk = order[k:k + options.batch_days]
                batch = _batch(stage, chunk, cond, residual_base, residual_obs, options.unobserved_weight)
                losses.append(denoiser_step(network, schedule, batch.to(device), optimizer, generator))
                ema.update_parameters(network)
                if scheduler is not None:
                    scheduler.step()
            history.append(PriorEpoch(stage, epoch, float(np.mean(losses)), round(clock.perf_counter() - start, 2)))
            if on_epoch is not None and on_epoch(history[-1]) is False:
                raise RuntimeError(f"training cancelled in {stage} epoch {epoch}; nothing was saved as complete")
    state = {k: v.detach().to("cpu", copy=True) for k, v in ema.module.state_dict().items()}
    return state, history


def _pretrain_rate(step: int, warmup: int, total: int) -> float:
    """Multiplier of the pretraining rate: linear warm-up, then cosine decay to :data:`FINAL_LR_FRACTION`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return FINAL_LR_FRACTION + (1 - FINAL_LR_FRACTION) * 0.5 * (1 + math.cos(math.pi * progress))


def _batch(stage: str, days: np.ndarray, cond: Conditioning, residual_base: np.ndarray, residual_obs: np.ndarray,
           unobserved_weight: float) -> DenoiserBatch:
    """Targets and weights of one step: base anomalies (weight 1) in pretraining; observed residuals (weight 1)
    beside base anomalies (weight λ_u) in fine-tuning."""
    base = residual_base[days]
    if stage == "pretrain":
        target, weight = base, np.ones_like(base)
    else:
        observed = np.isfinite(residual_obs[days])
        target = np.where(observed, residual_obs[days], base)
        weight = np.where(observed, 1.0, unobserved_weight)
    return DenoiserBatch(torch.as_tensor(target, dtype=torch.float32), torch.as_tensor(weight, dtype=torch.float32),
                         cond(days))


@dataclass(frozen=True)
class Calibration:
    """The post-hoc layers fitted on validation days (docs/probabilistic.md §4).

    Attributes:
        sigma_r: global scale of the within-segment residual, °C (std of base anomalies on training days).
        sigma_c: (4,) coarse-noise std per season (DJF, MAM, JJA, SON), °C; zeros without coarse noise.
        inflation: spread inflation γ of the residual.
        days: number of validation days it was fitted on.
    """

    sigma_r: float
    sigma_c: tuple[float, ...]
    inflation: float
    days: int


def seasonal_noise_members(values: np.ndarray, time: pd.DatetimeIndex, sigma: tuple[float, ...], members: int,
                           rng: np.random.Generator) -> np.ndarray:
    """(M, D, N) members ``values + η``, η ~ N(0, σ(season)²) independent per member and node-day (°C): the coarse
    noise of y' (N = N_c) and the Gaussian-noise baseline around the base run (N = N_f).

    Shapes: values (D, N) °C; time (D,); sigma (4,) °C per season (DJF, MAM, JJA, SON)."""
    std = np.asarray(sigma)[season(time)][None, :, None]
    return values[None] + rng.standard_normal((members,) + values.shape) * std


def coarse_members(debiased: np.ndarray, time: pd.DatetimeIndex, sigma_c: tuple[float, ...], members: int,
                   rng: np.random.Generator) -> Tensor:
    """(M, D, N_c) float32 member coarse values ``y' + η`` (:func:`seasonal_noise_members`, °C)."""
    return torch.as_tensor(seasonal_noise_members(debiased, time, sigma_c, members, rng), dtype=torch.float32)


def sample_days(cfg: RunConfig, network: GraphDenoiser, cond: Conditioning, days: np.ndarray,
                device: torch.device) -> Tensor:
    """(M, D, N_f) standardised residual members with C'r = 0 for record positions ``days``, in chunks of at most
    :data:`NODE_BUDGET` reach-nodes per pass; with ``common_noise`` every chunk restarts the same seeded
    generator, so a member starts from the same noise on every day."""
    options = cfg.ot_diffusion
    network = network.to(device).eval()
    operator = cond.domain.operator
    per_chunk = max(1, NODE_BUDGET[device.type] // (options.members * operator.n_reaches))
    generator = torch.Generator().manual_seed(cfg.seed + 1)
    parts = []
    for k in range(0, len(days), per_chunk):
        if options.common_noise:
            generator.manual_seed(cfg.seed + 1)
        c = cond(days[k:k + per_chunk]).to(device)
        parts.append(sample_residuals(network, VPSchedule(), operator, c, options.members, options.steps, generator,
                                      options.sampler, options.common_noise).cpu())
    return torch.cat(parts, dim=1)


def calibrate(cfg: RunConfig, prepared: PreparedData, domain: ResidualDomain, debiased: np.ndarray, residuals: Tensor,
              days: np.ndarray, sigma_r: float, rng: np.random.Generator, inflate: bool = True) -> Calibration:
    """σ_c per season (validation RMSE of debiased against observed coarse temperature) and γ (the lowest fair
    CRPS against kept validation fine observations on ``days``; 1 unless ``inflate`` and
    ``ot_diffusion.spread_inflation``).

    Shapes: debiased (time, N_c) °C over the record; residuals (M, D, N_f) standardised members of ``days`` (D,).
    Raises ValueError if no validation segment-day has both values (with coarse noise).
    """
    options = cfg.ot_diffusion
    val = prepared.split_days["val"]
    sigma_c = (tuple(float(s) for s in coarse_noise_std(debiased[val], prepared.y_coarse[val], prepared.time[val]))
               if options.coarse_noise else (0.0, 0.0, 0.0, 0.0))
    inflation = 1.0
    if options.spread_inflation and inflate:
        coarse = coarse_members(debiased[days], prepared.time[days], sigma_c, options.members, rng)
        observed = torch.as_tensor(prepared.y_fine[days], dtype=torch.float32)
        inflation = calibrate_inflation(domain.operator, coarse, residuals, sigma_r, observed)
    return Calibration(sigma_r, sigma_c, inflation, len(days))


def members_celsius(domain: ResidualDomain, debiased: np.ndarray, residuals: Tensor, days: np.ndarray,
                    time: pd.DatetimeIndex, calibration: Calibration, rng: np.random.Generator) -> Tensor:
    """(M, D, N_f) °C members of ``days``: coarse noise drawn with ``rng``, then :func:`assemble` with γ.

    Shapes: debiased (time, N_c) °C over the record; residuals (M, D, N_f) standardised."""
    coarse = coarse_members(debiased[days], time[days], calibration.sigma_c, residuals.shape[0], rng)
    return assemble(domain.operator, coarse, residuals, calibration.sigma_r, calibration.inflation)


def gaussian_calibration(prepared: PreparedData, base_fine: np.ndarray, days: int) -> Calibration:
    """The Gaussian-noise baseline's σ per season: the RMSE of the base run against kept validation fine
    observations (all validation days). Shapes: base_fine (time, N_f) °C.

    Raises ValueError if no validation reach-day has both values."""
    val = prepared.split_days["val"]
    sigma = coarse_noise_std(base_fine[val], prepared.y_fine[val], prepared.time[val])
    return Calibration(1.0, tuple(float(s) for s in sigma), 1.0, days)
