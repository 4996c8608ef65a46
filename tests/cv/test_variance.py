"""Variance components: the ANOVA estimators on simulated grids, the REML cross-check, intervals, the
pigeonhole bootstrap and paired comparisons."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from msgl_core.cv.variance import (
    anova_decomposition,
    nadeau_bengio_interval,
    paired_comparison,
    pigeonhole_bootstrap,
    reml_decomposition,
    reml_paired_comparison,
    residual_interval,
    water_year_interval,
)

SIGMA_P, SIGMA_S, SIGMA_E = 0.10, 0.05, 0.04


def crossed(rng: np.random.Generator, p: int = 30, s: int = 10, mean: float = 1.5) -> np.ndarray:
    """A crossed grid y_ps = μ + a_p + b_s + ε_ps with the components above."""
    return (mean + SIGMA_P * rng.standard_normal((p, 1)) + SIGMA_S * rng.standard_normal((1, s))
            + SIGMA_E * rng.standard_normal((p, s)))


def long(y: np.ndarray) -> pd.DataFrame:
    p, s = y.shape
    return pd.DataFrame({"partition": np.repeat(np.arange(p), s), "seed": np.tile(np.arange(s), p), "value": y.ravel()})


def test_anova_recovers_known_components_on_average() -> None:
    rng = np.random.default_rng(7)
    estimates = np.array([[getattr(anova_decomposition(crossed(rng)).components, c)
                           for c in ("partition", "seed", "residual")] for _ in range(500)])
    ratios = estimates.mean(axis=0) / np.array([SIGMA_P, SIGMA_S, SIGMA_E]) ** 2
    assert ratios == pytest.approx([1, 1, 1], rel=0.10)


def test_nested_formulas_recover_partition_and_within_variance() -> None:
    rng = np.random.default_rng(8)
    within = math.hypot(SIGMA_S, SIGMA_E)
    estimates = []
    for _ in range(500):
        y = 1.5 + SIGMA_P * rng.standard_normal((30, 1)) + within * rng.standard_normal((30, 10))  # seeds per run
        result = anova_decomposition(y, "nested")
        assert math.isnan(result.components.seed) and result.mean_squares is not None
        estimates.append((result.components.partition, result.components.residual))
    assert np.mean(estimates, axis=0) / np.array([SIGMA_P**2, within**2]) == pytest.approx([1, 1], rel=0.10)
    y = np.array([[1.0, 2.0], [3.0, 5.0], [4.0, 4.0]])
    nested = anova_decomposition(y, "nested")
    ms_w = ((1 - 1.5) ** 2 * 2 + (1.0**2) * 2 + 0) / (3 * 1)  # Σ (y − ȳ_p)² / (P(S − 1))
    assert nested.mean_squares.residual == pytest.approx(ms_w)
    assert nested.components.partition == pytest.approx(max(0.0, (nested.mean_squares.partition - ms_w) / 2))


def test_anova_equals_reml_on_a_balanced_grid() -> None:
    y = crossed(np.random.default_rng(3), p=15, s=4)
    anova, reml = anova_decomposition(y), reml_decomposition(long(y))
    assert reml.method == "reml" and anova.method == "anova"
    for name in ("partition", "seed", "residual"):
        assert getattr(reml.components, name) == pytest.approx(getattr(anova.components, name), rel=1e-3)
    assert reml.mean == pytest.approx(anova.mean, rel=1e-9)


def test_reml_handles_missing_cells_and_bad_tables() -> None:
    frame = long(crossed(np.random.default_rng(4), p=15, s=4))
    frame.loc[[3, 17, 40], "value"] = np.nan
    result = reml_decomposition(frame)
    assert result.n_cells == 57 and result.components.partition > result.components.residual > 0
    assert result.mean_interval.low < result.mean < result.mean_interval.high
    with pytest.raises(ValueError, match="missing partition, value"):
        reml_decomposition(frame.drop(columns=["partition", "value"]))
    with pytest.raises(ValueError, match="at least 2 partitions and 2 seeds"):
        reml_decomposition(frame[frame["seed"] == 0])


def test_negative_estimates_are_truncated_to_zero() -> None:
    # No seed effect at all: the seed means are identical, so MS_S = 0 < MS_E and (MS_S − MS_E)/P < 0.
    rng = np.random.default_rng(5)
    y = rng.standard_normal((6, 3))
    y -= y.mean(axis=0, keepdims=True) - y.mean()
    result = anova_decomposition(y)
    assert result.mean_squares.seed == pytest.approx(0, abs=1e-12) and result.components.seed == 0.0
    assert result.components.residual > 0


def test_intervals_of_the_mean_and_the_residual() -> None:
    rng = np.random.default_rng(6)
    result = anova_decomposition(crossed(rng, p=15, s=4))
    interval = result.mean_interval
    assert interval.df > 0 and interval.low < result.mean < interval.high and interval.method == "Satterthwaite t"
    ms = result.mean_squares
    variance = (ms.partition + ms.seed - ms.residual) / 60
    assert (interval.high - result.mean) == pytest.approx(
        float(stats.t.ppf(0.975, interval.df)) * math.sqrt(variance))
    chi = result.residual_interval
    assert chi.low < ms.residual < chi.high and chi.df == 42
    assert residual_interval(1.0, 14).low == pytest.approx(14 / 26.119, rel=1e-3)  # χ²_{.975, 14} = 26.119
    with pytest.raises(ValueError, match="df >= 1"):
        residual_interval(1.0, 0)
    nb = nadeau_bengio_interval(crossed(rng, p=15, s=4), n_folds=5)
    assert nb.df == 14 and nb.high - nb.low > 0


def test_grids_are_checked() -> None:
    with pytest.raises(ValueError, match=r"at least 2 of each, got shape \(1, 3\)"):
        anova_decomposition(np.ones((1, 3)))
    with pytest.raises(ValueError, match="1 missing or non-finite cells"):
        anova_decomposition(np.array([[1.0, np.nan], [2.0, 3.0]]))
    with pytest.raises(ValueError, match="unknown design 'split'"):
        anova_decomposition(np.ones((2, 2)), "split")


def test_pigeonhole_bootstrap_is_reproducible_given_its_seed() -> None:
    y = crossed(np.random.default_rng(9), p=15, s=4)
    first, again, other = (pigeonhole_bootstrap(y, replicates=400, seed=s) for s in (1, 1, 2))
    assert first == again and first != other
    low90, low95 = first.partition
    assert (low90.level, low95.level) == (0.90, 0.95) and low95.low <= low90.low <= low90.high <= low95.high
    assert 0 <= first.partition_share[0].low <= first.partition_share[0].high <= 1
    assert first.partition[1].low <= anova_decomposition(y).components.partition <= first.partition[1].high


def test_paired_comparison_of_a_variant_with_itself_is_zero() -> None:
    y = crossed(np.random.default_rng(10), p=15, s=4)
    same = paired_comparison("a", y, "a", y, replicates=100)
    d = same.difference
    assert d.mean == 0 and (d.components.partition, d.components.seed, d.components.residual) == (0, 0, 0)
    assert d.mean_interval.low == d.mean_interval.high == 0
    assert same.fraction_a_better == 0 and same.partition_ratio == pytest.approx(1)
    better = paired_comparison("b", y - 0.1, "a", y, replicates=100)
    assert better.difference.mean == pytest.approx(-0.1) and better.fraction_a_better == 1
    assert better.partition_ratio_interval.low == pytest.approx(1) == better.partition_ratio_interval.high
    frame = long(y)
    unbalanced = reml_paired_comparison("b", frame.assign(value=frame["value"] - 0.1).drop(index=[5]), "a", frame)
    assert unbalanced.difference.mean == pytest.approx(-0.1) and unbalanced.partition_ratio_interval is None
    with pytest.raises(ValueError, match="same cells"):
        paired_comparison("a", y, "b", y[:10])


def test_satterthwaite_interval_of_the_mean_covers_95_percent() -> None:
    rng = np.random.default_rng(11)
    hits = 0
    for _ in range(2000):
        interval = anova_decomposition(crossed(rng, p=15, s=4)).mean_interval
        hits += interval.low <= 1.5 <= interval.high
    assert hits / 2000 == pytest.approx(0.95, abs=0.02)


def test_water_year_bootstrap_resamples_whole_years() -> None:
    # Two years, each with one error on every day: 1 °C in year A, 3 °C in year B. Resampling whole years gives
    # only three pooled RMSEs (AA 1, BB 3, AB their mix); with 2000 replicates each tail holds a quarter, so the
    # 95 % bounds are exactly 1 and 3. Resampling single days would give values in between.
    n = np.array([200.0, 100.0])
    interval = water_year_interval(n * np.array([1.0, 9.0]), n, replicates=2000, seed=0)
    assert (interval.low, interval.high) == (1.0, 3.0) and interval.level == 0.95
    again = water_year_interval(n * np.array([1.0, 9.0]), n, replicates=2000, seed=0)
    assert again == interval
    # Every year with the same mean squared error: every replicate is that RMSE, whatever the weights.
    same = water_year_interval(np.array([4.0, 40.0, 400.0]), np.array([1.0, 10.0, 100.0]), replicates=200)
    assert same.low == pytest.approx(2.0) and same.high == pytest.approx(2.0)


def test_water_year_bootstrap_needs_two_years_and_matching_arrays() -> None:
    one = water_year_interval(np.array([9.0]), np.array([3.0]))
    assert math.isnan(one.low) and math.isnan(one.high)
    with pytest.raises(ValueError, match="equal-length 1-D"):
        water_year_interval(np.ones(3), np.ones(2))
    with pytest.raises(ValueError, match="replicates must be >= 2"):
        water_year_interval(np.ones(3), np.ones(3), replicates=1)


def test_a_mean_with_less_than_one_degree_of_freedom_gets_no_interval() -> None:
    # Paired differences remap − msgl_dyn (°C) of a 2-fold × 2-repeat × 2-seed Rancocas grid at ρ = 1 %: one
    # wild msgl_dyn run makes MS_E dominate, Satterthwaite's df is 4e-4 and t(0.975, df) would be ~1e151.
    d = np.array([[1.98, 0.48], [-4.26, -4.31], [-1.08, -3.43], [-10.41, 1.27]])
    interval = anova_decomposition(d).mean_interval
    assert interval.df < 1 and math.isnan(interval.low) and math.isnan(interval.high)
    assert interval.method == "Satterthwaite t (df < 1: no interval)"
    usual = anova_decomposition(np.array([[1.0, 1.2], [2.0, 2.3], [3.0, 3.1]])).mean_interval
    assert usual.df == pytest.approx(2.113, abs=1e-3) and usual.low == pytest.approx(-0.2374, abs=1e-4)
