"""Sub-basins: the network upstream of an outlet segment, and named presets.

The MSGL paper trains one model per sub-basin (Fan et al., AAAI-25, §Experiments). Presets name
real DRB tributaries by their outlet ``seg_id_nat``. Each outlet was found from the geometry:
the NHM segments whose downstream end lies within 6 km of the tributary's mouth (coordinates
below) were listed with their cumulative drainage area; the outlet is the one that is not on
the Delaware main stem, and its area agrees with the tributary's published drainage area.
``tests/data/test_real_bundle.py`` re-checks this on the real bundle.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from msgl_core.config import WHOLE_BASIN
from msgl_core.data.network import MultiscaleNetwork
from msgl_core.data.topology import upstream_mask


@dataclass(frozen=True)
class BasinPreset:
    """A named sub-basin: its outlet segment and the tributary's mouth (lon, lat in °)."""

    name: str
    outlet: int
    mouth: tuple[float, float]
    description: str


PRESETS: dict[str, BasinPreset] = {p.name: p for p in (
    BasinPreset("neversink", 1682, (-74.697, 41.372), "Neversink River to its mouth at Port Jervis, NY (~890 km²)"),
    BasinPreset("lehigh", 1718, (-75.204, 40.690), "Lehigh River to its mouth at Easton, PA (~3,500 km²)"),
    BasinPreset("schuylkill", 2339, (-75.196, 39.884), "Schuylkill River to its mouth at Philadelphia, PA (~4,900 km²)"),
    BasinPreset("christina", 4182, (-75.508, 39.716),
                "Brandywine-Christina: Christina River with Brandywine Creek, to Wilmington, DE (~1,500 km²)"),
    BasinPreset("rancocas", 1781, (-74.958, 40.046), "Rancocas Creek to its mouth at Delanco, NJ (~890 km²)"),
)}


def basin_outlet(network: MultiscaleNetwork, basin: str | int) -> int | None:
    """Outlet ``seg_id_nat`` of ``basin`` (a preset name, a ``seg_id_nat``, or ``"drb"`` → None).

    Raises ValueError naming the valid presets if ``basin`` is neither a preset nor a segment.
    """
    if isinstance(basin, str) and basin.lower() == WHOLE_BASIN:
        return None
    if isinstance(basin, str) and basin.lower() in PRESETS:
        outlet: int | None = PRESETS[basin.lower()].outlet
    else:
        try:
            outlet = int(basin)
        except (TypeError, ValueError):
            outlet = None
    if outlet is None or outlet not in network.segments.index:
        raise ValueError(f"unknown basin {basin!r}: expected '{WHOLE_BASIN}', a preset "
                         f"({', '.join(available_presets(network))}) or a seg_id_nat of the network")
    return outlet


def available_presets(network: MultiscaleNetwork) -> list[str]:
    """Names of the presets whose outlet segment is in ``network``."""
    return [name for name, preset in PRESETS.items() if preset.outlet in network.segments.index]


def upstream_segments(network: MultiscaleNetwork, outlet: int) -> np.ndarray:
    """``seg_id_nat`` of every segment draining to ``outlet`` (outlet included), ascending."""
    position = network.segments.index.get_loc(outlet)
    return network.segments.index.to_numpy()[upstream_mask(network.segment_to_index, position)]


def subnetwork(network: MultiscaleNetwork, basin: str | int) -> MultiscaleNetwork:
    """The part of ``network`` upstream of ``basin``'s outlet (the whole network for ``"drb"``).

    The outlet segment's ``to_segment`` becomes 0 and its outlet reach's ``to_reach`` "".
    """
    outlet = basin_outlet(network, basin)
    if outlet is None:
        return network
    keep = upstream_segments(network, outlet)
    rows = network.segments.index.get_indexer(keep)
    segments = network.segments.loc[keep].copy()
    segments.loc[outlet, "to_segment"] = 0
    reaches = network.reaches[network.reaches["segment"].isin(keep)].copy()
    reaches.loc[segments.loc[outlet, "outlet_reach"], "to_reach"] = ""
    return MultiscaleNetwork(segments, reaches, network.segment_updown[np.ix_(rows, rows)])


def check_domain(network: MultiscaleNetwork, basin: str, holdout_segments: tuple[int, ...] = ()) -> np.ndarray:
    """``seg_id_nat`` of ``basin``'s segments, ascending, after checking its hold-out segments lie in it.

    Raises ValueError for an unknown basin (see :func:`basin_outlet`) or hold-out segments outside it.
    """
    outlet = basin_outlet(network, basin)
    segments = network.segments.index.to_numpy() if outlet is None else upstream_segments(network, outlet)
    unknown = sorted(set(holdout_segments) - set(segments.tolist()))
    if unknown:
        raise ValueError(f"holdout segments {unknown} are not in basin {basin!r}")
    return np.sort(segments)
