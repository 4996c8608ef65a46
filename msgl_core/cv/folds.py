"""Spatial cross-validation folds: blocks of NHM segments that respect the river tree.

The unit of hold-out is the segment (all its fine reaches, at both scales). A segment's weight is its
number of observed fine reach-days over the whole record. Two schemes:

* ``subbasin``: walk the coarse tree from the leaves to the outlet, accumulating subtree weight, and cut
  the subtree off as a block when it reaches W/(3K) (W: total weight, K: folds); what is left at an
  outlet is a block too. Every block is a connected subtree (hold-out segments count as its links).
* ``segment``: every segment is a block (finer, but test reaches border training reaches: use a buffer).

Blocks go to folds greedily, in a random order per repeat, each to the fold with the smallest weight so
far (Roberts et al. 2017, Ecography 40:913, structured blocks). A draw is accepted when every fold weight
lies within ±``balance`` of W/K and every fold has enough observed reaches and test observations; up to
``draws`` draws are tried. The random stream is seeded by (basin, scheme, K, repeat), so an assignment
is reproducible and repeats differ. The run's own hold-out segments never enter a fold.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from msgl_core.config import RunConfig
from msgl_core.data.basins import check_domain, subnetwork
from msgl_core.data.build import MultiscaleData
from msgl_core.data.splits import split_days
from msgl_core.data.timeseries import OBS
from msgl_core.dims import REACH, TIME
from msgl_core.runs import write_atomic

SCHEMES = ("subbasin", "segment")
#: Buffer hops when none is given: leakage along the river is what the ``segment`` scheme risks.
DEFAULT_BUFFER_HOPS = {"subbasin": 0, "segment": 1}
FOLDS_FILE = "folds.json"
FOLDS_FORMAT = 1


@dataclass(frozen=True)
class SegmentTree:
    """A basin's coarse river tree with the fine observation counts fold building needs.

    Attributes:
        segment_ids: (segments,) ``seg_id_nat``.
        downstream: (segments,) position of each segment's downstream segment, -1 at an outlet.
        weight: (segments,) observed fine reach-days, all periods.
        test_obs: (segments,) observed fine reach-days in the test periods.
        test_reaches: (segments,) reaches with at least one test-period observation.
        fit_obs: (segments,) observed fine reach-days in the training and validation periods.

    Raises ValueError if the arrays differ in length.
    """

    segment_ids: np.ndarray
    downstream: np.ndarray
    weight: np.ndarray
    test_obs: np.ndarray
    test_reaches: np.ndarray
    fit_obs: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.segment_ids)
        for name in ("downstream", "weight", "test_obs", "test_reaches", "fit_obs"):
            if len(getattr(self, name)) != n:
                raise ValueError(f"SegmentTree.{name} has {len(getattr(self, name))} values for {n} segments")

    def children(self) -> list[list[int]]:
        """Upstream neighbours (positions) of every segment."""
        out: list[list[int]] = [[] for _ in self.segment_ids]
        for position, down in enumerate(self.downstream):
            if down >= 0:
                out[int(down)].append(position)
        return out


def segment_tree(data: MultiscaleData, cfg: RunConfig) -> SegmentTree:
    """The tree of ``cfg.basin`` with counts over ``cfg``'s periods. Raises ValueError for an unknown basin."""
    check_domain(data.network, cfg.basin)
    net = subnetwork(data.network, cfg.basin)
    observed = np.isfinite(data.fine[OBS].sel({REACH: net.reaches.index.to_numpy()}).values)  # (time, reaches)
    days = split_days(pd.DatetimeIndex(data.fine[TIME].values), cfg)
    parent, n = net.reach_parent_index, len(net.segments)

    def per_segment(per_reach: np.ndarray) -> np.ndarray:
        return np.bincount(parent, weights=per_reach, minlength=n).astype(np.int64)

    test = observed[days["test"]]
    return SegmentTree(net.segments.index.to_numpy(), net.segment_to_index, per_segment(observed.sum(axis=0)),
                       per_segment(test.sum(axis=0)), per_segment(test.any(axis=0)),
                       per_segment(observed[days["train"] | days["val"]].sum(axis=0)))


@dataclass(frozen=True)
class FoldRules:
    """When an assignment is accepted (spec of the protocol, docs/cv.md).

    Attributes:
        min_reaches: fewest reaches with test observations per fold.
        min_test_obs: fewest observed fine test-period reach-days per fold.
        balance: largest relative deviation of a fold's weight from W/K.
        draws: random assignments tried before giving up.

    Raises ValueError for a negative count, ``balance`` < 0 or ``draws`` < 1.
    """

    min_reaches: int = 3
    min_test_obs: int = 200
    balance: float = 0.25
    draws: int = 200

    def __post_init__(self) -> None:
        if self.min_reaches < 0 or self.min_test_obs < 0:
            raise ValueError(f"fold minimums must be >= 0, got {self.min_reaches} reaches, {self.min_test_obs} obs")
        if self.balance < 0:
            raise ValueError(f"fold balance must be >= 0 (a fraction of W/K), got {self.balance}")
        if self.draws < 1:
            raise ValueError(f"fold draws must be >= 1, got {self.draws}")


@dataclass(frozen=True)
class Fold:
    """One test fold: its segments, the buffer withheld from training around them, and its counts
    (weight and test observations in observed fine reach-days; buffer_obs: fit-period reach-days the
    buffer removes from training; train_obs: fit-period reach-days left for training and validation,
    before the sparsity mask)."""

    segments: tuple[int, ...]
    buffer: tuple[int, ...]
    weight: int
    test_obs: int
    test_reaches: int
    buffer_obs: int
    train_obs: int


@dataclass(frozen=True)
class Folds:
    """The fold assignment of one repeat (blocks are tuples of ``seg_id_nat``)."""

    basin: str
    scheme: str
    repeat: int
    buffer_hops: int
    blocks: tuple[tuple[int, ...], ...]
    folds: tuple[Fold, ...]

    @property
    def n_folds(self) -> int:
        """K."""
        return len(self.folds)

    def fold_of(self) -> dict[int, int]:
        """``seg_id_nat`` → fold index, for every assigned segment."""
        return {segment: k for k, fold in enumerate(self.folds) for segment in fold.segments}

    def to_dict(self) -> dict:
        """Plain values (lists for tuples), ready for JSON."""
        return json.loads(json.dumps(asdict(self)))

    @classmethod
    def from_dict(cls, values: dict) -> Folds:
        """Inverse of :meth:`to_dict`. Raises ValueError for missing or malformed fields."""
        try:
            folds = tuple(Fold(tuple(int(s) for s in f["segments"]), tuple(int(s) for s in f["buffer"]),
                               *(int(f[c]) for c in ("weight", "test_obs", "test_reaches", "buffer_obs",
                                                     "train_obs")))
                          for f in values["folds"])
            return cls(str(values["basin"]), str(values["scheme"]), int(values["repeat"]), int(values["buffer_hops"]),
                       tuple(tuple(int(s) for s in block) for block in values["blocks"]), folds)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"not a fold assignment ({type(error).__name__}: {error})") from None


def check_scheme(scheme: str, n_folds: int) -> None:
    """Raise ValueError for an unknown scheme or fewer than 2 folds."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown cv scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    if n_folds < 2:
        raise ValueError(f"folds must be >= 2 (K-fold cross-validation), got {n_folds}")


def make_folds(tree: SegmentTree, basin: str, scheme: str, n_folds: int, repeat: int,
               holdout: Sequence[int] = (), buffer_hops: int | None = None,
               rules: FoldRules = FoldRules()) -> Folds:
    """Assign the segments of ``tree`` (except ``holdout``) to ``n_folds`` spatial folds for ``repeat``.

    Args:
        tree: the basin's tree with counts (:func:`segment_tree`).
        basin, scheme, n_folds, repeat: seed the assignment (same values, same folds).
        holdout: the run's own hold-out ``seg_id_nat``: in no fold and no buffer.
        buffer_hops: segments within this many hops up- or downstream of a test segment are withheld from
            training (default :data:`DEFAULT_BUFFER_HOPS` of the scheme).
        rules: validity rules.

    Raises ValueError for an unknown scheme, K < 2, negative ``buffer_hops``, a hold-out that leaves no
    observed segment, K larger than the number of blocks, or when no draw meets ``rules`` and leaves every
    fold fine observations to train on (naming each fold's weight, observed reaches, test and training
    observations).
    """
    check_scheme(scheme, n_folds)
    hops = DEFAULT_BUFFER_HOPS[scheme] if buffer_hops is None else buffer_hops
    if hops < 0:
        raise ValueError(f"buffer_hops must be >= 0, got {hops}")
    held = np.isin(tree.segment_ids, np.asarray(holdout, dtype=np.int64))
    weight = np.where(held, 0, tree.weight)
    total = int(weight.sum())
    if total == 0:
        raise ValueError(f"basin {basin!r} has no observed fine reach-days outside the hold-out segments "
                         f"{sorted(int(s) for s in holdout)}: every fold would be empty")
    blocks = _subbasin_blocks(tree, weight, held, total / (3 * n_folds)) if scheme == "subbasin" else \
        [[int(p)] for p in np.flatnonzero(~held)]
    if n_folds > len(blocks):
        raise ValueError(f"folds ({n_folds}) is larger than the number of {scheme} blocks ({len(blocks)}) of "
                         f"basin {basin!r}: lower --folds or use --cv-scheme segment")
    rng = np.random.default_rng([zlib.crc32(basin.encode()), SCHEMES.index(scheme), n_folds, repeat])
    block_weight = np.array([weight[b].sum() for b in blocks])
    target = total / n_folds
    first_balanced: Folds | None = None
    best: tuple[float, Folds] | None = None
    for _ in range(rules.draws):
        fold_of_block = _greedy(block_weight, n_folds, rng.permutation(len(blocks)))
        members = [np.concatenate([blocks[b] for b in np.flatnonzero(fold_of_block == k)]).astype(int)
                   if (fold_of_block == k).any() else np.zeros(0, int) for k in range(n_folds)]
        folds = _folds(tree, basin, scheme, repeat, hops, held, blocks, members)
        deviation = max(abs(f.weight / target - 1) for f in folds.folds)
        if best is None or deviation < best[0]:
            best = (deviation, folds)
        if deviation > rules.balance:
            continue
        first_balanced = first_balanced or folds
        if all(f.test_reaches >= rules.min_reaches and f.test_obs >= rules.min_test_obs and f.train_obs > 0
               for f in folds.folds):
            return folds
    assert best is not None  # rules.draws >= 1
    table = "; ".join(f"fold {k + 1}: weight {f.weight}, {f.test_reaches} observed reaches, {f.test_obs} test obs, "
                      f"{f.train_obs} training obs" for k, f in enumerate((first_balanced or best[1]).folds))
    if first_balanced is None:
        raise ValueError(f"no assignment of the {len(blocks)} {scheme} blocks of basin {basin!r} to {n_folds} folds "
                         f"keeps every fold weight within ±{rules.balance:.0%} of W/K = {target:.0f} observed "
                         f"reach-days in {rules.draws} draws (best: {table}); lower --folds or use another scheme")
    raise ValueError(f"invalid folds for basin {basin!r}, {scheme}, K = {n_folds}: each fold needs >= "
                     f"{rules.min_reaches} observed reaches, >= {rules.min_test_obs} test-period fine "
                     f"observations and some training observations ({table}); lower --folds or --buffer-hops, "
                     "or choose a larger basin")


def _subbasin_blocks(tree: SegmentTree, weight: np.ndarray, held: np.ndarray, threshold: float) -> list[list[int]]:
    """Connected blocks (positions, hold-out left out) cut from the leaves up at ``threshold`` weight."""
    children = tree.children()
    pending: list[list[int]] = [[] for _ in tree.segment_ids]
    pending_weight = np.zeros(len(tree.segment_ids))
    blocks: list[list[int]] = []
    for node in _post_order(tree.downstream, children):
        pending[node] = [node] + [p for child in children[node] for p in pending[child]]
        pending_weight[node] = weight[node] + sum(pending_weight[child] for child in children[node])
        if pending_weight[node] >= threshold or tree.downstream[node] < 0:
            block = [p for p in pending[node] if not held[p]]
            if block:
                blocks.append(sorted(block))
            pending[node], pending_weight[node] = [], 0.0
    return blocks


def _post_order(downstream: np.ndarray, children: list[list[int]]) -> list[int]:
    """Every node after all of its upstream nodes (iterative, from each outlet)."""
    order: list[int] = []
    for outlet in np.flatnonzero(downstream < 0):
        stack = [(int(outlet), False)]
        while stack:
            node, expanded = stack.pop()
            if expanded:
                order.append(node)
                continue
            stack.append((node, True))
            stack.extend((child, False) for child in children[node])
    return order


def _greedy(block_weight: np.ndarray, n_folds: int, order: np.ndarray) -> np.ndarray:
    """Fold of each block: in ``order``, each to the lightest fold so far (lowest index on ties)."""
    fold_weight = np.zeros(n_folds)
    fold_of_block = np.empty(len(block_weight), dtype=int)
    for block in order:
        k = int(np.argmin(fold_weight))
        fold_of_block[block] = k
        fold_weight[k] += block_weight[block]
    return fold_of_block


def _folds(tree: SegmentTree, basin: str, scheme: str, repeat: int, hops: int, held: np.ndarray,
           blocks: list[list[int]], members: list[np.ndarray]) -> Folds:
    ids = tree.segment_ids
    folds = []
    for m in members:
        test = np.zeros(len(ids), bool)
        test[m] = True
        buffer = within_hops(tree.downstream, test, hops) & ~test & ~held
        folds.append(Fold(tuple(sorted(int(s) for s in ids[m])), tuple(int(s) for s in ids[buffer]),
                          int(tree.weight[m].sum()), int(tree.test_obs[m].sum()), int(tree.test_reaches[m].sum()),
                          int(tree.fit_obs[buffer].sum()), int(tree.fit_obs[~(test | buffer | held)].sum())))
    return Folds(basin, scheme, repeat, hops, tuple(tuple(int(s) for s in ids[b]) for b in blocks), tuple(folds))


def within_hops(downstream: np.ndarray, start: np.ndarray, hops: int) -> np.ndarray:
    """Segments reachable from ``start`` (bool, (segments,)) in at most ``hops`` steps along the flow,
    either all downstream or all upstream (siblings are not neighbours). Returns bool (segments,).

    Example (0 is the outlet; 1 and 3 drain to it, 2 drains to 1):
        >>> within_hops(np.array([-1, 0, 1, 0]), np.array([False, True, False, False]), 1).tolist()
        [True, True, True, False]
    """
    down = start.copy()
    up = start.copy()
    has_down = downstream >= 0
    for _ in range(hops):
        step_down = np.zeros_like(down)
        step_down[downstream[down & has_down]] = True
        step_up = has_down & up[np.where(has_down, downstream, 0)]
        down, up = down | step_down, up | step_up
    return down | up


def write_folds(path: str | Path, folds: Sequence[Folds], rules: FoldRules) -> Path:
    """Write every repeat's assignment and the rules to ``path`` (``folds.json``) atomically. Returns it.

    Raises OSError if it cannot be written.
    """
    path = Path(path)
    values = {"format": FOLDS_FORMAT, "rules": asdict(rules), "repeats": [f.to_dict() for f in folds]}
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(values, indent=2)))
    return path


def read_folds(path: str | Path) -> list[Folds]:
    """The assignments in a ``folds.json``, by repeat.

    Raises FileNotFoundError if it does not exist; ValueError naming the file when it is not a fold file.
    """
    path = Path(path)
    try:
        values = json.loads(path.read_text())
        if values.get("format") != FOLDS_FORMAT:
            raise ValueError(f"format {values.get('format')!r}, expected {FOLDS_FORMAT}")
        return [Folds.from_dict(v) for v in values["repeats"]]
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, AttributeError, ValueError) as error:
        raise ValueError(f"{path}: not a msgl folds file ({error})") from None
