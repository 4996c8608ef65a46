"""Fitting a debiasing map by name (:class:`~msgl_core.config.DebiasOptions`, which lives in the light config
module so that loading a config never imports POT), and saving/loading it as plain arrays."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from msgl_core.config import DebiasOptions
from msgl_core.debias.base import Debiaser, IdentityDebiaser
from msgl_core.debias.entropic_ot import OTDebiaser
from msgl_core.debias.linear import LinearDebiaser
from msgl_core.debias.quantile_mapping import QuantileMappingDebiaser
from msgl_core.debias.scope import FitScope, fit_samples

#: ``debias.method`` → map class.
DEBIASERS: dict[str, type[Debiaser]] = {c.method: c for c in (IdentityDebiaser, LinearDebiaser,
                                                             QuantileMappingDebiaser, OTDebiaser)}


def fit_debiaser(options: DebiasOptions, source: xr.DataArray, target: xr.DataArray, scope: FitScope,
                 static: xr.DataArray | None = None, seed: int = 0) -> Debiaser:
    """Fit the map ``options.method`` of ``source`` onto ``target``.

    Args:
        source: (time, segment) biased coarse temperature, °C.
        target: (time, segment) observed coarse temperature, °C, fit-period observations only.
        scope: the fit period and the exclusions; the leakage guards run first.
        static: (segment, feature) attributes for ``ot``'s context (None: none).
        seed: seed of ``ot``'s support subsample.

    Raises ValueError from the guards (:func:`~msgl_core.debias.scope.check_scope`) or the fit.
    """
    samples = fit_samples(source, target, scope, options.source_population)  # the guards apply to every method
    if options.method == "none":
        return IdentityDebiaser()
    if options.method == "linear":
        return LinearDebiaser.fit(samples)
    if options.method == "quantile_mapping":
        return QuantileMappingDebiaser.fit(samples)
    return OTDebiaser.fit(samples, options.eps, options.n_support, options.grouping, options.lambda_doy,
                          options.lambda_static, static, np.random.default_rng(seed))


def save_debiaser(debiaser: Debiaser, path: str | Path) -> None:
    """Write ``debiaser`` to ``path`` (``.npz``: plain arrays, no pickle)."""
    arrays: dict[str, Any] = {"method": np.array(debiaser.method), **debiaser.state()}
    with open(path, "wb") as handle:  # a handle, so that numpy does not append ".npz" to a temporary name
        np.savez(handle, **arrays)


def load_debiaser(path: str | Path) -> Debiaser:
    """Read :func:`save_debiaser` output. Raises ValueError naming ``path`` if it is not a saved debiaser."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            state = {k: npz[k] for k in npz.files}
        return DEBIASERS[str(state.pop("method"))].from_state(state)
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(f"{path}: not a saved msgl debiaser ({type(error).__name__}: {error})") from None
