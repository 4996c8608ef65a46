"""Evaluation of a run: test-period skill overall, per reach, per month, hold-out, coarse
(docs/methods.md §9.1), as a typed :class:`~msgl_core.evaluate.record.RunMetrics`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from msgl_core.config import RunConfig
from msgl_core.data.splits import period_mask, water_year
from msgl_core.dims import PARENT_SEGMENT, SEGMENT, TIME
from msgl_core.evaluate.metrics import MIN_GROUP_OBS, Scores, skill
from msgl_core.evaluate.record import RunMetrics, SkillSection


def evaluate(predictions: xr.Dataset, cfg: RunConfig, coarse_obs: xr.DataArray | None = None) -> RunMetrics:
    """Test-period scores (°C) against the unmasked observations.

    Args:
        predictions: output of :func:`msgl_core.evaluate.predict.predict_record`.
        cfg: the run's config (test periods, hold-out segments).
        coarse_obs: (time, segment) observed coarse temperature, for variants that predict it.

    Returns: :class:`RunMetrics` without ``training``; ``fine`` covers the gauged reaches (neither held out
    nor buffer), ``holdout`` the held-out reaches (only with hold-out segments).
    """
    time, test, pred, obs, held = _test_days(predictions, cfg)
    gauged = ~held & ~np.isin(predictions[PARENT_SEGMENT].values, cfg.buffer_segments)
    months = time[test].month.to_numpy()
    reaches = predictions["reach"].values
    coarse = None
    if "prediction_coarse" in predictions and coarse_obs is not None:
        segments = predictions[SEGMENT].values
        observed = coarse_obs.sel({TIME: predictions[TIME], SEGMENT: segments}).values[test]
        keep = ~np.isin(segments, cfg.holdout_segments + cfg.buffer_segments)
        coarse = skill(predictions["prediction_coarse"].values[test][:, keep], observed[:, keep])
    return RunMetrics(
        test_periods=tuple(cfg.test_periods),
        fine=_section(pred[:, gauged], obs[:, gauged], months, reaches[gauged]),
        holdout=_section(pred[:, held], obs[:, held], months, reaches[held]) if held.any() else None,
        coarse=coarse,
    )


def holdout_water_years(predictions: xr.Dataset, cfg: RunConfig) -> pd.DataFrame:
    """Squared errors of the held-out reaches summed per water year over the test periods: the blocks of the
    water-year bootstrap (docs/cv.md §4), on the same days and reaches as :func:`evaluate`'s ``holdout``.

    Returns one row per held-out reach and water year with observations: ``reach_id`` (str), ``water_year``
    (int, :func:`~msgl_core.data.splits.water_year`), ``n_obs`` and ``sse`` (°C², Σ (prediction − observed)²).
    Empty (same columns) without hold-out segments.
    """
    time, test, pred, obs, held = _test_days(predictions, cfg)
    error = (pred[:, held] - obs[:, held]) ** 2
    observed = np.isfinite(error)
    squared = np.where(observed, error, 0.0)
    years = water_year(time[test])
    unique = np.unique(years)
    shape = (len(unique), int(held.sum()))  # (water years, held-out reaches)
    n_obs = np.array([observed[years == y].sum(axis=0) for y in unique], dtype=int).reshape(shape)
    sse = np.array([squared[years == y].sum(axis=0) for y in unique]).reshape(shape)
    frame = pd.DataFrame({"reach_id": np.tile(predictions["reach"].values[held].astype(str), len(unique)),
                          "water_year": np.repeat(unique, held.sum()), "n_obs": n_obs.ravel(), "sse": sse.ravel()})
    return frame[frame["n_obs"] > 0].sort_values(["reach_id", "water_year"]).reset_index(drop=True)


def _test_days(predictions: xr.Dataset, cfg: RunConfig) -> tuple[pd.DatetimeIndex, np.ndarray, np.ndarray, np.ndarray,
                                                                 np.ndarray]:
    """The time axis, the (time,) test-day mask, the test days' (test time, reach) predictions and observations
    (°C) and the (reach,) mask of reaches in hold-out segments."""
    time = pd.DatetimeIndex(predictions[TIME].values)
    test = period_mask(time, cfg.test_periods)
    held = np.isin(predictions[PARENT_SEGMENT].values, cfg.holdout_segments)
    return time, test, predictions["prediction"].values[test], predictions["water_temp_obs"].values[test], held


def monthly_scores(prediction: np.ndarray, observation: np.ndarray, months: np.ndarray) -> dict[int, Scores]:
    """Scores per calendar month 1–12, NaN below :data:`MIN_GROUP_OBS` pairs.

    Shapes: prediction, observation: (time, ...) °C; months: (time,) 1–12.
    """
    return {m: skill(prediction[months == m], observation[months == m], MIN_GROUP_OBS) for m in range(1, 13)}


def _section(pred: np.ndarray, obs: np.ndarray, months: np.ndarray, nodes: np.ndarray) -> SkillSection:
    per_node = {str(node): skill(pred[:, k], obs[:, k], MIN_GROUP_OBS)
                for k, node in enumerate(nodes) if np.isfinite(obs[:, k]).any()}
    return SkillSection(skill(pred, obs), monthly_scores(pred, obs, months), per_node)
