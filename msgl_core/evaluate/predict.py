"""Model outputs back to labelled data: daily predictions for every reach over the whole record."""

from __future__ import annotations

import numpy as np
import torch
import xarray as xr

from msgl_core.data.dataset import PreparedData, batch
from msgl_core.data.splits import windows
from msgl_core.dims import PARENT_SEGMENT, REACH, SEGMENT, TIME
from msgl_core.registry import Variant

SCALE_C = 0.01  # predictions are packed as int16 hundredths of a °C in NetCDF
SCALE_FRACTION = 0.001  # dimensionless float fractions (exceedance probabilities) as int16 thousandths


@torch.no_grad()
def predict_record(model: torch.nn.Module, variant: Variant, prepared: PreparedData, window: int,
                   device: torch.device) -> xr.Dataset:
    """Predicted daily water temperature over the whole record.

    Each ``window``-day window starts from zero recurrent state (as in training); every day is
    predicted once.

    Returns: Dataset with ``prediction`` (time, reach) °C, ``water_temp_obs`` (time, reach) °C
    (unmasked), ``obs_used`` (time, reach) int8 (1 where the observation was kept for
    training/validation), and ``prediction_coarse`` (time, segment) °C when the variant predicts
    the coarse scale; coordinates ``time``, ``reach`` (with its ``parent_segment``) and ``segment``
    (names from :mod:`msgl_core.dims`).
    """
    model.eval()
    record = (str(prepared.time[0].date()), str(prepared.time[-1].date()))
    fine = np.full((len(prepared.time), len(prepared.reach_ids)), np.nan, dtype=np.float32)
    coarse = np.full((len(prepared.time), len(prepared.segment_ids)), np.nan, dtype=np.float32)
    for w in windows(prepared.time, [record], window):
        b = batch(prepared, w).to(device)
        scored = slice(w.score_from - w.start, None)
        days = slice(w.score_from, w.stop)
        z = variant.predict_fine(model, b)[:, scored].float().cpu().numpy().T
        fine[days] = prepared.target_scalers["fine"].invert(z)
        if variant.predict_coarse is not None:
            zc = variant.predict_coarse(model, b)[:, scored].float().cpu().numpy().T
            coarse[days] = prepared.target_scalers["coarse"].invert(zc)
    ds = xr.Dataset(
        {
            "prediction": ((TIME, REACH), fine, {"units": "degC", "long_name": "predicted daily mean water temperature"}),
            "water_temp_obs": ((TIME, REACH), prepared.y_fine_all.astype(np.float32),
                               {"units": "degC", "long_name": "observed daily mean water temperature (unmasked)"}),
            "obs_used": ((TIME, REACH), np.isfinite(prepared.y_fine).astype(np.int8),
                         {"units": "1", "long_name": "1 where the observation was kept for training/validation"}),
        },
        coords={TIME: prepared.time, REACH: prepared.reach_ids.astype(str),
                PARENT_SEGMENT: (REACH, prepared.segment_ids[prepared.parent])},
    )
    if variant.predict_coarse is not None:
        ds["prediction_coarse"] = ((TIME, SEGMENT), coarse,
                                   {"units": "degC", "long_name": "predicted daily mean water temperature, coarse segments"})
        ds = ds.assign_coords({SEGMENT: prepared.segment_ids})
    return ds


def netcdf_encoding(ds: xr.Dataset) -> dict[str, dict]:
    """Compact encoding: temperatures as int16 hundredths of °C, float fractions (units "1", e.g. exceedance
    probabilities) as int16 thousandths, everything zlib-compressed."""
    encoding: dict[str, dict] = {}
    for name, var in ds.data_vars.items():
        encoding[str(name)] = {"zlib": True, "complevel": 4}
        if var.attrs.get("units") == "degC":
            encoding[str(name)].update(dtype="int16", scale_factor=SCALE_C, _FillValue=np.int16(-32768))
        elif var.attrs.get("units") == "1" and np.issubdtype(var.dtype, np.floating):
            encoding[str(name)].update(dtype="int16", scale_factor=SCALE_FRACTION, _FillValue=np.int16(-32768))
    return encoding
