"""Probabilistic scores (docs/probabilistic.md §5) on synthetic ensembles, and their typed record."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import scoringrules as sr
import xarray as xr

from msgl_core.config import RunConfig
from msgl_core.evaluate.ensemble import evaluate_ensemble
from msgl_core.evaluate.metrics import Scores
from msgl_core.evaluate.probabilistic import (
    brier,
    crps_fair,
    exceedance_probability,
    interval_coverage,
    marginal_wasserstein,
    probabilistic_scores,
    rank_histogram,
    reliability_bins,
    spread_skill_ratio,
)
from msgl_core.evaluate.record import RunMetrics, SkillSection


def calibrated(n: int = 4000, m: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Observations and members drawn from the same N(μ, 2²) with a random μ per case."""
    rng = np.random.default_rng(seed)
    mu = rng.uniform(5, 28, n)
    return mu[:, None] + 2 * rng.standard_normal((n, m)), mu + 2 * rng.standard_normal(n)


def test_crps_is_zero_for_a_perfect_ensemble_and_the_mae_for_a_deterministic_one() -> None:
    obs = np.array([12.0, 18.5, np.nan])
    assert crps_fair(np.repeat(obs[:, None], 8, axis=1), obs) == 0.0
    forecast = np.array([13.0, 17.0, 4.0])
    assert crps_fair(np.repeat(forecast[:, None], 8, axis=1), obs) == pytest.approx(np.mean([1.0, 1.5]))


def test_fair_crps_of_a_large_gaussian_ensemble_matches_the_closed_form() -> None:
    rng = np.random.default_rng(1)
    obs = rng.normal(15, 3, 2000)
    members = 14 + 2.5 * rng.standard_normal((2000, 100))
    expected = float(np.mean(sr.crps_normal(obs, 14.0, 2.5)))
    assert crps_fair(members, obs) == pytest.approx(expected, abs=0.02)


def test_calibrated_ensemble_has_ssr_one_coverage_ninety_and_a_flat_rank_histogram() -> None:
    members, obs = calibrated()
    assert spread_skill_ratio(members, obs) == pytest.approx(1.0, abs=0.05)
    # The q05–q95 interval of 40 exchangeable members holds the observation with probability ≈ 0.9 · 39/41.
    assert interval_coverage(members, obs) == pytest.approx(0.9 * 39 / 41, abs=0.03)
    counts = rank_histogram(members, obs)
    assert counts.shape == (41,) and counts.sum() == 4000
    assert counts.max() < 2.2 * counts.mean()
    mean = members.mean(axis=1, keepdims=True)
    assert spread_skill_ratio(mean + 0.3 * (members - mean), obs) == pytest.approx(0.3, abs=0.05)  # over-confident


def test_rank_ties_take_the_mid_rank() -> None:
    members = np.full((1, 4), 10.0)
    np.testing.assert_array_equal(rank_histogram(members, np.array([10.0])), [0, 0, 1, 0, 0])


def test_brier_exceedance_and_reliability() -> None:
    members = np.array([[19.0, 21.0, 22.0, 18.0], [26.0, 24.0, 25.5, 27.0]])
    obs = np.array([21.0, 24.0])
    np.testing.assert_allclose(exceedance_probability(members, 20.0), [0.5, 1.0])
    assert brier(members, obs, 20.0) == pytest.approx(((0.5 - 1) ** 2 + (1 - 1) ** 2) / 2)
    assert brier(members, obs, 25.0) == pytest.approx(((0 - 0) ** 2 + (0.75 - 0) ** 2) / 2)
    ens, o = calibrated(n=20000, m=20, seed=2)
    bins = reliability_bins(ens, o, 20.0)
    assert sum(bins.count) == 20000
    filled = np.array(bins.count) > 500
    np.testing.assert_allclose(np.array(bins.forecast)[filled], np.array(bins.observed)[filled], atol=0.08)


def test_marginal_wasserstein() -> None:
    rng = np.random.default_rng(3)
    obs = rng.normal(15, 3, (50, 4))
    members = np.repeat(obs[..., None], 5, axis=-1)
    assert marginal_wasserstein(members, obs) == pytest.approx(0.0, abs=1e-12)
    assert marginal_wasserstein(members + 1.5, obs) == pytest.approx(1.5)
    obs[:45, 0] = np.nan  # reach 0 has 5 observations: left out
    assert marginal_wasserstein(members + 1.5, obs) == pytest.approx(1.5)
    with pytest.raises(ValueError, match="expected members"):
        marginal_wasserstein(members[:, 0], obs)


def test_scores_of_a_group_need_pairs_and_crpss_uses_the_reference() -> None:
    members, obs = calibrated(n=200, m=20, seed=4)
    members, obs = members.reshape(20, 10, 20), obs.reshape(20, 10)
    reference = members.mean(axis=-1) + 1.0
    scores = probabilistic_scores(members, obs, reference)
    mae = np.mean(np.abs(reference - obs))
    assert scores.crpss == pytest.approx(1 - scores.crps / mae)
    assert scores.n_obs == 200 and 0 <= scores.brier_20 <= 1
    assert np.isnan(probabilistic_scores(members[:1, :1], obs[:1, :1], min_obs=10).crps)


def test_evaluate_ensemble_sections_and_json_round_trip() -> None:
    rng = np.random.default_rng(5)
    time = pd.date_range("2010-09-01", "2011-01-31")
    reaches, parents = ["1_1", "1_2", "2_1"], [1, 1, 2]
    truth = 15 + 5 * rng.standard_normal((len(time), 3))
    coords = {"time": time, "reach": reaches, "parent_segment": ("reach", parents)}
    observed = xr.DataArray(np.where(rng.random(truth.shape) < 0.8, truth, np.nan), coords=coords,
                            dims=("time", "reach"))
    members = xr.DataArray(truth[None] + rng.standard_normal((8, len(time), 3)), coords=coords,
                           dims=("member", "time", "reach"))
    cfg = RunConfig(holdout_segments=(2,))
    record = evaluate_ensemble(members, observed, cfg, reference=members.mean("member"))
    test_days = (time >= "2010-10-01").sum()
    assert record.n_members == 8 and record.holdout is not None
    assert record.fine.overall.n_obs == int(np.isfinite(observed.values[-test_days:, :2]).sum())
    assert set(record.fine.per_node) == {"1_1", "1_2"} and set(record.holdout.per_node) == {"2_1"}
    assert sum(record.fine.rank_histogram) == record.fine.overall.n_obs
    assert [r.threshold for r in record.fine.reliability] == [20.0, 25.0]
    assert np.isnan(record.fine.per_month[7].crps)  # no test day in July
    assert record.fine.per_node_frame().index.tolist() == ["1_1", "1_2"]
    s = Scores(1.5, 1.2, 0.1, 0.9, 0.8, 120)
    metrics = RunMetrics((("2010-10-01", "2015-09-30"),), SkillSection(s, {7: s}, {"r1": s}), probabilistic=record)
    back = RunMetrics.from_json(metrics.to_json())
    assert back.probabilistic is not None
    assert back.probabilistic.fine.overall == record.fine.overall
    assert back.probabilistic.fine.rank_histogram == record.fine.rank_histogram
    assert back.probabilistic.fine.reliability[0].count == record.fine.reliability[0].count
    assert RunMetrics.from_json(RunMetrics(metrics.test_periods, metrics.fine).to_json()).probabilistic is None
    with pytest.raises(ValueError, match="share the 'reach' coordinate"):
        evaluate_ensemble(members, observed.isel(reach=[1, 0, 2]), cfg)
