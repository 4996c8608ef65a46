"""Stage-1 debiasing (docs/probabilistic.md §2): the entropic map against POT, recovery on synthetic
distributions, the leakage guards, NaN handling and save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import ot
import pandas as pd
import pytest
import xarray as xr

from msgl_core.debias import (
    DebiasOptions,
    EntropicMap,
    FitScope,
    OTDebiaser,
    fit_debiaser,
    load_debiaser,
    save_debiaser,
)

START = "2000-01-01"


def field(values: np.ndarray, segments: list[int] | None = None, start: str = START) -> xr.DataArray:
    """(time, segment) °C DataArray of ``values`` (time, segments)."""
    values = values.reshape(len(values), -1)
    segments = segments or list(range(1, values.shape[1] + 1))
    time = pd.date_range(start, periods=len(values))
    return xr.DataArray(values, coords={"time": time, "segment": segments}, dims=("time", "segment"))


def scope_of(data: xr.DataArray, excluded: tuple[int, ...] = ()) -> FitScope:
    time = pd.DatetimeIndex(data.time.values)
    return FitScope(((str(time[0].date()), str(time[-1].date())),), (("1970-01-01", "1970-12-31"),), excluded)


OT_1D = DebiasOptions(method="ot", lambda_doy=0.0, n_support=500)


def test_entropic_map_equals_pot_sinkhorn_transport() -> None:
    rng = np.random.default_rng(0)
    xs, xt = rng.normal(0, 1, (300, 3)), rng.normal(1, 2, (250, 3))
    new = rng.normal(0.5, 1.5, (60, 3))
    ours = EntropicMap.fit(xs, xt, eps=0.05).barycentre(new)
    oracle = ot.da.SinkhornTransport(reg_e=0.05, norm="median", method="sinkhorn_log", max_iter=2000,
                                     tol=1e-7).fit(Xs=xs, Xt=xt).transform(Xs=new)
    np.testing.assert_allclose(ours, oracle, atol=1e-8, rtol=0)


def test_one_dimensional_gaussian_shift_and_monotone_map() -> None:
    rng = np.random.default_rng(1)
    source, target = field(rng.normal(10, 3, 500)), field(rng.normal(12, 4, 500))
    debiaser = fit_debiaser(OT_1D, source, target, scope_of(target))
    mapped = debiaser.transform(source).values
    assert abs(mapped.mean() - target.values.mean()) < 0.2
    assert abs(mapped.std() - target.values.std()) < 0.2
    grid = field(np.linspace(4, 16, 50))
    assert (np.diff(debiaser.transform(grid).values[:, 0]) > 0).all()


def test_identical_distributions_give_a_near_identity_map() -> None:
    rng = np.random.default_rng(2)
    values = rng.normal(15, 4, 500)
    source, target = field(values), field(rng.permutation(values))
    grid = field(np.linspace(9, 21, 25))
    mapped = fit_debiaser(OT_1D, source, target, scope_of(target)).transform(grid)
    np.testing.assert_allclose(mapped.values, grid.values, atol=0.35)


def test_seasonal_context_recovers_winter_and_summer_shifts() -> None:
    """Mass moves between days of similar season: a shift of 0 °C in winter and +4 °C in summer. (The entropic
    blur over neighbouring, warmer days lifts the winter minimum by ≈ 0.3 °C at ε = 0.02, ≈ 0.5 °C at 0.05.)"""
    rng = np.random.default_rng(3)
    time = pd.date_range(START, periods=1460)
    angle = 2 * np.pi * time.day_of_year.to_numpy() / 365.25
    source = field(10 - 8 * np.cos(angle) + rng.normal(0, 1, 1460))
    target = field(10 - 8 * np.cos(angle) + 2 * (1 - np.cos(angle)) + rng.normal(0, 1, 1460))
    debiaser = fit_debiaser(DebiasOptions(method="ot", n_support=500, eps=0.02), source, target, scope_of(target))
    probe = xr.DataArray([[2.0], [np.nan]], coords={"time": pd.to_datetime(["2001-01-15", "2001-07-15"]),
                                                     "segment": [1]}, dims=("time", "segment"))
    summer = xr.DataArray([[18.0]], coords={"time": pd.to_datetime(["2001-07-15"]), "segment": [1]},
                          dims=("time", "segment"))
    assert abs(float(debiaser.transform(probe).values[0, 0]) - 2.0) < 0.5
    assert np.isnan(debiaser.transform(probe).values[1, 0])
    assert abs(float(debiaser.transform(summer).values[0, 0]) - 22.0) < 0.5


@pytest.mark.parametrize("method", ["none", "linear", "quantile_mapping", "ot"])
def test_every_method_keeps_nan_and_round_trips(method: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    source = field(rng.normal(10, 3, (400, 3)))
    target = field(source.values * 1.1 + 1.5 + rng.normal(0, 0.3, (400, 3)))
    static = xr.DataArray(rng.normal(size=(3, 2)), coords={"segment": [1, 2, 3]}, dims=("segment", "feature"))
    debiaser = fit_debiaser(DebiasOptions(method=method, n_support=200), source, target, scope_of(target),
                            static=static)
    holes = source.copy()
    holes.values[::7, 1] = np.nan
    out = debiaser.transform(holes)
    assert out.dims == ("time", "segment") and out.attrs["units"] == "degC"
    np.testing.assert_array_equal(np.isnan(out.values), np.isnan(holes.values))
    save_debiaser(debiaser, tmp_path / "debias.npz")
    loaded = load_debiaser(tmp_path / "debias.npz")
    assert type(loaded) is type(debiaser)
    np.testing.assert_array_equal(loaded.transform(holes).values, out.values)
    if method != "none":  # the correction removes most of the +1.5 °C / ×1.1 bias
        assert abs(float(np.nanmean(out.values - target.values))) < 0.3


def test_linear_recovers_an_exact_affine_bias_and_quantile_mapping_has_linear_tails() -> None:
    rng = np.random.default_rng(5)
    source = field(rng.normal(10, 3, 730))
    target = field(2.0 + 0.8 * source.values)
    linear = fit_debiaser(DebiasOptions(method="linear"), source, target, scope_of(target))
    np.testing.assert_allclose(linear.transform(source).values, target.values, atol=1e-9)
    qm = fit_debiaser(DebiasOptions(method="quantile_mapping"), source, target, scope_of(target))
    top, bottom = float(source.values.max()), float(source.values.min())
    beyond = field(np.array([bottom - 5.0, bottom, top, top + 5.0]), start="2000-06-01")
    mapped = qm.transform(beyond).values[:, 0]
    np.testing.assert_allclose([mapped[0] - mapped[1], mapped[3] - mapped[2]], [-5.0, 5.0], atol=1e-9)


def test_sample_mode_weights_sum_to_one_and_draw_from_the_support() -> None:
    rng = np.random.default_rng(6)
    source, target = field(rng.normal(10, 3, 500)), field(rng.normal(12, 4, 500))
    debiaser = fit_debiaser(OT_1D, source, target, scope_of(target))
    assert isinstance(debiaser, OTDebiaser)
    weights = debiaser.maps[0].weights(debiaser.features(np.array([5.0, 10.0, 15.0]),
                                                         pd.DatetimeIndex(["2000-01-01"] * 3), np.array([1, 1, 1])))
    np.testing.assert_allclose(weights.sum(axis=1), 1.0, atol=1e-12)
    draws = debiaser.sample(source, np.random.default_rng(0)).values
    assert np.isin(np.round(draws, 9), np.round(target.values, 9)).all()
    assert abs(draws.mean() - 12.0) < 0.7


def test_leakage_guards_raise_naming_dates_and_segments() -> None:
    rng = np.random.default_rng(7)
    source, target = field(rng.normal(10, 3, (60, 2)), [11, 12]), field(rng.normal(12, 3, (60, 2)), [11, 12])
    fit = FitScope((("2000-01-01", "2000-01-31"),), (("2000-06-01", "2000-06-30"),))
    with pytest.raises(ValueError, match=r"outside the fit period 2000-01-01..2000-01-31 on 29 dates \(2000-02-01"):
        fit_debiaser(OT_1D, source, target, fit)
    inside = target.where(target.time <= np.datetime64("2000-01-31"))
    with pytest.raises(ValueError, match=r"hold-out or CV test segments \[12\]"):
        fit_debiaser(OT_1D, source, inside, FitScope(fit.fit_periods, fit.test_periods, (12,)))
    with pytest.raises(ValueError, match="overlaps the test period on 1 dates"):
        fit_debiaser(OT_1D, source, inside, FitScope((("2000-01-01", "2000-06-01"),), fit.test_periods))
    fit_debiaser(OT_1D, source, inside, fit)  # fit-period observations only: accepted
    with pytest.raises(ValueError, match="at least one fit period"):
        FitScope((), fit.test_periods)


def test_options_are_strict_and_unknown_static_segments_raise() -> None:
    with pytest.raises(ValueError, match="unknown debias key 'epsilon'"):
        DebiasOptions.from_dict({"epsilon": 0.1})
    with pytest.raises(ValueError, match="debias.method must be one of"):
        DebiasOptions(method="bcsd")
    with pytest.raises(ValueError, match="needs method 'ot'"):
        DebiasOptions(method="linear", mode="sample")
    with pytest.raises(ValueError, match="eps must be > 0"):
        DebiasOptions(eps=0.0)
    rng = np.random.default_rng(8)
    source, target = field(rng.normal(10, 3, (50, 2))), field(rng.normal(12, 3, (50, 2)))
    static = xr.DataArray([[0.0], [1.0]], coords={"segment": [1, 2]}, dims=("segment", "feature"))
    debiaser = fit_debiaser(DebiasOptions(n_support=50), source, target, scope_of(target), static=static)
    with pytest.raises(ValueError, match=r"segments \[3\] have no static attributes"):
        debiaser.transform(field(np.ones((2, 1)), [3]))
