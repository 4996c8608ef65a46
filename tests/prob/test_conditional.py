"""Conditional ensembles (docs/probabilistic.md §4) and the predictions.nc summary invariants (§5)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from msgl_core.diffusion.conditional import (
    assemble,
    calibrate_inflation,
    coarse_noise_std,
    sample_residuals,
)
from msgl_core.diffusion.schedule import VPSchedule
from msgl_core.evaluate.ensemble import summarise_members
from msgl_core.evaluate.predict import netcdf_encoding
from tests.prob.tiny import PARENT, operator

SCHEDULE = VPSchedule()
DAYS = 30


def gaussian_network(x: torch.Tensor, c_noise: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """F whose preconditioned denoiser is the exact one of r₀ ~ N(0, I): D = x̂/(1 + σ²) ⇔ F ≡ 0."""
    return torch.zeros_like(x)


def coarse_field(seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return 15 + 8 * torch.sin(torch.linspace(0, 3, DAYS))[:, None] + torch.randn(DAYS, 3, generator=g)


def residuals(members: int = 16, common_noise: bool = True, sampler: str = "heun", steps: int = 24) -> torch.Tensor:
    return sample_residuals(gaussian_network, SCHEDULE, operator(), torch.zeros(DAYS, 7, 0), members, steps,
                            torch.Generator().manual_seed(0), sampler=sampler, common_noise=common_noise)


def test_every_member_satisfies_the_coarse_constraint_exactly() -> None:
    op, coarse = operator(), coarse_field()
    for sampler, steps in (("heun", 24), ("euler_maruyama", 32)):
        r = residuals(sampler=sampler, steps=steps)
        assert r.shape == (16, DAYS, 7)
        x = assemble(op, coarse, r, sigma_r=1.7, inflation=1.4)
        assert float((op.apply(x) - coarse).abs().max()) < 1e-4
        torch.testing.assert_close(x[:, :, 0], coarse[None, :, 0].expand(16, DAYS))  # single-reach segment
    noisy = coarse[None] + 0.5 * torch.randn(16, DAYS, 3)  # coarse noise: one y'_m per member
    assert float((op.apply(assemble(op, noisy, residuals(), 1.7)) - noisy).abs().max()) < 1e-4


def test_common_noise_makes_members_coherent_across_days() -> None:
    coherent, independent = residuals(common_noise=True), residuals(common_noise=False)
    torch.testing.assert_close(coherent[:, 0], coherent[:, -1])  # same prior and noise on every day
    assert float((independent[:, 0] - independent[:, -1]).abs().max()) > 0.1


def test_inflation_scales_the_spread_about_the_mean_and_is_recovered_on_validation() -> None:
    op, coarse, r = operator(), coarse_field(), residuals(members=32, common_noise=False)
    base = assemble(op, coarse, r, sigma_r=1.0)
    wide = assemble(op, coarse, r, sigma_r=1.0, inflation=2.0)
    torch.testing.assert_close(wide.mean(dim=0), base.mean(dim=0), atol=1e-5, rtol=0)
    torch.testing.assert_close(wide.std(dim=0), 2 * base.std(dim=0), atol=1e-4, rtol=1e-4)
    # Observations drawn with twice the prior's spread: the CRPS-optimal γ is about 2.
    g = torch.Generator().manual_seed(9)
    truth = assemble(op, coarse, op.project_residual(torch.randn(1, DAYS, 7, generator=g)), sigma_r=2.0)[0]
    gamma = calibrate_inflation(op, coarse, r, 1.0, truth)
    assert 1.5 <= gamma <= 2.6
    assert calibrate_inflation(op, coarse, r, 1.0, torch.full_like(truth, float("nan"))) == 1.0


def test_coarse_noise_is_the_seasonal_validation_rmse() -> None:
    time = pd.date_range("2006-01-01", periods=365)
    rng = np.random.default_rng(1)
    observed = rng.normal(15, 5, (365, 3))
    error = np.where(time.month.isin([6, 7, 8])[:, None], 2.0, 0.5) * rng.choice([-1.0, 1.0], (365, 3))
    sigma = coarse_noise_std(observed + error, observed, time)
    np.testing.assert_allclose(sigma, [0.5, 0.5, 2.0, 0.5])
    with pytest.raises(ValueError, match="no validation segment-day"):
        coarse_noise_std(np.full((2, 1), np.nan), np.ones((2, 1)), time[:2])


def test_bad_sampling_options_raise() -> None:
    with pytest.raises(ValueError, match="sampler must be one of"):
        residuals(sampler="ddim")
    with pytest.raises(ValueError, match="must be >= 1"):
        residuals(members=0)
    with pytest.raises(ValueError, match="must be > 0"):
        assemble(operator(), coarse_field(), residuals(), sigma_r=0.0)


def summary(tmp_path: Path) -> tuple[xr.Dataset, xr.Dataset]:
    """The summary of a 16-member ensemble with one NaN segment-day, in memory and read back from NetCDF."""
    op, coarse = operator(), coarse_field()
    x = assemble(op, coarse, residuals(), sigma_r=3.0).double().numpy()
    x[:, 4, PARENT == 2] = np.nan  # a NaN source on segment 2 that day stays NaN
    coarse_np = coarse.double().numpy().copy()
    coarse_np[4, 2] = np.nan
    time = pd.date_range("2011-07-01", periods=DAYS)
    reaches = [f"{s}_{k}" for s, k in zip(PARENT, [1, 1, 2, 1, 2, 3, 4], strict=True)]
    members = xr.DataArray(x, dims=("member", "time", "reach"), coords={
        "time": time, "reach": reaches, "parent_segment": ("reach", PARENT)})
    debiased = xr.DataArray(coarse_np, dims=("time", "segment"), coords={"time": time, "segment": [0, 1, 2]})
    ds = summarise_members(members, debiased, {"debias_method": "ot", "members_temporally_coherent": 1})
    ds.to_netcdf(tmp_path / "predictions.nc", encoding=netcdf_encoding(ds))
    return ds, xr.open_dataset(tmp_path / "predictions.nc")


def test_summary_variables_units_and_invariants(tmp_path: Path) -> None:
    ds, decoded = summary(tmp_path)
    quantiles = [f"prediction_q{q:02d}" for q in (5, 25, 50, 75, 95)]
    expected = {"prediction", *quantiles, "p_exceed_20", "p_exceed_25", "n_members", "coarse_debiased"}
    assert set(ds.data_vars) == expected
    for name, var in ds.data_vars.items():
        assert var.attrs["units"] in ("degC", "1") and var.attrs["long_name"], name
    assert ds["prediction"].dims == ("time", "reach") and ds["coarse_debiased"].dims == ("time", "segment")
    stacked = np.stack([ds[q].values for q in quantiles])
    finite = np.isfinite(stacked).all(axis=0)
    assert (np.diff(stacked, axis=0)[:, finite] >= 0).all()
    for name in ("p_exceed_20", "p_exceed_25"):
        p = ds[name].values
        assert ((p[np.isfinite(p)] >= 0) & (p[np.isfinite(p)] <= 1)).all()
    np.testing.assert_array_equal(np.isnan(ds["prediction"].values[4]), PARENT == 2)
    assert ds["n_members"].values[4, 3] == 0 and ds["n_members"].values[0, 0] == 16
    op = operator()
    mean = torch.from_numpy(ds["prediction"].values)
    both = torch.from_numpy(ds["coarse_debiased"].values)
    assert float(np.nanmax((op.apply(mean) - both).abs().numpy())) < 1e-4  # in memory
    decoded_gap = op.apply(torch.from_numpy(decoded["prediction"].values.astype(np.float64))) - torch.from_numpy(
        decoded["coarse_debiased"].values.astype(np.float64))
    assert float(np.nanmax(decoded_gap.abs().numpy())) <= 0.01  # after int16 decoding
    np.testing.assert_allclose(decoded["p_exceed_20"].values, ds["p_exceed_20"].values, atol=6e-4)
    assert decoded.attrs["debias_method"] == "ot"
    decoded.close()
