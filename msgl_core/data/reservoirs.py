"""Static reach and segment attributes of the nearest upstream dam (GRanD v1.3), for reservoir tailwaters.

Reaches just below large dams (Cannonsville, Pepacton, Neversink) receive cold hypolimnetic releases
that no meteorological driver explains. For every segment and reach this module finds the nearest dam
upstream along the channel and records three GRanD attributes of it (Lehner et al. 2011, GRanD v1.3,
CC BY 4.0; the bundle's ``network/reservoirs.gpkg`` layer ``dams``):

- ``dam_distance_km``: channel distance from the dam's node outlet to this node's outlet, km (0 on the
  dam's own reach or segment; NaN where no dam lies upstream);
- ``dam_storage_mcm``: that dam's storage capacity ``CAP_MCM``, 10⁶ m³;
- ``dam_dor_pc``: its degree of regulation ``DOR_PC``, % (storage / mean annual flow).

A dam is placed on the network by the bundle's ``nearest_seg_id_nat`` and ``dist_to_segment_m``; dams
farther than :data:`MAX_DAM_DISTANCE_M` from every NHM segment sit on streams the network does not draw
(Merrill Creek, Shohola Marsh) and are left out. Within its segment the dam's reach is the one containing
its point projected onto the segment's line (as :func:`msgl_core.data.timeseries.snap_sites` snaps sites).
Of two dams at the same distance (two dams on one reach) the larger one counts.

:func:`dam_features` turns the three attributes into the model inputs of ``reservoir_features: true``
(docs/methods.md §2.9).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from msgl_core.data.network import MultiscaleNetwork
from msgl_core.data.timeseries import snap_sites

#: Dams farther than this from their nearest NHM segment are not on the network, m.
MAX_DAM_DISTANCE_M = 1500.0
#: e-folding channel distance of a dam's influence in :func:`dam_features`, km.
DAM_DECAY_KM = 30.0
#: The stored attributes, with units and long names.
DAM_ATTRIBUTES = {
    "dam_distance_km": ("km", "channel distance below the nearest upstream dam (NaN: no dam upstream)"),
    "dam_storage_mcm": ("1e6 m3", "storage capacity of the nearest upstream dam (GRanD CAP_MCM)"),
    "dam_dor_pc": ("percent", "degree of regulation of the nearest upstream dam (GRanD DOR_PC)"),
}
#: Model-input names of :func:`dam_features`, in order.
DAM_FEATURES = ("dam_proximity", "dam_log_storage", "dam_regulation")


def dam_attributes(network: MultiscaleNetwork, dams: gpd.GeoDataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Nearest-upstream-dam attributes of every segment and reach (see the module docstring).

    Args:
        network: the two-scale network.
        dams: :func:`msgl_core.data.bundle.read_dams` (any CRS).

    Returns:
        (segments, reaches): DataFrames indexed like ``network.segments`` / ``network.reaches`` with the
        columns of :data:`DAM_ATTRIBUTES` (float64) and ``dam_name`` ("" where no dam lies upstream).
    """
    on_network = dams[(dams["dist_to_segment_m"] <= MAX_DAM_DISTANCE_M)
                      & dams["nearest_seg_id_nat"].isin(network.segments.index)]
    on_network = on_network.sort_values("CAP_MCM", ascending=False)  # larger dam first: it wins ties
    snapped = snap_sites(network, gpd.GeoDataFrame(
        {"site_id": on_network["GRAND_ID"].to_numpy(), "seg_id_nat": on_network["nearest_seg_id_nat"].to_numpy()},
        geometry=on_network.geometry.to_numpy(), crs=on_network.crs), max_distance_m=MAX_DAM_DISTANCE_M)
    by_id = on_network.set_index("GRAND_ID")
    segment_of = by_id["nearest_seg_id_nat"].to_dict()
    seg_index, reach_index = network.segments.index, network.reaches.index
    segments = _walk(network.segment_to_index, network.segments["length_m"].to_numpy(),
                     [(seg_index.get_loc(segment_of[g]), g) for g in by_id.index], by_id, seg_index)
    reaches = _walk(network.reach_to_index, network.reaches["length_m"].to_numpy(),
                    [(reach_index.get_loc(snapped[g]), g) for g in by_id.index if g in snapped.index],
                    by_id, reach_index)
    return segments, reaches


def with_dam_attributes(ds: xr.Dataset, table: pd.DataFrame, dim: str) -> xr.Dataset:
    """``ds`` with the columns of a :func:`dam_attributes` table as (``dim``,) variables (units, long names)
    and ``dam_name`` as a (``dim``,) coordinate."""
    variables = {name: xr.DataArray(table[name].to_numpy(dtype=np.float64), dims=dim,
                                    attrs={"units": units, "long_name": long_name})
                 for name, (units, long_name) in DAM_ATTRIBUTES.items()}
    names = xr.DataArray(table["dam_name"].to_numpy(dtype=str), dims=dim,
                         attrs={"long_name": "GRanD name of the nearest upstream dam (empty: none)"})
    return ds.assign(variables).assign_coords(dam_name=names)


def _walk(to_index: np.ndarray, length_m: np.ndarray, starts: list[tuple[int, int]], dams: pd.DataFrame,
          index: pd.Index) -> pd.DataFrame:
    """Follow each dam's node downstream, keeping at every node the nearest dam (a walk stops at the first node
    another dam already reaches no farther: every node below it is nearer to that dam too)."""
    distance = np.full(len(to_index), np.inf)
    dam_of = np.full(len(to_index), -1, dtype=np.int64)
    for node, grand_id in starts:
        d = 0.0
        while node >= 0 and d < distance[node]:
            distance[node], dam_of[node] = d, grand_id
            node = int(to_index[node])
            if node >= 0:
                d += length_m[node]
    has = dam_of >= 0
    chosen = dams.reindex(dam_of[has])
    out = pd.DataFrame(index=index, data={name: np.nan for name in DAM_ATTRIBUTES})
    out["dam_name"] = ""
    out.loc[has, "dam_distance_km"] = distance[has] / 1000.0
    out.loc[has, "dam_storage_mcm"] = chosen["CAP_MCM"].to_numpy(dtype=np.float64)
    out.loc[has, "dam_dor_pc"] = chosen["DOR_PC"].to_numpy(dtype=np.float64)
    out.loc[has, "dam_name"] = chosen["DAM_NAME"].to_numpy()
    return out


def dam_features(distance_km: np.ndarray, storage_mcm: np.ndarray, dor_pc: np.ndarray) -> np.ndarray:
    """Model inputs from the stored attributes (``reservoir_features: true``; docs/methods.md §2.9).

    ``dam_proximity = exp(-distance / DAM_DECAY_KM)``, ``dam_log_storage = log10(1 + storage)`` and
    ``dam_regulation = DOR / 100``, each 0 where no dam lies upstream (NaN distance), so that a reach far
    below a dam and a reach with no dam look alike.

    Args:
        distance_km, storage_mcm, dor_pc: (nodes,) as in :data:`DAM_ATTRIBUTES`.

    Returns:
        (nodes, 3) float64 in the order of :data:`DAM_FEATURES`, finite.

    Raises ValueError if a node below a dam has a negative or non-finite storage or degree of regulation.

    Example:
        >>> dam_features(np.array([0.0, 30.0, np.nan]), np.array([99.0, 99.0, np.nan]), np.array([50.0, 50.0, np.nan])).round(3)
        array([[1.   , 2.   , 0.5  ],
               [0.368, 2.   , 0.5  ],
               [0.   , 0.   , 0.   ]])
    """
    below = np.isfinite(distance_km)
    for name, values in (("dam_storage_mcm", storage_mcm), ("dam_dor_pc", dor_pc)):
        bad = below & ~(np.isfinite(values) & (values >= 0))
        if bad.any():
            raise ValueError(f"{name} must be finite and >= 0 below a dam, got {values[bad][:3].tolist()}")
    out = np.zeros((len(distance_km), len(DAM_FEATURES)))
    out[below, 0] = np.exp(-distance_km[below] / DAM_DECAY_KM)
    out[below, 1] = np.log10(1.0 + storage_mcm[below])
    out[below, 2] = dor_pc[below] / 100.0
    return out
