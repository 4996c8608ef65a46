"""Read-only data shared by every session of a server process: the dataset, map layers and geometry.

Built once per process by :func:`load_resources` (``pn.cache``) and never mutated afterwards, so
sessions can share it safely; per-session state lives in :mod:`dashboard.state`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import panel as pn

from dashboard.geometry import SIMPLIFY_M, Bounds, line_pieces, nearest_line, polygon_table, ring_paths, to_mercator
from dashboard.results import run_stamp
from msgl_core import (
    PARENT_SEGMENT,
    PRESETS,
    MapLayers,
    MultiscaleData,
    Reliability,
    Run,
    available_presets,
    check_domain,
    load_dataset,
    map_layers,
    reach_table,
    reliability,
)

log = logging.getLogger(__name__)

#: Coarse segments are drawn wide and faint under the reaches, so they are simplified more, m.
COARSE_SIMPLIFY_M = 100.0


class Resources:
    """The dataset and everything derived from it that does not depend on a session.

    Attributes:
        data: the processed two-scale dataset.
        layers: basin outline, reservoirs, dams, sites (None when the bundle has no map layers).
        layers_note: why ``layers`` is None ("" otherwise).
        reaches: GeoDataFrame of fine reaches in Web Mercator, indexed by ``reach_id``, with
            ``parent_segment`` (``seg_id_nat``), ``length_m`` (m), ``n_obs_days`` (observed days in
            the record) and ``x``, ``y`` (midpoint, m).
        segments: GeoDataFrame of coarse NHM segments in Web Mercator, indexed by ``seg_id_nat``.
        reach_pieces, segment_pieces: straight pieces for ``hv.Segments`` (see
            :func:`dashboard.geometry.line_pieces`) with the hover columns of each line.
        bounds: extent of the whole network (Web Mercator, m).

    Observation counts of a run's domain are msgl_core's (:func:`msgl_core.observation_counts`), not
    computed here.
    """

    def __init__(self, data: MultiscaleData, layers: MapLayers | None, layers_note: str = "") -> None:
        self.data = data
        self.layers = layers
        self.layers_note = layers_note
        network = data.network
        info = reach_table(data)
        reaches = to_mercator(network.reaches[["segment", "length_m", "geometry"]].rename(
            columns={"segment": PARENT_SEGMENT}))
        reaches["n_obs_days"] = info["n_obs_days"].reindex(reaches.index).fillna(0).astype(int)
        middle = reaches.geometry.interpolate(0.5, normalized=True)
        reaches["x"], reaches["y"] = middle.x.to_numpy(), middle.y.to_numpy()
        self.reaches = reaches
        self.segments = to_mercator(network.segments[["to_segment", "length_m", "n_reaches", "cum_area_km2",
                                                      "geometry"]].copy())
        self.segments["n_obs_days"] = reaches.groupby(PARENT_SEGMENT)["n_obs_days"].sum().reindex(
            self.segments.index).fillna(0).astype(int)
        self.reach_pieces = _pieces(reaches, {
            "reach": reaches.index.to_numpy(), PARENT_SEGMENT: reaches[PARENT_SEGMENT].to_numpy(),
            "length_km": reaches["length_m"].to_numpy() / 1000, "n_obs_days": reaches["n_obs_days"].to_numpy(),
            "observed": np.where(reaches["n_obs_days"].to_numpy() > 0, "observed", "no observations")})
        self.segment_pieces = _pieces(self.segments, tolerance=COARSE_SIMPLIFY_M, columns={
            "segment": self.segments.index.to_numpy(), "length_km": self.segments["length_m"].to_numpy() / 1000,
            "n_reaches": self.segments["n_reaches"].to_numpy(),
            "area_km2": self.segments["cum_area_km2"].to_numpy(), "n_obs_days": self.segments["n_obs_days"].to_numpy()})
        self.bounds = Bounds.of(self.segments)
        # Context layers are reprojected once here: every map of every session draws them.
        self._boundary = _boundary_paths(layers)
        self._reservoirs = _reservoir_polygons(layers)
        self._dams = _dam_points(layers)
        self._sites = _site_points(layers)
        self._domains: dict[str, gpd.GeoDataFrame] = {}
        self._verdicts: dict[tuple[str, tuple[int, int]], Reliability] = {}
        self._lock = threading.Lock()

    # -- domains ---------------------------------------------------------------------------------

    @property
    def presets(self) -> list[str]:
        """Preset sub-basins present in this network."""
        return available_presets(self.data.network)

    def preset_description(self, name: str) -> str:
        """One line describing preset ``name``."""
        return PRESETS[name].description

    def domain_segments(self, basin: str) -> pd.Index:
        """``seg_id_nat`` of ``basin`` ("drb", a preset or an outlet ``seg_id_nat`` as text), ascending,
        as :func:`msgl_core.check_domain` gives them.

        Raises ValueError (from msgl_core) for an unknown basin.
        """
        return self._domain(basin).index

    def domain_reaches(self, basin: str) -> gpd.GeoDataFrame:
        """Rows of :attr:`reaches` inside ``basin`` (see :meth:`domain_segments`)."""
        segments = self.domain_segments(basin)
        return self.reaches[self.reaches[PARENT_SEGMENT].isin(segments)]

    def domain_bounds(self, basin: str) -> Bounds:
        """Extent of ``basin``'s segments (Web Mercator, m), padded like :attr:`bounds`."""
        return Bounds.of(self._domain(basin))

    def _domain(self, basin: str) -> gpd.GeoDataFrame:
        key = str(basin).lower()
        with self._lock:
            if key not in self._domains:
                self._domains[key] = self.segments.loc[check_domain(self.data.network, key)]
            return self._domains[key]

    def reliability(self, run: Run) -> Reliability:
        """:func:`msgl_core.reliability` of ``run`` on this dataset, computed once per state of its record
        (:func:`dashboard.results.run_stamp`): every page marks the unreliable runs of the run cache, and a hundred
        verdicts cost ~0.7 s per page."""
        stamp = run_stamp(run.path)
        if stamp is None:  # a record without its folder: nothing to key the verdict by
            return reliability(run, self.data)
        key = (str(run.path), stamp)
        with self._lock:
            verdict = self._verdicts.get(key)
        if verdict is None:
            verdict = reliability(run, self.data)
            with self._lock:
                self._verdicts[key] = verdict
        return verdict

    # -- picking ---------------------------------------------------------------------------------

    def nearest_reach(self, x: float, y: float, reach_ids: Sequence[str] | pd.Index, max_distance: float) -> str | None:
        """Id of the reach among ``reach_ids`` nearest to (x, y) (Web Mercator, m), or None beyond ``max_distance`` m."""
        candidates = self.reaches.loc[pd.Index(reach_ids).intersection(self.reaches.index)]
        position = nearest_line(candidates.geometry, x, y, max_distance)
        return None if position is None else str(candidates.index[position])

    def nearest_segment(self, x: float, y: float, max_distance: float) -> int | None:
        """``seg_id_nat`` of the segment nearest to (x, y) (Web Mercator, m), or None beyond ``max_distance`` m."""
        position = nearest_line(self.segments.geometry, x, y, max_distance)
        return None if position is None else int(self.segments.index[position])

    # -- context layers (Web Mercator) -----------------------------------------------------------

    def boundary_paths(self) -> list[np.ndarray]:
        """Basin outline rings as (n, 2) arrays (m); empty without map layers."""
        return self._boundary

    def reservoir_polygons(self) -> list[dict]:
        """Reservoir polygons with ``name`` (reservoir name, else its dam's) and ``area_km2``, for ``hv.Polygons``;
        empty without map layers."""
        return self._reservoirs

    def dam_points(self) -> pd.DataFrame:
        """Dams: ``x``, ``y`` (m), ``name``, ``river``, ``year``; empty without map layers."""
        return self._dams

    def site_points(self) -> pd.DataFrame:
        """Observation sites: ``x``, ``y`` (m), ``site_id``, ``reach``, ``segment``, ``n_obs_days``."""
        return self._sites


def _boundary_paths(layers: MapLayers | None) -> list[np.ndarray]:
    return [] if layers is None else ring_paths(to_mercator(layers.boundary).geometry)


def _text_column(frame: pd.DataFrame, *names: str) -> pd.Series:
    """The first of columns ``names`` present in ``frame`` with gaps filled from the next ones, as text ("" if none)."""
    text = pd.Series("", index=frame.index, dtype=object)
    for name in reversed(names):
        if name in frame:
            text = frame[name].where(frame[name].notna() & (frame[name].astype(str).str.strip() != ""), text)
    return text.astype(str)


def _reservoir_polygons(layers: MapLayers | None) -> list[dict]:
    if layers is None or layers.reservoirs.empty:
        return []
    res = to_mercator(layers.reservoirs)
    frame = gpd.GeoDataFrame({"name": _text_column(res, "RES_NAME", "DAM_NAME"),
                              "area_km2": res.get("AREA_SKM", np.nan)}, geometry=res.geometry)
    return polygon_table(frame, ["name", "area_km2"])


def _dam_points(layers: MapLayers | None) -> pd.DataFrame:
    if layers is None or layers.dams.empty:
        return pd.DataFrame({"x": [], "y": [], "name": [], "river": [], "year": []})
    dams = to_mercator(layers.dams)
    return pd.DataFrame({"x": dams.geometry.x, "y": dams.geometry.y, "name": _text_column(dams, "DAM_NAME"),
                         "river": _text_column(dams, "RIVER"), "year": dams.get("YEAR", np.nan)}).reset_index(drop=True)


def _site_points(layers: MapLayers | None) -> pd.DataFrame:
    if layers is None or layers.sites.empty:
        return pd.DataFrame({"x": [], "y": [], "site_id": [], "reach": [], "segment": [], "n_obs_days": []})
    sites = to_mercator(layers.sites)
    return pd.DataFrame({"x": sites.geometry.x, "y": sites.geometry.y, "site_id": sites["site_id"].astype(str),
                         "reach": sites["reach_id"].astype(str), "segment": sites["seg_id_nat"].astype(int),
                         "n_obs_days": sites["n_obs_days"].astype(int)}).reset_index(drop=True)


def _pieces(frame: gpd.GeoDataFrame, columns: dict[str, np.ndarray], tolerance: float = SIMPLIFY_M) -> pd.DataFrame:
    pieces = line_pieces(frame.geometry, tolerance)
    line = pieces.pop("line").to_numpy()
    for name, values in columns.items():
        pieces[name] = np.asarray(values)[line]
    return pieces


def resources_from_data(data: MultiscaleData) -> Resources:
    """:class:`Resources` for ``data``; missing map layers leave ``layers`` None with a note."""
    try:
        layers: MapLayers | None = map_layers(data)
        note = ""
    except (OSError, ValueError) as error:  # the bundle has no boundary/reservoir files
        log.warning("map layers unavailable: %s", error)
        layers, note = None, f"Map layers (basin outline, reservoirs, sites) are not available: {error}"
    return Resources(data, layers, note)


@pn.cache(max_items=2)
def load_resources(data_dir: str | None = None, cache_dir: str | None = None) -> Resources:
    """Load (building if needed) the dataset once per process and derive the map geometry.

    Raises FileNotFoundError when the DRB bundle cannot be found, ValueError for bad data.
    """
    data = load_dataset(None if data_dir is None else Path(data_dir), None if cache_dir is None else Path(cache_dir))
    return resources_from_data(data)
