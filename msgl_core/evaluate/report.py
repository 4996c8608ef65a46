"""Evaluation report of a run: test-period skill overall, per reach, per month, hold-out, coarse."""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from msgl_core.config import RunConfig
from msgl_core.data.splits import period_mask
from msgl_core.evaluate.metrics import skill

MIN_GROUP_OBS = 10  # groups (reach, month) with fewer observations get NaN metrics (spec §7.1)


def evaluate(predictions: xr.Dataset, cfg: RunConfig, coarse_obs: xr.DataArray | None = None) -> dict:
    """Test-period metrics (°C) against the unmasked observations.

    Args:
        predictions: output of :func:`msgl_core.evaluate.predict.predict_record`.
        cfg: the run's config (test periods, hold-out segments).
        coarse_obs: (time, segment) observed coarse temperature, for variants that predict it.

    Returns: ``{"fine": {"overall", "per_month", "per_reach"}, "holdout": {...} (only with hold-out
    segments), "coarse": {"overall"} (when available), "test_periods"}``. ``fine`` covers the
    gauged reaches (not held out); ``holdout`` the held-out reaches.
    """
    time = pd.DatetimeIndex(predictions["time"].values)
    test = period_mask(time, cfg.test_periods)
    pred = predictions["prediction"].values[test]
    obs = predictions["water_temp_obs"].values[test]
    held = np.isin(predictions["segment"].values, cfg.holdout_segments)
    months = time[test].month.to_numpy()
    reaches = predictions["reach"].values
    report: dict = {"test_periods": [list(p) for p in cfg.test_periods],
                    "fine": _section(pred[:, ~held], obs[:, ~held], months, reaches[~held])}
    if held.any():
        report["holdout"] = _section(pred[:, held], obs[:, held], months, reaches[held])
    if "prediction_coarse" in predictions and coarse_obs is not None:
        observed = coarse_obs.sel(time=predictions["time"], segment=predictions["segment_id"].values)
        coarse_pred = predictions["prediction_coarse"].values[test]
        keep = ~np.isin(predictions["segment_id"].values, cfg.holdout_segments)
        report["coarse"] = {"overall": skill(coarse_pred[:, keep], observed.values[test][:, keep])}
    return report


def _section(pred: np.ndarray, obs: np.ndarray, months: np.ndarray, reaches: np.ndarray) -> dict:
    per_month = {int(m): skill(pred[months == m], obs[months == m], MIN_GROUP_OBS) for m in range(1, 13)}
    per_reach = {}
    for k, reach in enumerate(reaches):
        if np.isfinite(obs[:, k]).any():
            per_reach[str(reach)] = skill(pred[:, k], obs[:, k], MIN_GROUP_OBS)
    return {"overall": skill(pred, obs), "per_month": per_month, "per_reach": per_reach}
