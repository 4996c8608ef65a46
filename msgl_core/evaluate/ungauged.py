"""Ungauged-reach evaluation: hold-out segments spread over a basin, and held-out skill per segment.

A fair sparse-data test withholds every observation of some segments at both scales (``holdout_segments``,
:func:`msgl_core.data.dataset.prepare`), so no coarse observation from the same sites leaks their data
(docs/methods.md §10.2). :func:`choose_holdout` picks those segments by one documented rule;
:func:`heldout_skill` scores a trained run on them, per segment and for reaches below a dam and the rest
(the reservoir-tailwater question of docs/methods.md §2.9).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import xarray as xr

from msgl_core.config import TEST_PERIODS, Period, RunConfig
from msgl_core.data.basins import check_domain
from msgl_core.data.build import MultiscaleData
from msgl_core.data.network import PROJECTED_CRS
from msgl_core.data.reservoirs import DAM_DECAY_KM
from msgl_core.data.splits import period_mask
from msgl_core.data.timeseries import OBS
from msgl_core.dims import PARENT_SEGMENT, TIME
from msgl_core.evaluate.metrics import MIN_GROUP_OBS, skill
from msgl_core.runs import Run

#: Fewest fine test-period observations (reach-days) a segment needs to be a hold-out candidate.
MIN_HOLDOUT_OBS = 100
#: A reach counts as a tailwater when it lies at most this far below a dam along the channel, km.
TAILWATER_KM = DAM_DECAY_KM
#: Groups of :func:`heldout_skill`'s ``groups`` table.
GROUPS = ("all", "below_dam", "rest")


def choose_holdout(data: MultiscaleData, basin: str, n: int, below_dam: int = 0,
                   test_periods: Sequence[Period] = TEST_PERIODS, min_obs: int = MIN_HOLDOUT_OBS) -> tuple[int, ...]:
    """``n`` hold-out segments of ``basin``, spread over it (deterministic).

    Candidates are the basin's segments whose reaches have at least ``min_obs`` fine observations in
    ``test_periods`` together. The first is the candidate with the most (among the tailwater ones when
    ``below_dam > 0``); each next one is the candidate
    whose midpoint (EPSG:5070) lies farthest from every segment chosen so far (farthest-point sampling),
    drawn from the tailwater candidates (a reach within :data:`TAILWATER_KM` below a dam) until
    ``below_dam`` of them are chosen, and from the others afterwards.

    Returns: sorted ``seg_id_nat``.

    Raises ValueError for an unknown basin, ``n < 1``, ``below_dam`` outside [0, n], or fewer candidates
    (of either kind) than asked for, with the counts.
    """
    if n < 1 or not 0 <= below_dam <= n:
        raise ValueError(f"need n >= 1 and 0 <= below_dam <= n, got n={n}, below_dam={below_dam}")
    segments = check_domain(data.network, basin)
    fine = data.fine
    test = period_mask(pd.DatetimeIndex(fine[TIME].values), test_periods)
    per_reach = fine[OBS].isel({TIME: test}).notnull().sum(TIME).to_series()
    parents = fine[PARENT_SEGMENT].to_series()
    counts = per_reach.groupby(parents).sum().reindex(segments, fill_value=0)
    tail = (fine["dam_distance_km"].to_series() <= TAILWATER_KM).groupby(parents).any().reindex(segments, fill_value=False)
    candidates = counts[counts >= min_obs].index.to_numpy()
    n_tail = int(tail[candidates].sum())
    if len(candidates) < n or n_tail < below_dam or len(candidates) - n_tail < n - below_dam:
        raise ValueError(f"basin {basin!r} has {len(candidates)} segments with >= {min_obs} test observations "
                         f"({n_tail} below a dam); asked for {n} ({below_dam} below a dam)")
    lines = data.network.segments.geometry.loc[candidates].to_crs(PROJECTED_CRS)
    middle = lines.interpolate(0.5, normalized=True)
    points = np.stack([middle.x.to_numpy(), middle.y.to_numpy()], axis=-1)
    is_tail, obs = tail[candidates].to_numpy(), counts[candidates].to_numpy()
    chosen: list[int] = []
    while len(chosen) < n:
        pool = np.flatnonzero(is_tail == (int(is_tail[chosen].sum()) < below_dam))
        pool = pool[~np.isin(pool, chosen)]
        if not chosen:
            chosen.append(int(pool[np.argmax(obs[pool])]))
            continue
        gap = np.linalg.norm(points[pool, None] - points[None, chosen], axis=-1).min(axis=1)
        chosen.append(int(pool[np.argmax(gap)]))
    return tuple(sorted(int(candidates[k]) for k in chosen))


def heldout_skill(predictions: xr.Dataset, cfg: RunConfig, data: MultiscaleData) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Test-period skill (°C) of a run's held-out reaches, against the unmasked observations.

    Args:
        predictions: the run's ``predictions.nc`` (``prediction`` and ``water_temp_obs``, (time, reach) °C).
        cfg: the run's config (``holdout_segments``, ``test_periods``).
        data: the processed dataset (its reaches' dam attributes).

    Returns:
        (segments, groups): ``segments`` indexed by held-out ``seg_id_nat`` with the scores of
        :class:`~msgl_core.evaluate.metrics.Scores` (NaN below :data:`MIN_GROUP_OBS` pairs), ``n_reaches``,
        ``below_dam`` (a reach of it lies within :data:`TAILWATER_KM` below a dam) and ``dam_name``;
        ``groups`` indexed by :data:`GROUPS`: all held-out reaches, those within :data:`TAILWATER_KM` below a
        dam, and the rest, each pooled over its reach-days.

    Raises ValueError if the run has no hold-out segments.
    """
    if not cfg.holdout_segments:
        raise ValueError(f"run of {cfg.variant} has no holdout_segments: nothing was held out")
    test = period_mask(pd.DatetimeIndex(predictions[TIME].values), cfg.test_periods)
    parents = predictions[PARENT_SEGMENT].values
    held = np.isin(parents, cfg.holdout_segments)
    pred = predictions["prediction"].values[test][:, held]
    obs = predictions["water_temp_obs"].values[test][:, held]
    reaches = predictions["reach"].values[held]
    distance = data.fine["dam_distance_km"].to_series().reindex(reaches).to_numpy()
    names = data.fine["dam_name"].to_series().reindex(reaches).to_numpy()
    tail = distance <= TAILWATER_KM
    rows = {}
    for segment in cfg.holdout_segments:
        mine = parents[held] == segment
        rows[segment] = {**vars(skill(pred[:, mine], obs[:, mine], MIN_GROUP_OBS)), "n_reaches": int(mine.sum()),
                         "below_dam": bool(tail[mine].any()),
                         "dam_name": next((str(x) for x in names[mine & tail]), "")}
    segments = pd.DataFrame.from_dict(rows, orient="index")
    segments.index.name = "seg_id_nat"
    groups = pd.DataFrame({name: vars(skill(pred[:, mask], obs[:, mask], MIN_GROUP_OBS))
                           for name, mask in zip(GROUPS, (np.ones_like(tail), tail, ~tail))}).T
    groups.index.name = "group"
    return segments, groups.astype({"n_obs": int})


def heldout_table(runs: Iterable[tuple[str, Run]], data: MultiscaleData) -> pd.DataFrame:
    """Held-out skill of many runs, one row per (run, group or segment).

    Args:
        runs: (label, run) pairs; the label names the comparison a run belongs to (e.g. its folder).
        data: the processed dataset.

    Returns: columns ``label, variant, sparsity, reservoir_features, seed, unit`` (a group of :data:`GROUPS`
    or a held-out ``seg_id_nat`` as text), ``below_dam``, ``dam_name`` and the scores (°C; ``n_obs``).

    Raises ValueError if a run has no hold-out segments.
    """
    rows: list[dict[str, object]] = []
    for label, run in runs:
        cfg = run.config
        segments, groups = heldout_skill(run.predictions(), cfg, data)
        key: dict[str, object] = {"label": label, "variant": cfg.variant, "sparsity": cfg.sparsity,
                                   "reservoir_features": cfg.reservoir_features, "seed": cfg.seed}
        for name, row in groups.iterrows():
            rows.append({**key, "unit": str(name), "below_dam": name == "below_dam", "dam_name": "",
                         **{str(k): v for k, v in row.items()}})
        for segment, row in segments.iterrows():
            rows.append({**key, "unit": str(segment), **{str(k): v for k, v in row.drop("n_reaches").items()}})
    return pd.DataFrame(rows)


def summarise_heldout(table: pd.DataFrame) -> pd.DataFrame:
    """Held-out RMSE (°C) mean and standard deviation over seeds, per label, variant, sparsity and unit of
    :func:`heldout_table` (``n_seeds`` counts the seeds with a finite RMSE; ``n_obs`` is per run)."""
    keys = ["label", "variant", "sparsity", "reservoir_features", "unit"]
    grouped = table.groupby(keys, sort=False)
    out = grouped["rmse"].agg(rmse_mean="mean", rmse_std="std", n_seeds="count")
    out["n_obs"] = grouped["n_obs"].max()
    return out.reset_index()
