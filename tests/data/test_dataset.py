"""The xarray → tensor boundary on the tiny dataset."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from msgl_core.config import RunConfig
from msgl_core.data import MultiscaleData, fine_drivers
from msgl_core.data.dataset import DRIVERS, FEATURES, batch, prepare
from tests.tiny_bundle import N_REACHES, PERIODS


def _cfg(**overrides: object) -> RunConfig:
    return RunConfig.from_dict({"basin": "drb", "window": 20, **PERIODS, **overrides})


def test_shapes_and_graph_matrices(tiny_data: MultiscaleData) -> None:
    prepared = prepare(tiny_data, _cfg())
    b = batch(prepared, prepared.windows["train"][0])
    assert b.x_coarse.shape == (5, 20, len(FEATURES)) and b.x_fine.shape == (N_REACHES, 20, len(FEATURES))
    assert b.y_coarse.shape == (5, 20) and b.y_fine.shape == (N_REACHES, 20)
    for matrix in (prepared.adjacency_coarse, prepared.adjacency_fine, prepared.mixed):
        np.testing.assert_allclose(matrix.to_dense().sum(dim=1).numpy(), 1.0, rtol=1e-5)
    assert prepared.mixed.shape == (N_REACHES, 5)


def test_fine_scalers_match_materialised_drivers(tiny_data: MultiscaleData) -> None:
    cfg = _cfg()
    prepared = prepare(tiny_data, cfg)
    train = tiny_data.fine.time.to_index().slice_indexer(*cfg.train_periods[0])
    gathered = fine_drivers(tiny_data.coarse, tiny_data.fine, DRIVERS).isel(time=train)
    values = np.stack([gathered[name].values for name in DRIVERS], axis=-1).reshape(-1, len(DRIVERS))
    np.testing.assert_allclose(prepared.driver_scalers["fine"].mean, values.mean(axis=0), rtol=1e-5)
    np.testing.assert_allclose(prepared.driver_scalers["fine"].std, values.std(axis=0), rtol=1e-4)


def test_sparsity_masks_train_and_val_but_not_test(tiny_data: MultiscaleData) -> None:
    full, sparse = prepare(tiny_data, _cfg()), prepare(tiny_data, _cfg(sparsity=0.1))
    for split in ("train", "val"):
        days = full.split_days[split]
        n = int(np.isfinite(full.y_fine[days]).sum())
        assert int(np.isfinite(sparse.y_fine[days]).sum()) < n
    test = full.split_days["test"]
    np.testing.assert_array_equal(np.isfinite(sparse.y_fine[test]), np.isfinite(full.y_fine_all[test]))
    np.testing.assert_array_equal(np.isfinite(sparse.y_coarse), np.isfinite(full.y_coarse))


def test_holdout_withholds_both_scales_in_train_and_val(tiny_data: MultiscaleData) -> None:
    prepared = prepare(tiny_data, _cfg(holdout_segments=[104, 105]))
    fit_days = prepared.split_days["train"] | prepared.split_days["val"]
    reach_104 = list(prepared.reach_ids).index("104_1")
    assert np.isnan(prepared.y_fine[fit_days, reach_104]).all()
    assert np.isfinite(prepared.y_fine[prepared.split_days["test"], reach_104]).any()
    assert np.isnan(prepared.y_coarse[fit_days][:, [3, 4]]).all()
    assert prepared.holdout_reaches.sum() == 4
    with pytest.raises(ValueError, match=r"holdout segments \[999\] are not in basin"):
        prepare(tiny_data, _cfg(holdout_segments=[999]))


def test_unscored_days_have_no_targets(tiny_data: MultiscaleData) -> None:
    prepared = prepare(tiny_data, _cfg())
    w = prepared.windows["train"][-1]
    assert w.score_from > w.start  # the end-aligned window of the 46-day training period
    y = batch(prepared, w).y_fine
    assert torch.isnan(y[:, : w.score_from - w.start]).all()
