"""The VP schedule and the preconditioning (docs/probabilistic.md §3.1)."""

from __future__ import annotations

import pytest
import torch

from msgl_core.diffusion.schedule import VPSchedule, exponential_grid, karras_grid


def test_sigma_is_monotone_invertible_and_variance_preserving() -> None:
    schedule = VPSchedule()
    t = torch.linspace(1e-3, 1.0, 500, dtype=torch.float64)
    sigma = schedule.sigma(t)
    assert bool((sigma[1:] > sigma[:-1]).all())
    torch.testing.assert_close(schedule.t_of_sigma(sigma), t, atol=1e-6, rtol=0)
    torch.testing.assert_close(schedule.scale(t) ** 2 * (1 + sigma**2), torch.ones_like(t))
    assert schedule.sigma_max == pytest.approx(152, abs=1)
    assert float(schedule.sigma(torch.tensor(1.0, dtype=torch.float64))) == pytest.approx(schedule.sigma_max)


def test_zero_network_gives_the_skip_connection_and_weights_are_edm() -> None:
    schedule = VPSchedule()
    x_hat, sigma = torch.randn(4, 7), torch.tensor([1e-3, 0.5, 3.0, 100.0])
    zero = lambda x, c_noise, cond: torch.zeros_like(x)  # noqa: E731
    torch.testing.assert_close(schedule.denoise(zero, x_hat, sigma, torch.zeros(4, 7, 0)),
                               x_hat / (1 + sigma[:, None] ** 2))
    torch.testing.assert_close(schedule.loss_weight(sigma), (sigma**2 + 1) / sigma**2)


def test_training_sigmas_are_stratified_log_uniform() -> None:
    schedule = VPSchedule()
    sigma = schedule.training_sigmas(64, torch.Generator().manual_seed(0)).double()
    assert float(sigma.min()) >= schedule.sigma_min and float(sigma.max()) <= schedule.sigma_max
    strata = ((sigma.log() - torch.log(torch.tensor(schedule.sigma_min))) /
              (torch.log(torch.tensor(schedule.sigma_max / schedule.sigma_min))) * 64).floor().long()
    assert sorted(strata.tolist()) == list(range(64))  # one draw per stratum


def test_grids_run_from_sigma_max_to_sigma_min() -> None:
    for grid in (karras_grid(152.0, 1e-3, 24), exponential_grid(152.0, 1e-3, 24)):
        assert len(grid) == 25 and bool((grid[1:] < grid[:-1]).all())
        torch.testing.assert_close(grid[[0, -1]], torch.tensor([152.0, 1e-3], dtype=torch.float64))


def test_bad_schedules_raise() -> None:
    with pytest.raises(ValueError, match="beta_min < beta_max"):
        VPSchedule(beta_min=20.0, beta_max=0.1)
    with pytest.raises(ValueError, match="sigma_min must lie"):
        VPSchedule(sigma_min=500.0)
