"""Skill metrics on known values."""

from __future__ import annotations

import numpy as np
import pytest

from msgl_core.evaluate.metrics import skill


def test_perfect_prediction() -> None:
    obs = np.array([1.0, 2.0, 3.0, 4.0, np.nan])
    m = skill(obs.copy(), obs)
    assert (m.rmse, m.mae, m.bias, m.nse, m.kge, m.n_obs) == (0, 0, 0, 1, 1, 4)


def test_constant_offset() -> None:
    obs = np.array([1.0, 2.0, 3.0, 4.0])
    m = skill(obs + 2, obs)
    assert m.rmse == pytest.approx(2.0) and m.bias == pytest.approx(2.0)
    assert m.nse == pytest.approx(1 - 16 / 5)
    assert m.kge == pytest.approx(1 - abs(4.5 / 2.5 - 1))


def test_too_few_pairs_and_shape_mismatch() -> None:
    m = skill(np.ones(5), np.ones(5), min_obs=10)
    assert np.isnan(m.rmse) and m.n_obs == 5
    with pytest.raises(ValueError, match="prediction shape"):
        skill(np.ones(3), np.ones(4))
