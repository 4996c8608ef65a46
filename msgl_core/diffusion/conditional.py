"""Conditional ensembles of fine temperature that satisfy the coarsening constraint exactly (Stage 3).

A member is ``x_m = R y'_m + σ_r (r̄ + γ (r_m − r̄))`` (°C): the debiased coarse value of its segment
broadcast to the reaches (``y'_m = y'`` or ``y' + η_m`` with coarse noise) plus a sampled within-segment
residual ``r_m`` with ``C'r_m = 0`` (:func:`sample_residuals`), standardised by one global scalar σ_r, whose
spread about the ensemble-mean residual r̄ is inflated by γ. Every linear step keeps ``C'r = 0``, so
``C'x_m = y'_m`` holds to float precision for every member, whatever the prior learnt. This is the
"debias coarsely, sample conditionally" recipe of Wan et al., NeurIPS 2023, arXiv 2305.15618, with the
residual-around-the-coarse-level design of docs/probabilistic.md §4; γ and σ_c are post-hoc calibration
layers fitted on the validation period (not part of the paper).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from msgl_core.debias.base import season
from msgl_core.diffusion.sampler import euler_maruyama_sample, heun_sample, projected
from msgl_core.diffusion.schedule import Network, VPSchedule, exponential_grid, karras_grid
from msgl_core.evaluate.probabilistic import crps_fair
from msgl_core.graph.coarsening import CoarseningOperator, Metric

SAMPLERS = ("heun", "euler_maruyama")
#: Spread-inflation factors tried by :func:`calibrate_inflation` (the spec's range [0.5, 3]).
INFLATION_GRID = tuple(float(g) for g in np.round(np.arange(0.5, 3.01, 0.1), 2))


def sample_residuals(network: Network, schedule: VPSchedule, operator: CoarseningOperator, cond: Tensor,
                     members: int, steps: int, generator: torch.Generator, sampler: str = "heun",
                     common_noise: bool = True, metric: Metric = "euclidean") -> Tensor:
    """Standardised residual members with C'r = 0, for D days at once.

    Args:
        network: the raw denoiser network F_θ (see :meth:`VPSchedule.denoise`), in eval mode.
        cond: (D, N_f, F_c) conditioning features of each day.
        members: M >= 1; steps: sampler steps N >= 1 (Heun: 2N network evaluations per member-day).
        generator: seeds the initial noise (and the Brownian increments of ``euler_maruyama``).
        sampler: ``heun`` (Karras grid) or ``euler_maruyama`` (exponential grid).
        common_noise: member m starts from the same noise on every day (temporally coherent-ish members;
            Heun only, the SDE's increments stay independent).

    Returns: (M, D, N_f) float32, standardised by σ_r.
    Raises ValueError for an unknown sampler or members/steps < 1.
    """
    if sampler not in SAMPLERS:
        raise ValueError(f"sampler must be one of {', '.join(SAMPLERS)}, got {sampler!r}")
    if members < 1 or steps < 1:
        raise ValueError(f"members and steps must be >= 1, got {members}, {steps}")
    days, n_reaches = cond.shape[:2]
    if common_noise:
        noise = torch.randn(members, 1, n_reaches, generator=generator).expand(members, days, n_reaches)
    else:
        noise = torch.randn(members, days, n_reaches, generator=generator)
    noise = noise.reshape(members * days, n_reaches).to(cond.device)
    batch_cond = cond.repeat(members, 1, 1)
    guided = projected(lambda x_hat, sigma: schedule.denoise(network, x_hat, sigma, batch_cond),
                       operator.to(cond.device), metric)
    if sampler == "heun":
        r = heun_sample(guided, noise, karras_grid(schedule.sigma_max, schedule.sigma_min, steps), schedule.sigma_data)
    else:
        grid = exponential_grid(schedule.sigma_max, schedule.sigma_min, steps)
        r = euler_maruyama_sample(guided, noise, grid, generator, schedule.sigma_data)
    return r.reshape(members, days, n_reaches)


def assemble(operator: CoarseningOperator, coarse: Tensor, residuals: Tensor, sigma_r: float,
             inflation: float = 1.0) -> Tensor:
    """Fine members in °C: ``R y'_m + σ_r (r̄ + γ (r_m − r̄))``.

    Shapes: coarse (D, N_c) or (M, D, N_c) debiased °C (per member with coarse noise); residuals (M, D, N_f)
    standardised → (M, D, N_f) °C, with ``C'x_m = y'_m``.

    Raises ValueError for a non-positive ``sigma_r`` or ``inflation``.
    """
    if sigma_r <= 0 or inflation <= 0:
        raise ValueError(f"sigma_r and inflation must be > 0, got {sigma_r}, {inflation}")
    mean = residuals.mean(dim=0, keepdim=True)
    return operator.broadcast(coarse) + sigma_r * (mean + inflation * (residuals - mean))


def coarse_noise_std(debiased: np.ndarray, observed: np.ndarray, time: pd.DatetimeIndex) -> np.ndarray:
    """σ_c per season (DJF, MAM, JJA, SON): the RMSE of debiased against observed coarse temperature, °C.

    Shapes: debiased, observed (time, segment) °C on validation days; time (time,). A season without a pair
    takes the pooled RMSE. Raises ValueError if there is no pair at all.
    """
    both = np.isfinite(debiased) & np.isfinite(observed)
    if not both.any():
        raise ValueError("no validation segment-day has both a debiased value and an observation")
    error = np.where(both, debiased - observed, np.nan)
    pooled = float(np.sqrt(np.nanmean(error**2)))
    seasons = season(time)
    return np.array([float(np.sqrt(np.nanmean(error[seasons == s] ** 2))) if both[seasons == s].any() else pooled
                     for s in range(4)])


def calibrate_inflation(operator: CoarseningOperator, coarse: Tensor, residuals: Tensor, sigma_r: float,
                        observed: Tensor) -> float:
    """The γ of :data:`INFLATION_GRID` with the lowest fair CRPS against validation observations.

    Shapes: coarse, residuals as :func:`assemble`; observed (D, N_f) °C (NaN where unobserved).
    Returns 1.0 when there is no observation or a single member. Raises ValueError as :func:`assemble`.
    """
    if residuals.shape[0] < 2 or not bool(torch.isfinite(observed).any()):
        return 1.0
    obs = observed.cpu().numpy()

    def crps(gamma: float) -> float:
        members = assemble(operator, coarse, residuals, sigma_r, gamma).cpu().numpy()
        return crps_fair(np.moveaxis(members, 0, -1), obs)

    return min(INFLATION_GRID, key=crps)
