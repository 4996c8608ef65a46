"""Ensembles as labelled outputs and their evaluation (docs/probabilistic.md §5).

:func:`summarise_members` turns (member, time, reach) members into the per reach-day summary written to a
probabilistic run's ``predictions.nc``; :func:`evaluate_ensemble` scores members on the test periods overall,
per calendar month, per reach, and the held-out reaches apart, as a typed
:class:`~msgl_core.evaluate.record.ProbabilisticRecord`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from msgl_core.config import RunConfig
from msgl_core.data.splits import period_mask
from msgl_core.dims import PARENT_SEGMENT, REACH, SEGMENT, TIME
from msgl_core.evaluate.metrics import MIN_GROUP_OBS
from msgl_core.evaluate.probabilistic import (
    THRESHOLDS,
    exceedance_probability,
    probabilistic_scores,
    rank_histogram,
    reliability_bins,
)
from msgl_core.evaluate.record import ProbabilisticRecord, ProbabilisticSection

MEMBER = "member"
#: Quantile levels of the summary, written as ``prediction_q05`` … ``prediction_q95``.
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)


def exceedance_variable(threshold: float) -> str:
    """The ``predictions.nc`` variable of P(T > ``threshold`` °C) in an ensemble run: ``p_exceed_20`` for 20."""
    return f"p_exceed_{threshold:g}"


def quantile_variable(level: float) -> str:
    """The ``predictions.nc`` variable of an ensemble quantile: ``prediction_q05`` for ``level`` 0.05."""
    return f"prediction_q{round(level * 100):02d}"


def summarise_members(members: xr.DataArray, coarse_debiased: xr.DataArray | None = None,
                      attrs: dict[str, str | float | int] | None = None) -> xr.Dataset:
    """The per reach-day summary of an ensemble.

    Args:
        members: (member, time, reach) °C (NaN where a member-day has no value, e.g. a NaN coarse source).
        coarse_debiased: (time, segment) debiased coarse °C before any coarse noise, written beside it.
        attrs: dataset attributes (debias method, ε, γ, σ_c, sampler, steps, temporal coherence, ...).

    Returns: Dataset with ``prediction`` (ensemble mean, °C, so that deterministic metrics and views work
    unchanged), ``prediction_q05`` … ``prediction_q95`` (°C), ``p_exceed_20`` and ``p_exceed_25`` (member
    fractions above 20 and 25 °C, 0–1), ``n_members`` (finite members per reach-day) and
    ``coarse_debiased``; every variable has ``units`` and ``long_name``; coordinates as ``members``.
    """
    members = members.transpose(MEMBER, TIME, REACH)
    values = members.values
    finite = np.isfinite(values).all(axis=0)
    coords = {k: v for k, v in members.coords.items() if MEMBER not in v.dims}
    ds = xr.Dataset(coords=coords, attrs=dict(attrs or {}))
    ds["prediction"] = ((TIME, REACH), values.mean(axis=0),
                        {"units": "degC", "long_name": "ensemble mean of daily mean water temperature"})
    for level, q in zip(QUANTILES, np.quantile(values, QUANTILES, axis=0), strict=True):
        ds[quantile_variable(level)] = ((TIME, REACH), q, {
            "units": "degC", "long_name": f"{level:.0%} quantile of the ensemble of daily mean water temperature"})
    ensemble = np.moveaxis(values, 0, -1)
    for threshold in THRESHOLDS:
        ds[exceedance_variable(threshold)] = ((TIME, REACH), exceedance_probability(ensemble, threshold), {
            "units": "1", "long_name": f"probability that daily mean water temperature exceeds {threshold:g} degC"})
    ds["n_members"] = ((TIME, REACH), np.where(finite, members.sizes[MEMBER], 0).astype(np.int16),
                       {"units": "1", "long_name": "number of ensemble members"})
    if coarse_debiased is not None:
        ds["coarse_debiased"] = coarse_debiased.transpose(TIME, SEGMENT).assign_attrs(
            units="degC", long_name="debiased coarse daily mean water temperature (before coarse noise)")
    return ds


def evaluate_ensemble(members: xr.DataArray, observed: xr.DataArray, cfg: RunConfig,
                      reference: xr.DataArray | None = None) -> ProbabilisticRecord:
    """Ensemble scores on the test periods against the unmasked observations.

    Args:
        members: (member, time, reach) °C, with the ``parent_segment`` coordinate on ``reach``.
        observed: (time, reach) unmasked observations, °C, on the same coordinates.
        cfg: the run's config (test periods, hold-out segments).
        reference: (time, reach) °C deterministic base-run prediction for the CRPSS (None: no CRPSS).

    Raises ValueError if the coordinates of the arrays differ.
    """
    members = members.transpose(MEMBER, TIME, REACH)
    arrays = [observed] + ([reference] if reference is not None else [])
    for other in arrays:
        for dim in (TIME, REACH):
            if not np.array_equal(other[dim].values, members[dim].values):
                raise ValueError(f"members and observations/reference must share the {dim!r} coordinate")
    time = pd.DatetimeIndex(members[TIME].values)
    test = period_mask(time, cfg.test_periods)
    ens = np.moveaxis(members.values[:, test], 0, -1)  # (time, reach, M)
    obs = observed.transpose(TIME, REACH).values[test]
    ref = reference.transpose(TIME, REACH).values[test] if reference is not None else None
    held = np.isin(members[PARENT_SEGMENT].values, cfg.holdout_segments)
    months, reaches = time[test].month.to_numpy(), members[REACH].values.astype(str)

    def section(pick: np.ndarray) -> ProbabilisticSection:
        e, o, r = ens[:, pick], obs[:, pick], None if ref is None else ref[:, pick]
        per_month = {m: probabilistic_scores(e[months == m], o[months == m], None if r is None else r[months == m],
                                             MIN_GROUP_OBS) for m in range(1, 13)}
        per_node = {str(node): probabilistic_scores(e[:, k:k + 1], o[:, k:k + 1],
                                                    None if r is None else r[:, k:k + 1], MIN_GROUP_OBS)
                    for k, node in enumerate(reaches[pick]) if np.isfinite(o[:, k]).any()}
        return ProbabilisticSection(probabilistic_scores(e, o, r), per_month, per_node,
                                    tuple(int(c) for c in rank_histogram(e, o)),
                                    tuple(reliability_bins(e, o, t) for t in THRESHOLDS))

    return ProbabilisticRecord(members.sizes[MEMBER], section(~held), section(held) if held.any() else None)
