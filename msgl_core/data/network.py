"""The two-scale DRB river network: 456 NHM segments and ~3,200 fine reaches.

Coarse scale: NHM GF v1.1 segments (``seg_id_nat``), the three split segments' subsegments
merged. Fine scale: NHDPlusV2 flowline geometry is not in the bundle, so each segment's line,
oriented upstream→downstream, is cut into ``n`` equal-length reaches where ``n`` is the number of
NHDPlusV2 COMIDs the crosswalk lists on that segment (USGS-R/drb-network-prep
``GFv1_NHDv2_xwalk.csv``). Reach ``"{seg_id_nat}_{k}"`` has k = 1 at the upstream end.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from shapely.ops import substring

from msgl_core.data import bundle as files
from msgl_core.data.topology import check_acyclic, downstream_index, updown_from_topology
from msgl_core.errors import DataError

#: Equal-area projection (CONUS Albers, metres) used for lengths and cutting.
PROJECTED_CRS = "EPSG:5070"
#: Lapse rate used to correct air temperature to a reach's elevation, °C per m.
LAPSE_RATE_C_PER_M = -6.5e-3

SEGMENT_COLUMNS = ["to_segment", "length_m", "slope", "elevation_m", "width_m", "cum_area_km2",
                   "n_reaches", "outlet_reach", "geometry"]
REACH_COLUMNS = ["segment", "position", "to_reach", "length_m", "lon", "lat", "slope",
                 "elevation_m", "width_m", "air_temp_correction_c", "geometry"]


@dataclass(frozen=True)
class MultiscaleNetwork:
    """Coarse segments, fine reaches and their crosswalk.

    Attributes:
        segments: GeoDataFrame indexed by ``seg_id_nat`` (ascending), EPSG:4326 lines, columns
            ``to_segment`` (downstream ``seg_id_nat``, 0 at outlets), ``length_m`` (m), ``slope``
            (m/m), ``elevation_m`` (m, segment midpoint), ``width_m`` (m, bankfull),
            ``cum_area_km2``, ``n_reaches``, ``outlet_reach`` (reach id of the segment's outlet).
        reaches: GeoDataFrame indexed by ``reach_id`` (segment-major, upstream→downstream within a
            segment), columns ``segment`` (parent ``seg_id_nat``), ``position`` (k), ``to_reach``
            ("" at outlets), ``length_m``, ``lon``/``lat`` (midpoint, °), ``slope``, ``width_m``
            (parent's), ``elevation_m`` (interpolated along the parent with its slope),
            ``air_temp_correction_c`` (lapse-rate correction of the parent's air temperature, °C).
        segment_updown: (segments, segments) float64 m, river-dl ``updown`` between segment outlets.
    """

    segments: gpd.GeoDataFrame
    reaches: gpd.GeoDataFrame
    segment_updown: np.ndarray

    @property
    def segment_to_index(self) -> np.ndarray:
        """(segments,) position of each segment's downstream segment, -1 at outlets."""
        return downstream_index(list(self.segments.index), list(self.segments["to_segment"]))

    @property
    def reach_to_index(self) -> np.ndarray:
        """(reaches,) position of each reach's downstream reach, -1 at outlets."""
        return downstream_index(list(self.reaches.index), list(self.reaches["to_reach"]))

    @property
    def reach_parent_index(self) -> np.ndarray:
        """(reaches,) position of each reach's parent segment in ``segments``."""
        return self.segments.index.get_indexer(self.reaches["segment"])

    def reach_updown(self) -> np.ndarray:
        """(reaches, reaches) float64 m, ``updown`` between reach outlets along the channel."""
        return updown_from_topology(self.reach_to_index, self.reaches["length_m"].to_numpy())

    def reach_midpoints_km(self) -> np.ndarray:
        """(reaches, 2) float64 km, x and y of each reach's midpoint in :data:`PROJECTED_CRS` (from ``lon``/``lat``,
        which are in the network's CRS, EPSG:4326)."""
        to_projected = pyproj.Transformer.from_crs(self.reaches.crs, PROJECTED_CRS, always_xy=True)
        x, y = to_projected.transform(self.reaches["lon"].to_numpy(), self.reaches["lat"].to_numpy())
        return np.stack([np.asarray(x), np.asarray(y)], axis=-1) / 1000.0


def merge_segments(subsegments: gpd.GeoDataFrame, crosswalk: pd.DataFrame) -> gpd.GeoDataFrame:
    """Merge the split segments' subsegments into 456 NHM segments (see :class:`MultiscaleNetwork`)."""
    parent_of = dict(zip(subsegments["subseg_id"], subsegments["parent_seg_id_nat"]))
    n_comids = crosswalk.groupby("seg_id_nat")["n_comid_seg"].sum()
    rows = []
    for seg_id, group in subsegments.groupby("parent_seg_id_nat", sort=True):
        # The upper half flows into the lower half: order them upstream → downstream.
        group = group.sort_values("is_split_upper_half", ascending=False)
        lower = group.iloc[-1]
        line = shapely.line_merge(shapely.union_all(group.geometry.to_list()))
        if line.geom_type != "LineString":
            raise DataError(files.SEGMENTS, "geometry", f"segment {seg_id}: subsegments do not join into one line")
        if seg_id not in n_comids.index:
            raise DataError(files.CROSSWALK, "seg_id_nat", f"segment {seg_id} has no crosswalk row")
        to = lower["to_subseg"]
        rows.append({
            "seg_id_nat": int(seg_id),
            "to_segment": 0 if pd.isna(to) else int(parent_of[to]),
            "length_m": float(lower["seg_length_m"]),
            "slope": float(lower["seg_slope"]),
            "elevation_m": float(lower["seg_elev_m"]),
            "width_m": float(lower["seg_width_m"]),
            "cum_area_km2": float(lower["seg_cum_area_km2"]),
            "n_reaches": int(max(1, n_comids[seg_id])),
            "geometry": line,
        })
    segments = gpd.GeoDataFrame(rows, crs=subsegments.crs).set_index("seg_id_nat").sort_index()
    segments["outlet_reach"] = [f"{s}_{n}" for s, n in zip(segments.index, segments["n_reaches"])]
    return segments[SEGMENT_COLUMNS]


def cut_reaches(segments: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """Cut each segment into ``n_reaches`` equal-length reaches (see :class:`MultiscaleNetwork`).

    A segment's last reach flows to the reach of its downstream segment that contains the
    junction (the downstream line's point nearest the segment's end): the first reach, except
    where a tributary joins a merged split segment part-way.
    """
    projected = segments.geometry.to_crs(PROJECTED_CRS)
    rows = []
    for seg_id, seg in segments.iterrows():
        line, n, length = projected[seg_id], int(seg["n_reaches"]), float(seg["length_m"])
        to_reach = ""
        if seg["to_segment"] != 0:
            down = segments.loc[seg["to_segment"]]
            down_line = projected[seg["to_segment"]]
            frac = down_line.project(shapely.Point(line.coords[-1]), normalized=True)
            to_reach = f"{seg['to_segment']}_{min(int(down['n_reaches']), int(frac * down['n_reaches']) + 1)}"
        for k in range(1, n + 1):
            midpoint_from_top = (k - 0.5) * length / n
            elevation = seg["elevation_m"] + seg["slope"] * (length / 2 - midpoint_from_top)
            rows.append({
                "reach_id": f"{seg_id}_{k}",
                "segment": int(seg_id),
                "position": k,
                "to_reach": f"{seg_id}_{k + 1}" if k < n else to_reach,
                "length_m": length / n,
                "slope": float(seg["slope"]),
                "elevation_m": float(elevation),
                "width_m": float(seg["width_m"]),
                "air_temp_correction_c": LAPSE_RATE_C_PER_M * (elevation - seg["elevation_m"]),
                "geometry": substring(line, (k - 1) / n, k / n, normalized=True),
                "midpoint": line.interpolate((k - 0.5) / n, normalized=True),
            })
    reaches = gpd.GeoDataFrame(rows, crs=PROJECTED_CRS).set_index("reach_id")
    midpoints = gpd.GeoSeries(reaches.pop("midpoint"), crs=PROJECTED_CRS).to_crs(segments.crs)
    reaches["lon"], reaches["lat"] = midpoints.x, midpoints.y
    return reaches.to_crs(segments.crs)[REACH_COLUMNS]


def segment_updown(subseg_ids: np.ndarray, updown: np.ndarray, subsegments: gpd.GeoDataFrame,
                   segment_ids: pd.Index) -> np.ndarray:
    """River-dl subsegment ``updown`` restricted to each segment's outlet subsegment.

    Returns (segments, segments) float64 m in the order of ``segment_ids``.
    """
    outlets = subsegments.loc[~subsegments["is_split_upper_half"], ["subseg_id", "parent_seg_id_nat"]]
    outlet_of = dict(zip(outlets["parent_seg_id_nat"], outlets["subseg_id"]))
    position = {s: k for k, s in enumerate(subseg_ids)}
    missing = [s for s in segment_ids if outlet_of.get(s) not in position]
    if missing:
        raise DataError(files.DISTANCE, "subseg_id", f"no row for the outlet subsegment of segments {missing[:5]}")
    rows = np.array([position[outlet_of[s]] for s in segment_ids])
    return updown[np.ix_(rows, rows)]


def build_network(bundle: files.Bundle) -> MultiscaleNetwork:
    """Read and validate the bundle's network files and build the two-scale network.

    Raises DataError for missing files or columns, unknown or duplicated ids, or a cycle.
    """
    subsegments = files.read_segments(bundle)
    crosswalk = files.read_crosswalk(bundle)
    subseg_ids, updown = files.read_distance_matrix(bundle)
    segments = merge_segments(subsegments, crosswalk)
    to_index = downstream_index(list(segments.index), list(segments["to_segment"]), files.SEGMENTS, "to_subseg")
    check_acyclic(to_index, files.SEGMENTS, "to_subseg")
    reaches = cut_reaches(segments)
    check_acyclic(downstream_index(list(reaches.index), list(reaches["to_reach"])), files.SEGMENTS, "to_subseg")
    return MultiscaleNetwork(segments, reaches, segment_updown(subseg_ids, updown, subsegments, segments.index))

