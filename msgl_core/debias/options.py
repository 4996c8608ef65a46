"""The ``debias`` options, fitting a map by name, and saving/loading it as plain arrays.

Example:
    >>> DebiasOptions(method="ot", eps=0.05).method
    'ot'
    >>> DebiasOptions.from_dict({"methd": "ot"})
    Traceback (most recent call last):
    ...
    ValueError: unknown debias key 'methd'; did you mean 'method'? Valid keys: method, grouping, ...
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from msgl_core.config import check_keys
from msgl_core.debias.base import Debiaser, IdentityDebiaser
from msgl_core.debias.entropic_ot import OTDebiaser
from msgl_core.debias.linear import LinearDebiaser
from msgl_core.debias.quantile_mapping import QuantileMappingDebiaser
from msgl_core.debias.scope import POPULATIONS, FitScope, Population, fit_samples

#: ``debias.method`` → map class.
DEBIASERS: dict[str, type[Debiaser]] = {c.method: c for c in (IdentityDebiaser, LinearDebiaser,
                                                             QuantileMappingDebiaser, OTDebiaser)}
GROUPINGS = ("doy_features", "season")
MODES = ("barycentric", "sample")


@dataclass(frozen=True)
class DebiasOptions:
    """How Stage 1 debiases the coarse source.

    Attributes:
        method: ``none``, ``linear`` (paired per-season regression), ``quantile_mapping`` (per month) or
            ``ot`` (entropic optimal transport).
        grouping: ``ot`` only: ``doy_features`` (one map with day-of-year features) or ``season`` (4 maps).
        eps: ``ot``: entropic regularisation ε on the median-normalised cost, > 0.
        n_support: ``ot``: source and target points per group, >= 10.
        lambda_doy, lambda_static: ``ot``: weights of the day-of-year and static features, >= 0.
        mode: ``barycentric`` (the map) or ``sample`` (draw from the coupling, ``ot`` only).
        source_population: ``matched`` (source on the target's segment-days) or ``all``.

    Raises ValueError for a value of the wrong kind or out of range.
    """

    method: str = "ot"
    grouping: str = "doy_features"
    eps: float = 0.05
    n_support: int = 2000
    lambda_doy: float = 3.0
    lambda_static: float = 1.0
    mode: str = "barycentric"
    source_population: Population = "matched"

    def __post_init__(self) -> None:
        for name, choices in (("method", tuple(DEBIASERS)), ("grouping", GROUPINGS), ("mode", MODES),
                              ("source_population", POPULATIONS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"debias.{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")
        for name in ("eps", "lambda_doy", "lambda_static"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                raise ValueError(f"debias.{name} must be a number, got {value!r}")
        if isinstance(self.n_support, bool) or not isinstance(self.n_support, int) or self.n_support < 10:
            raise ValueError(f"debias.n_support must be an integer >= 10, got {self.n_support!r}")
        if self.eps <= 0 or self.lambda_doy < 0 or self.lambda_static < 0:
            raise ValueError(f"debias.eps must be > 0 and lambda_doy, lambda_static >= 0, got {self.eps}, "
                             f"{self.lambda_doy}, {self.lambda_static}")
        if self.mode == "sample" and self.method != "ot":
            raise ValueError(f"debias.mode 'sample' needs method 'ot', got {self.method!r}")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DebiasOptions:
        """Build from plain values. Raises ValueError for unknown keys (with a did-you-mean) or bad values."""
        if not isinstance(values, dict):
            raise ValueError(f"debias must be a mapping of keys, got {values!r}")
        check_keys(cls, values, "debias")
        return cls(**values)


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
    np.savez(path, **arrays)


def load_debiaser(path: str | Path) -> Debiaser:
    """Read :func:`save_debiaser` output. Raises ValueError naming ``path`` if it is not a saved debiaser."""
    try:
        with np.load(path, allow_pickle=False) as npz:
            state = {k: npz[k] for k in npz.files}
        return DEBIASERS[str(state.pop("method"))].from_state(state)
    except (OSError, KeyError, ValueError) as error:
        raise ValueError(f"{path}: not a saved msgl debiaser ({type(error).__name__}: {error})") from None
