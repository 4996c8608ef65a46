"""The guided samplers on an analytic Gaussian prior (no training): with the exact denoiser of r₀ ~ N(0, I),
D = x̂/(1 + σ²), the conditional of C'r = 0 is N(0, I − (C')†C')."""

from __future__ import annotations

import pytest
import torch

from msgl_core.diffusion.sampler import euler_maruyama_sample, heun_sample, projected
from msgl_core.diffusion.schedule import VPSchedule, exponential_grid, karras_grid
from tests.prob.tiny import operator

SAMPLES = 20_000
SCHEDULE = VPSchedule()


def exact(x_hat: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    return x_hat / (1 + sigma[:, None] ** 2)


def deviation(samples: torch.Tensor) -> float:
    op = operator()
    target = torch.eye(7, dtype=torch.float64) - op.pinv() @ op.to_dense()
    covariance = torch.cov(samples.T.double())
    return float((covariance - target).abs().max() / target.diagonal().max())


def heun(steps: int, seed: int = 0) -> torch.Tensor:
    noise = torch.randn(SAMPLES, 7, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    grid = karras_grid(SCHEDULE.sigma_max, SCHEDULE.sigma_min, steps)
    return heun_sample(projected(exact, operator()), noise, grid)


@pytest.mark.parametrize(("steps", "low", "high"), [(32, 0.0, 0.06), (64, 0.0, 0.03), (16, 0.08, 0.25)])
def test_heun_covariance_matches_the_exact_conditional(steps: int, low: float, high: float) -> None:
    """A coarse grid over-disperses (16 steps); this pins it so that a grid change cannot silently alter spread."""
    samples = heun(steps)
    assert low <= deviation(samples) <= high
    assert float(samples.mean(dim=0).abs().max()) < 0.03
    assert float(operator().apply(samples).abs().max()) < 1e-5  # C'r = 0 for every member


def test_euler_maruyama_at_256_steps_passes_the_heun_32_tolerance() -> None:
    noise = torch.randn(SAMPLES, 7, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    grid = exponential_grid(SCHEDULE.sigma_max, SCHEDULE.sigma_min, 256)
    samples = euler_maruyama_sample(projected(exact, operator()), noise, grid, torch.Generator().manual_seed(2))
    assert deviation(samples) <= 0.06
    assert float(operator().apply(samples).abs().max()) < 1e-5


def test_bad_grids_and_noise_raise() -> None:
    with pytest.raises(ValueError, match="decreasing grid"):
        heun_sample(exact, torch.zeros(2, 7), torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match="noise must be"):
        heun_sample(exact, torch.zeros(7), torch.tensor([2.0, 1.0]))
    with pytest.raises(ValueError, match="steps >= 1"):
        karras_grid(10.0, 1e-3, 0)
