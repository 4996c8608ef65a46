"""Spatial folds on a synthetic river tree built in code, and on the tiny bundle's tree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from msgl_core.config import RunConfig
from msgl_core.cv.folds import (
    FoldRules,
    Folds,
    SegmentTree,
    make_folds,
    read_folds,
    segment_tree,
    within_hops,
    write_folds,
)
from msgl_core.data import MultiscaleData
from tests.tiny_bundle import N_FINE_OBS, PERIODS, SEGMENT_IDS

LOOSE = FoldRules(min_reaches=1, min_test_obs=1)


def random_tree(n: int = 60, seed: int = 0) -> SegmentTree:
    """A random river tree: segment i drains to one of the segments before it (0 is the outlet); about a
    third of the segments are unobserved."""
    rng = np.random.default_rng(seed)
    downstream = np.array([-1] + [int(rng.integers(0, i)) for i in range(1, n)])
    observed = rng.random(n) < 0.7
    weight = np.where(observed, rng.integers(50, 400, n), 0)
    test_obs = weight // 4
    return SegmentTree(1000 + np.arange(n), downstream, weight, test_obs, np.where(observed, rng.integers(1, 4, n), 0),
                       weight - test_obs)


def test_every_segment_but_the_holdout_is_in_exactly_one_fold_per_repeat() -> None:
    tree = random_tree()
    holdout = (1003, 1010, 1033)
    for scheme in ("subbasin", "segment"):
        for repeat in range(3):
            folds = make_folds(tree, "synthetic", scheme, 4, repeat, holdout, rules=LOOSE)
            assigned = [s for fold in folds.folds for s in fold.segments]
            assert sorted(assigned) == sorted(set(tree.segment_ids.tolist()) - set(holdout))
            assert not set(holdout) & {s for fold in folds.folds for s in fold.buffer}
            assert sorted(s for block in folds.blocks for s in block) == sorted(assigned)


def test_subbasin_blocks_are_connected_subtrees_of_about_w_over_3k() -> None:
    tree = random_tree()
    position = {int(s): i for i, s in enumerate(tree.segment_ids)}
    folds = make_folds(tree, "synthetic", "subbasin", 3, 0, rules=LOOSE)
    assert len(folds.blocks) >= 3
    for block in folds.blocks:
        members = {position[s] for s in block}
        edges = sum(int(tree.downstream[m]) in members for m in members)
        assert edges == len(members) - 1  # a forest with one component: a connected subtree
    # Every block but the last one at the outlet reaches the threshold.
    threshold = tree.weight.sum() / 9
    heavy = [tree.weight[[position[s] for s in block]].sum() >= threshold for block in folds.blocks]
    assert sum(heavy) >= len(folds.blocks) - 1


def test_fold_weights_lie_within_the_balance_of_w_over_k() -> None:
    tree = random_tree()
    for scheme in ("subbasin", "segment"):
        folds = make_folds(tree, "synthetic", scheme, 3, 1, rules=LOOSE)
        target = tree.weight.sum() / 3
        assert all(abs(f.weight / target - 1) <= LOOSE.balance for f in folds.folds)
        assert sum(f.weight for f in folds.folds) == tree.weight.sum()
        assert sum(f.test_obs for f in folds.folds) == tree.test_obs.sum()


def test_assignment_is_reproducible_and_changes_across_repeats_and_basins() -> None:
    tree = random_tree()
    first = make_folds(tree, "synthetic", "segment", 4, 0, rules=LOOSE)
    assert make_folds(tree, "synthetic", "segment", 4, 0, rules=LOOSE) == first
    others = [make_folds(tree, "synthetic", "segment", 4, r, rules=LOOSE).fold_of() for r in (1, 2)]
    assert all(other != first.fold_of() for other in others)
    assert make_folds(tree, "other-basin", "segment", 4, 0, rules=LOOSE).fold_of() != first.fold_of()


def test_buffer_is_h_hops_up_or_downstream_without_siblings() -> None:
    # 0 ← 1 ← 2 ← 3, and 4 → 1 (a tributary of 1), 5 → 0.
    downstream = np.array([-1, 0, 1, 2, 1, 0])
    start = np.zeros(6, bool)
    start[2] = True
    assert within_hops(downstream, start, 0).tolist() == start.tolist()
    assert np.flatnonzero(within_hops(downstream, start, 1)).tolist() == [1, 2, 3]  # not 4: a sibling of 2
    assert np.flatnonzero(within_hops(downstream, start, 2)).tolist() == [0, 1, 2, 3]
    tree = SegmentTree(np.arange(6) + 1, downstream, np.full(6, 100), np.full(6, 30), np.ones(6, int), np.full(6, 70))
    folds = make_folds(tree, "chain", "segment", 2, 0, rules=LOOSE)
    for fold in folds.folds:
        assert not set(fold.buffer) & set(fold.segments)
        assert fold.buffer_obs == 70 * len(fold.buffer)
    assert folds.buffer_hops == 1  # the segment scheme's default
    assert all(f.buffer == () for f in make_folds(tree, "chain", "subbasin", 2, 0, rules=LOOSE).folds)


def test_invalid_folds_raise_with_the_counts() -> None:
    tree = random_tree()
    with pytest.raises(ValueError, match=r"each fold needs >= 3 observed reaches, >= 100000 test-period fine "
                                         r"observations and some training observations \(fold 1: weight \d+, \d+ observed reaches, \d+ test obs, \d+ "
                                         r"training obs;"):
        make_folds(tree, "synthetic", "subbasin", 3, 0, rules=FoldRules(min_test_obs=100_000))
    lopsided = SegmentTree(np.array([1, 2, 3]), np.array([-1, 0, 0]), np.array([1000, 10, 10]), np.array([300] * 3),
                           np.array([3] * 3), np.array([700] * 3))
    with pytest.raises(ValueError, match=r"within ±25% of W/K = 510 observed reach-days in 200 draws"):
        make_folds(lopsided, "lopsided", "segment", 2, 0, buffer_hops=0)


@pytest.mark.parametrize(("scheme", "k", "holdout", "message"), [
    ("kriging", 3, (), "unknown cv scheme 'kriging'; expected one of subbasin, segment"),
    ("subbasin", 1, (), r"folds must be >= 2"),
    ("subbasin", 40, (), r"folds \(40\) is larger than the number of subbasin blocks \(\d+\)"),
    ("segment", 3, tuple(range(1000, 1060)), "no observed fine reach-days outside the hold-out segments"),
])
def test_bad_fold_requests_say_what_is_wrong(scheme: str, k: int, holdout: tuple[int, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make_folds(random_tree(), "synthetic", scheme, k, 0, holdout, rules=LOOSE)


def test_folds_file_round_trips_and_rejects_other_files(tmp_path: Path) -> None:
    tree = random_tree()
    folds = [make_folds(tree, "synthetic", "subbasin", 3, r, rules=LOOSE) for r in range(2)]
    path = write_folds(tmp_path / "folds.json", folds, LOOSE)
    assert read_folds(path) == folds
    assert not list(tmp_path.glob(".*.tmp"))
    (tmp_path / "bad.json").write_text('{"format": 1, "repeats": [{"basin": "x"}]}')
    with pytest.raises(ValueError, match=r"bad.json: not a msgl folds file .*KeyError"):
        read_folds(tmp_path / "bad.json")
    assert isinstance(folds[0], Folds)


def test_segment_tree_counts_the_tiny_bundle(tiny_data: MultiscaleData) -> None:
    tree = segment_tree(tiny_data, RunConfig(basin="drb", **PERIODS))
    assert tree.segment_ids.tolist() == SEGMENT_IDS
    assert tree.weight.sum() == N_FINE_OBS and tree.weight.tolist() == [91, 0, 0, 31, 0]
    assert tree.test_reaches.tolist() == [1, 0, 0, 1, 0]
    assert (tree.test_obs + tree.fit_obs).tolist() == tree.weight.tolist()  # the periods cover the record
    with pytest.raises(ValueError, match="SegmentTree.weight has 2 values for 5 segments"):
        SegmentTree(tree.segment_ids, tree.downstream, tree.weight[:2], tree.test_obs, tree.test_reaches, tree.fit_obs)
