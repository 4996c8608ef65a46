"""Evaluation of a run: test-period skill overall, per reach, per month, hold-out, coarse
(docs/methods.md §9.1), as a typed :class:`~msgl_core.evaluate.record.RunMetrics`."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from msgl_core.config import RunConfig
from msgl_core.data.splits import period_mask
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
    time = pd.DatetimeIndex(predictions[TIME].values)
    test = period_mask(time, cfg.test_periods)
    pred = predictions["prediction"].values[test]
    obs = predictions["water_temp_obs"].values[test]
    held = np.isin(predictions[PARENT_SEGMENT].values, cfg.holdout_segments)
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


def monthly_scores(prediction: np.ndarray, observation: np.ndarray, months: np.ndarray) -> dict[int, Scores]:
    """Scores per calendar month 1–12, NaN below :data:`MIN_GROUP_OBS` pairs.

    Shapes: prediction, observation: (time, ...) °C; months: (time,) 1–12.
    """
    return {m: skill(prediction[months == m], observation[months == m], MIN_GROUP_OBS) for m in range(1, 13)}


def _section(pred: np.ndarray, obs: np.ndarray, months: np.ndarray, nodes: np.ndarray) -> SkillSection:
    per_node = {str(node): skill(pred[:, k], obs[:, k], MIN_GROUP_OBS)
                for k, node in enumerate(nodes) if np.isfinite(obs[:, k]).any()}
    return SkillSection(skill(pred, obs), monthly_scores(pred, obs, months), per_node)
