"""Windows inside contiguous periods, and the nested sparsity mask."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from msgl_core.data.masking import sparsity_mask
from msgl_core.data.splits import period_mask, water_year, windows

TIME = pd.date_range("2000-01-01", "2003-12-31", freq="D")


def test_windows_never_cross_a_gap_and_score_each_day_once() -> None:
    periods = [("2000-01-01", "2000-12-31"), ("2002-03-01", "2003-01-15")]
    found = windows(TIME, periods, 100)
    scored = np.zeros(len(TIME), dtype=int)
    for w in found:
        assert w.length <= 100
        inside = period_mask(TIME[w.start:w.stop], periods)
        assert inside.all(), "a window crosses a gap"
        scored[w.score_from:w.stop] += 1
    np.testing.assert_array_equal(scored, period_mask(TIME, periods).astype(int))
    # 366 days → 3 full windows + 1 end-aligned window scoring the last 66 days.
    assert [(w.start, w.stop, w.score_from) for w in found[:4]] == [
        (0, 100, 0), (100, 200, 100), (200, 300, 200), (266, 366, 300)]


def test_short_period_gives_one_short_window() -> None:
    (w,) = windows(TIME, [("2001-01-01", "2001-01-10")], 365)
    assert (w.length, w.score_from) == (10, w.start)


@settings(max_examples=50, deadline=None)
@given(st.integers(0, 10_000), st.floats(0.001, 1.0), st.floats(0.001, 1.0))
def test_mask_is_exact_and_nested(seed: int, rho_a: float, rho_b: float) -> None:
    rng = np.random.default_rng(seed)
    observed = rng.random((60, 8)) < 0.3
    eligible = np.arange(60) < 40
    small, large = sorted((rho_a, rho_b))
    keep_small = sparsity_mask(observed, eligible, small, seed=7)
    keep_large = sparsity_mask(observed, eligible, large, seed=7)
    n = int((observed & eligible[:, None]).sum())
    if n:
        assert int((keep_small & eligible[:, None]).sum()) == max(1, round(small * n))
    assert not (keep_small & ~keep_large).any(), "kept set at smaller rho must be a subset"
    assert not (keep_large & ~observed).any()
    np.testing.assert_array_equal(keep_small[~eligible], observed[~eligible])  # test days never masked


def test_mask_depends_on_seed_and_validates_sparsity() -> None:
    observed = np.ones((100, 5), dtype=bool)
    eligible = np.ones(100, dtype=bool)
    a = sparsity_mask(observed, eligible, 0.1, seed=1)
    assert not np.array_equal(a, sparsity_mask(observed, eligible, 0.1, seed=2))
    np.testing.assert_array_equal(a, sparsity_mask(observed, eligible, 0.1, seed=1))
    with pytest.raises(ValueError, match=r"sparsity must be in \(0, 1\]"):
        sparsity_mask(observed, eligible, 0.0, seed=1)


def test_water_year_starts_on_1_october() -> None:
    days = pd.DatetimeIndex(["2010-09-30", "2010-10-01", "2011-01-01", "2011-09-30", "2011-10-01"])
    assert water_year(days).tolist() == [2010, 2011, 2011, 2011, 2012]
