"""Conditional sampling of the within-segment residual with the hard projection (Stage 3).

Wan et al., NeurIPS 2023, arXiv 2305.15618, condition an unconditional diffusion prior on ``C'x = y'`` a
posteriori by post-processing the denoiser. For the residual ``r`` (``x = R y' + r``) the constraint is
homogeneous, ``C'r = 0``, and the guided denoiser is ``D̃ = P₀(D)``, the closed-form projection of
:meth:`~msgl_core.graph.coarsening.CoarseningOperator.project_residual`, applied to the *denoised estimate*
at every step (the noisy state legitimately violates the constraint). The last step returns ``D̃``, so
every member satisfies ``C'r = 0`` to float precision. The gradient-guidance term of the paper is not
built (α = 0).

Samplers work in x̂ = r₀ + σε coordinates on a decreasing grid σ_0 > … > σ_N:

* :func:`heun_sample`: the probability-flow ODE dx̂/dσ = (x̂ − D̃)/σ with Heun's method (Karras et al.,
  NeurIPS 2022, Alg. 1); 2N network evaluations; members differ by their initial noise only.
* :func:`euler_maruyama_sample`: the reverse SDE dx̂ = −(2/σ)(D̃ − x̂) dσ + sqrt(2σ) dW (swirl-dynamics
  ``SdeSampler``); calibrated spread needs ~256 steps.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from msgl_core.graph.coarsening import CoarseningOperator, Metric

#: ``(x_hat (B, N_f), sigma (B,)) -> (B, N_f)``: a denoiser with its conditioning bound.
Denoiser = Callable[[Tensor, Tensor], Tensor]


def projected(denoise: Denoiser, operator: CoarseningOperator, metric: Metric = "euclidean") -> Denoiser:
    """The guided denoiser D̃ = P₀ ∘ D (the residual's weighted segment means removed)."""
    return lambda x_hat, sigma: operator.project_residual(denoise(x_hat, sigma), metric)


def _check(noise: Tensor, sigmas: Tensor) -> None:
    if noise.ndim != 2:
        raise ValueError(f"noise must be (batch, reaches), got shape {tuple(noise.shape)}")
    if sigmas.ndim != 1 or len(sigmas) < 2 or not bool((sigmas[1:] < sigmas[:-1]).all()) or sigmas[-1] <= 0:
        raise ValueError("sigmas must be a decreasing grid of at least 2 positive noise levels")


@torch.no_grad()
def heun_sample(denoise: Denoiser, noise: Tensor, sigmas: Tensor, sigma_data: float = 1.0) -> Tensor:
    """Integrate the probability-flow ODE from x̂_0 = sqrt(σ_0² + σ_d²)·noise down the grid, then denoise.

    Shapes: noise (B, N_f) standard normal (the caller chooses it, e.g. shared by a member across days);
    sigmas (steps + 1,) decreasing → (B, N_f) residual samples in standardised units.

    Raises ValueError for a bad ``noise`` shape or a grid that is not decreasing and positive.
    """
    _check(noise, sigmas)
    x = noise * math.sqrt(float(sigmas[0]) ** 2 + sigma_data**2)
    steps = len(sigmas) - 1
    for i in range(steps):
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        slope = (x - denoise(x, x.new_full((len(x),), s))) / s
        x_next = x + (s_next - s) * slope
        if i < steps - 1:
            slope_next = (x_next - denoise(x_next, x.new_full((len(x),), s_next))) / s_next
            x_next = x + (s_next - s) * 0.5 * (slope + slope_next)
        x = x_next
    return denoise(x, x.new_full((len(x),), float(sigmas[-1])))


@torch.no_grad()
def euler_maruyama_sample(denoise: Denoiser, noise: Tensor, sigmas: Tensor, generator: torch.Generator | None = None,
                          sigma_data: float = 1.0) -> Tensor:
    """Integrate the reverse SDE with Euler–Maruyama (Brownian increments drawn with ``generator``), then denoise.

    Shapes as :func:`heun_sample`. Raises ValueError as :func:`heun_sample`.
    """
    _check(noise, sigmas)
    x = noise * math.sqrt(float(sigmas[0]) ** 2 + sigma_data**2)
    for i in range(len(sigmas) - 1):
        s, s_next = float(sigmas[i]), float(sigmas[i + 1])
        drift = denoise(x, x.new_full((len(x),), s)) - x
        z = torch.randn(x.shape, generator=generator, dtype=x.dtype).to(x.device)  # a CPU generator on any device
        x = x + (2.0 / s) * drift * (s - s_next) + math.sqrt(2.0 * s * (s - s_next)) * z
    return denoise(x, x.new_full((len(x),), float(sigmas[-1])))
