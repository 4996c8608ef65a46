"""Temporal splits and windows (docs/methods.md §3.1–3.2, with windows kept inside contiguous periods).

The official code concatenates a split's periods and cuts 365-day windows across the gaps
(docs/methods.md §3.2). Here each contiguous period is cut separately into ``length``-day windows; a remainder
gets one more window aligned to the period's end, whose already-covered days are not scored, so
every day of a period is scored exactly once and no window crosses a gap.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from msgl_core.config import Period, RunConfig


@dataclass(frozen=True)
class Window:
    """Days ``start..stop-1`` of the time axis; only days ``score_from..stop-1`` are scored."""

    start: int
    stop: int
    score_from: int

    @property
    def length(self) -> int:
        """Number of days in the window."""
        return self.stop - self.start


def period_mask(time: pd.DatetimeIndex, periods: Sequence[Period]) -> np.ndarray:
    """(time,) bool: days inside any of ``periods`` (inclusive ISO dates)."""
    mask = np.zeros(len(time), dtype=bool)
    for start, end in periods:
        mask |= (time >= pd.Timestamp(start)) & (time <= pd.Timestamp(end))
    return mask


#: Split names, in the order of the config's ``train_periods``, ``val_periods``, ``test_periods``.
SPLITS = ("train", "val", "test")
#: Plain-language name of each split ("" = a day outside every split).
SPLIT_NAMES = {"train": "training period", "val": "validation period", "test": "test period", "": "outside the splits"}


def water_year(time: pd.DatetimeIndex) -> np.ndarray:
    """(time,) int: the USGS water year of each day, 1 October to 30 September, named by the calendar year
    in which it ends (1 October 2010 is in water year 2011)."""
    return (time.year + (time.month >= 10)).to_numpy(dtype=int)


def split_days(time: pd.DatetimeIndex, cfg: RunConfig) -> dict[str, np.ndarray]:
    """Split name → (time,) bool, the days of ``cfg``'s periods of that split."""
    return {name: period_mask(time, getattr(cfg, f"{name}_periods")) for name in SPLITS}


def split_labels(time: pd.DatetimeIndex, cfg: RunConfig) -> np.ndarray:
    """(time,) object array: "train", "val", "test" or "" (outside the splits) for each day of ``time``.

    Example:
        >>> from msgl_core.config import RunConfig
        >>> split_labels(pd.date_range("2005-09-30", periods=2), RunConfig()).tolist()
        ['train', 'val']
    """
    labels = np.full(len(time), "", dtype=object)
    for name, days in split_days(time, cfg).items():
        labels[days] = name
    return labels


def windows(time: pd.DatetimeIndex, periods: Sequence[Period], length: int) -> list[Window]:
    """Windows covering each period's days on ``time`` (daily, contiguous), in time order.

    Raises ValueError if ``length`` < 1.
    """
    if length < 1:
        raise ValueError(f"window length must be >= 1 day, got {length}")
    out: list[Window] = []
    for start, end in sorted(periods):
        days = np.flatnonzero(period_mask(time, [(start, end)]))
        if len(days) == 0:
            continue
        first, stop = int(days[0]), int(days[-1]) + 1
        begin = first
        while begin + length <= stop:
            out.append(Window(begin, begin + length, begin))
            begin += length
        if begin < stop:
            window_start = max(first, stop - length)
            out.append(Window(window_start, stop, begin))
    return out
