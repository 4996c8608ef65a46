"""The common interface of the debiasing maps T (Stage 1 of Wan et al., NeurIPS 2023, arXiv 2305.15618).

A :class:`Debiaser` maps a biased coarse temperature (time, segment) to a debiased one, value by value,
with the date and segment as context. NaN stays NaN. Every map saves to and loads from plain arrays
(``.npz`` without pickle): :meth:`Debiaser.state` / ``from_state``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

import numpy as np
import pandas as pd
import xarray as xr

from msgl_core.dims import SEGMENT, TIME

#: ``(values (n,) °C, dates (n,), seg_id_nat (n,)) -> (n,) °C``.
ValueMap = Callable[[np.ndarray, pd.DatetimeIndex, np.ndarray], np.ndarray]


def season(time: pd.DatetimeIndex) -> np.ndarray:
    """(n,) int season of each date: 0 DJF, 1 MAM, 2 JJA, 3 SON."""
    return (time.month.to_numpy() % 12) // 3


class Debiaser(ABC):
    """A fitted map from biased to debiased coarse temperature (°C)."""

    #: The ``debias.method`` name.
    method: ClassVar[str]

    def transform(self, source: xr.DataArray) -> xr.DataArray:
        """Debiased ``source``.

        Shapes: source (time, segment) °C, NaN where missing → the same dims and coordinates, °C, NaN
        exactly where ``source`` is NaN.

        Raises ValueError if a segment of ``source`` is unknown to a map that needs segment context.
        """
        return self._apply(source, self.map_values)

    def _apply(self, source: xr.DataArray, function: ValueMap) -> xr.DataArray:
        """``function`` on the finite values of ``source`` (time, segment), NaN kept, labelled as debiased °C."""
        source = source.transpose(TIME, SEGMENT)
        values = source.values.astype(np.float64)
        finite = np.isfinite(values)
        t, s = np.nonzero(finite)
        out = np.full(values.shape, np.nan)
        if t.size:
            out[t, s] = function(values[t, s], pd.DatetimeIndex(source[TIME].values)[t],
                                        source[SEGMENT].values[s])
        return xr.DataArray(out, coords=source.coords, dims=(TIME, SEGMENT),
                            attrs={"units": "degC", "long_name": "debiased coarse daily mean water temperature",
                                   "debias_method": self.method})

    @abstractmethod
    def map_values(self, values: np.ndarray, time: pd.DatetimeIndex, segment: np.ndarray) -> np.ndarray:
        """Map finite values. Shapes: values, time, segment: (n,) (°C, dates, ``seg_id_nat``) → (n,) °C."""

    @abstractmethod
    def state(self) -> dict[str, np.ndarray]:
        """Plain arrays that rebuild the map with ``from_state`` (no object arrays)."""

    @classmethod
    @abstractmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> Debiaser:
        """Rebuild from :meth:`state`. Raises KeyError if an array is missing."""


class IdentityDebiaser(Debiaser):
    """``none``: y' = y (the ablation without Stage 1)."""

    method = "none"

    def map_values(self, values: np.ndarray, time: pd.DatetimeIndex, segment: np.ndarray) -> np.ndarray:
        return values.copy()

    def state(self) -> dict[str, np.ndarray]:
        return {}

    @classmethod
    def from_state(cls, state: dict[str, np.ndarray]) -> IdentityDebiaser:
        return cls()
