"""CV cells on the tiny bundle: what each run sees (no test-fold label reaches the model at either scale),
the buffer config key, and the plan's checks."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from msgl_core.config import RunConfig
from msgl_core.cv.folds import FoldRules
from msgl_core.cv.run import CVPlan, cv_cells, plan_folds
from msgl_core.data import MultiscaleData
from msgl_core.data.dataset import batch, observation_counts, prepare
from msgl_core.dims import PARENT_SEGMENT, REACH, TIME
from msgl_core.evaluate.report import evaluate
from tests.tiny_bundle import PERIODS

BASE = RunConfig.from_dict({"basin": "drb", "window": 20, "epochs": 1, "device": "cpu", "threads": 1, **PERIODS})
LOOSE = FoldRules(min_reaches=1, min_test_obs=1, balance=1.0)


def plan(**changes: object) -> CVPlan:
    values: dict = {"base": BASE, "variants": ("rgcn_fine",), "seeds": (1, 2), "scheme": "segment", "n_folds": 2,
                    "repeats": 2, "buffer_hops": 0, "rules": LOOSE} | changes
    return CVPlan(**values)


def test_no_test_fold_or_buffer_label_reaches_training_or_validation(tiny_data: MultiscaleData) -> None:
    p = plan()
    cells = cv_cells(p, plan_folds(p, tiny_data))
    assert len(cells) == 1 * 2 * 2 * 2
    for cell in cells:
        prepared = prepare(tiny_data, cell.config)
        withheld = np.isin(prepared.segment_ids, cell.test_segments + cell.config.buffer_segments)
        assert set(cell.test_segments) <= set(cell.config.holdout_segments)
        fit = prepared.split_days["train"] | prepared.split_days["val"]
        assert np.isnan(prepared.y_fine[np.ix_(fit, withheld[prepared.parent])]).all()
        assert np.isnan(prepared.y_coarse[np.ix_(fit, withheld)]).all()
        for split in ("train", "val"):
            for window in prepared.windows[split]:
                b = batch(prepared, window)
                assert np.isnan(b.y_fine[withheld[prepared.parent]].numpy()).all()
                assert np.isnan(b.y_coarse[withheld].numpy()).all()
                assert np.isfinite(b.x_fine.numpy()).all()  # inputs at test reaches are present
        test = prepared.split_days["test"]
        test_reaches = np.isin(prepared.segment_ids, cell.test_segments)[prepared.parent]
        observed = prepared.y_fine_all[np.ix_(test, test_reaches)]
        assert np.isfinite(observed).any()  # test observations stay unmasked in the record
        counts = observation_counts(tiny_data, cell.config)
        assert counts.kept == int(np.isfinite(prepared.y_fine[fit]).sum())


def test_cells_cross_seeds_with_partitions_and_resample_the_mask_per_repeat(tiny_data: MultiscaleData) -> None:
    p = plan(variants=("rgcn_fine", "msgl"))
    folds = plan_folds(p, tiny_data)
    cells = cv_cells(p, folds)
    assert {(c.variant, c.repeat, c.fold, c.seed) for c in cells} == {
        (v, r, k, s) for v in ("rgcn_fine", "msgl") for r in range(2) for k in range(2) for s in (1, 2)}
    assert {c.config.mask_seed - BASE.mask_seed for c in cells} == {0, 1}
    assert all(c.config.mask_seed == BASE.mask_seed + c.repeat for c in cells)
    fixed = cv_cells(plan(resample_mask=False), folds)
    assert {c.config.mask_seed for c in fixed} == {BASE.mask_seed}


def test_repeats_that_repeat_a_partition_need_a_resampled_mask(tiny_data: MultiscaleData) -> None:
    # The tiny tree's 3 subbasin blocks split into 2 folds the same way in repeats 1 and 2.
    half = BASE.with_overrides(sparsity=0.5)
    folds = plan_folds(plan(scheme="subbasin", buffer_hops=None, base=half), tiny_data)  # masks resampled: allowed
    assert {frozenset(f.segments) for f in folds[0].folds} == {frozenset(f.segments) for f in folds[1].folds}
    message = "repeats 1 and 2 of basin 'drb' give the same partition into 2 folds \\(subbasin scheme, 3 blocks\\)"
    with pytest.raises(ValueError, match=message):
        plan_folds(plan(scheme="subbasin", buffer_hops=None, base=half, resample_mask=False), tiny_data)
    with pytest.raises(ValueError, match=message):
        plan_folds(plan(scheme="subbasin", buffer_hops=None), tiny_data)  # sparsity 1: one mask
    assert len(plan_folds(plan(scheme="segment", resample_mask=False), tiny_data)) == 2  # distinct partitions


def test_a_buffer_that_leaves_nothing_to_train_on_is_refused_with_the_counts(tiny_data: MultiscaleData) -> None:
    # On the tiny tree (101 → 103 → 104, the only gauged segments are 101 and 104) one hop of buffer always
    # withholds the other gauged segment from one fold's training set.
    with pytest.raises(ValueError, match=r"fold \d: weight \d+, 1 observed reaches, \d+ test obs, 0 training obs"):
        plan_folds(plan(buffer_hops=1), tiny_data)


def test_the_runs_own_holdout_never_enters_a_fold(tiny_data: MultiscaleData) -> None:
    p = plan(base=BASE.with_overrides(holdout_segments=[105], sparsity=0.5))  # 4 segments: partitions repeat
    for cell in cv_cells(p, plan_folds(p, tiny_data)):
        assert 105 not in cell.test_segments and 105 in cell.config.holdout_segments


def test_buffer_segments_is_a_strict_keyed_config_field() -> None:
    assert RunConfig().key("d") == RunConfig.from_dict({"buffer_segments": []}).key("d")  # older runs keep their key
    buffered = RunConfig.from_dict({"buffer_segments": ["104", 103]})
    assert buffered.buffer_segments == (103, 104) and buffered.key("d") != RunConfig().key("d")
    assert RunConfig.from_yaml_text(buffered.to_yaml()) == buffered
    with pytest.raises(ValueError, match=r"buffer_segments must not repeat holdout_segments, got \[104\] in both"):
        RunConfig.from_dict({"buffer_segments": [104], "holdout_segments": [104]})
    with pytest.raises(ValueError, match="buffer_segments must be integer seg_id_nat values"):
        RunConfig.from_dict({"buffer_segments": ["x"]})


def test_buffer_reaches_are_scored_neither_as_gauged_nor_held_out(tiny_data: MultiscaleData) -> None:
    cfg = BASE.with_overrides(buffer_segments=[104])
    prepared = prepare(tiny_data, cfg)
    fit = prepared.split_days["train"] | prepared.split_days["val"]
    assert np.isnan(prepared.y_fine[np.ix_(fit, prepared.parent == 3)]).all()
    predictions = xr.Dataset(
        {"prediction": ((TIME, REACH), prepared.y_fine_all + 1), "water_temp_obs": ((TIME, REACH), prepared.y_fine_all)},
        coords={TIME: prepared.time, REACH: prepared.reach_ids.astype(str),
                PARENT_SEGMENT: (REACH, prepared.segment_ids[prepared.parent])})
    metrics = evaluate(predictions, cfg)
    assert metrics.holdout is None and not [r for r in metrics.fine.per_node if r.startswith("104_")]


@pytest.mark.parametrize(("changes", "message"), [
    ({"seeds": (1,)}, "seeds must list at least 2 different seeds"),
    ({"seeds": (1, 1)}, "seeds must list at least 2 different seeds"),
    ({"variants": ("rgcn_fin",)}, "did you mean 'rgcn_fine'"),
    ({"scheme": "kriging"}, "unknown cv scheme 'kriging'"),
    ({"n_folds": 1}, "folds must be >= 2"),
    ({"repeats": 0}, "repeats must be >= 1"),
    ({"buffer_hops": -1}, "buffer_hops must be >= 0"),
])
def test_plan_rejects_bad_input(changes: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        plan(**changes)
