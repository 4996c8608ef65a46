"""Noise schedule, preconditioning and noise-level sampling of the residual diffusion model.

Following the diffusion library of Wan et al., NeurIPS 2023, arXiv 2305.15618 (google-research
swirl-dynamics, ``lib/diffusion``): a variance-preserving SDE with a linear β schedule (Song et al., ICLR
2021), written in the rescaled coordinates x̂ = x/s(t) where x̂ = r₀ + σε for every noise level, and the
denoiser preconditioning of Karras et al., "Elucidating the Design Space of Diffusion-Based Generative
Models", NeurIPS 2022 (arXiv 2206.00364):

    σ(t) = sqrt(exp(½(β_max − β_min) t² + β_min t) − 1),   s(t) = (1 + σ(t)²/σ_d²)^(−1/2)
    D(x̂, σ; c) = c_skip x̂ + c_out F(c_in x̂, c_noise, c),
    c_skip = σ_d²/(σ² + σ_d²), c_out = σσ_d/sqrt(σ² + σ_d²), c_in = 1/sqrt(σ² + σ_d²), c_noise = ¼ ln σ

All tensors are float; σ is dimensionless (the residual is standardised by one global scalar, σ_d = 1).

Example:
    >>> schedule = VPSchedule()
    >>> round(schedule.sigma_max, 1)
    152.2
    >>> karras_grid(152.2, 1e-3, 4).shape
    torch.Size([5])
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

#: ``(x_in (B, N_f), c_noise (B,), cond (B, N_f, F_c)) -> (B, N_f)``: the raw network F_θ.
Network = Callable[[Tensor, Tensor, Tensor], Tensor]


@dataclass(frozen=True)
class VPSchedule:
    """Variance-preserving linear-β schedule on t ∈ (0, 1].

    Attributes:
        beta_min, beta_max: the linear β(t) = β_min + (β_max − β_min) t; defaults 0.1 and 20 (σ(1) ≈ 152).
        sigma_min: the smallest noise level sampled and integrated to.
        sigma_data: σ_d, the std of the standardised residual (1).

    Raises ValueError unless 0 < beta_min < beta_max, 0 < sigma_min < σ(1) and sigma_data > 0.
    """

    beta_min: float = 0.1
    beta_max: float = 20.0
    sigma_min: float = 1e-3
    sigma_data: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.beta_min < self.beta_max:
            raise ValueError(f"need 0 < beta_min < beta_max, got {self.beta_min}, {self.beta_max}")
        if self.sigma_data <= 0:
            raise ValueError(f"sigma_data must be > 0, got {self.sigma_data}")
        if not 0 < self.sigma_min < self.sigma_max:
            raise ValueError(f"sigma_min must lie in (0, {self.sigma_max:.1f}), got {self.sigma_min}")

    def sigma(self, t: Tensor) -> Tensor:
        """σ(t), increasing in t. Shapes: any → same."""
        return torch.sqrt(torch.expm1(0.5 * (self.beta_max - self.beta_min) * t**2 + self.beta_min * t))

    def t_of_sigma(self, sigma: Tensor) -> Tensor:
        """The inverse of :meth:`sigma`. Shapes: any → same."""
        span = self.beta_max - self.beta_min
        return (-self.beta_min + torch.sqrt(self.beta_min**2 + 2 * span * torch.log1p(sigma**2))) / span

    def scale(self, t: Tensor) -> Tensor:
        """s(t) = (1 + σ(t)²/σ_d²)^(−1/2), so that x = s x̂ has variance σ_d² at every t."""
        return torch.rsqrt(1 + self.sigma(t) ** 2 / self.sigma_data**2)

    @property
    def sigma_max(self) -> float:
        """σ(1)."""
        return math.sqrt(math.expm1(0.5 * (self.beta_max - self.beta_min) + self.beta_min))

    def denoise(self, network: Network, x_hat: Tensor, sigma: Tensor, cond: Tensor) -> Tensor:
        """The preconditioned denoiser D(x̂, σ; c) ≈ E[r₀ | r₀ + σε = x̂, c].

        Shapes: x_hat (B, N_f); sigma (B,); cond (B, N_f, F_c) → (B, N_f).
        """
        s = sigma[:, None]
        total = s**2 + self.sigma_data**2
        c_skip, c_out, c_in = self.sigma_data**2 / total, s * self.sigma_data / total.sqrt(), total.rsqrt()
        return c_skip * x_hat + c_out * network(c_in * x_hat, 0.25 * torch.log(sigma), cond)

    def loss_weight(self, sigma: Tensor) -> Tensor:
        """λ(σ) = (σ² + σ_d²)/(σσ_d)², which makes the preconditioned loss unit-weighted (``edm_weighting``)."""
        return (sigma**2 + self.sigma_data**2) / (sigma * self.sigma_data) ** 2

    def training_sigmas(self, batch: int, generator: torch.Generator | None = None) -> Tensor:
        """(batch,) noise levels log-uniform in [σ_min, σ_max], stratified: one per equal-width stratum of
        log σ, in random order (swirl's ``log_uniform_sampling`` with ``uniform_grid=True``)."""
        u = (torch.arange(batch, dtype=torch.float64) + torch.rand(batch, generator=generator, dtype=torch.float64))
        u = u[torch.randperm(batch, generator=generator)] / batch
        low, high = math.log(self.sigma_min), math.log(self.sigma_max)
        return torch.exp(low + u * (high - low)).float()


def karras_grid(sigma_max: float, sigma_min: float, steps: int, rho: float = 7.0) -> Tensor:
    """(steps + 1,) decreasing noise levels σ_i = (σ_max^(1/ρ) + i/N (σ_min^(1/ρ) − σ_max^(1/ρ)))^ρ, float64.

    Raises ValueError if ``steps`` < 1 or not 0 < sigma_min < sigma_max.
    """
    if steps < 1 or not 0 < sigma_min < sigma_max:
        raise ValueError(f"need steps >= 1 and 0 < sigma_min < sigma_max, got {steps}, {sigma_min}, {sigma_max}")
    i = torch.arange(steps + 1, dtype=torch.float64) / steps
    return (sigma_max ** (1 / rho) + i * (sigma_min ** (1 / rho) - sigma_max ** (1 / rho))) ** rho


def exponential_grid(sigma_max: float, sigma_min: float, steps: int) -> Tensor:
    """(steps + 1,) log-uniformly decreasing noise levels from σ_max to σ_min, float64 (swirl's
    ``exponential_noise_decay``), the grid of the stochastic sampler.

    Raises ValueError if ``steps`` < 1 or not 0 < sigma_min < sigma_max.
    """
    if steps < 1 or not 0 < sigma_min < sigma_max:
        raise ValueError(f"need steps >= 1 and 0 < sigma_min < sigma_max, got {steps}, {sigma_min}, {sigma_max}")
    i = torch.arange(steps + 1, dtype=torch.float64) / steps
    return sigma_max * (sigma_min / sigma_max) ** i
