"""Daily arrays per scale: drivers, simulated and observed water temperature.

Coarse: ``xr.Dataset`` with dims ``(time, segment)``. Fine: ``xr.Dataset`` with dims
``(time, reach)``; fine drivers are NOT stored (they are the parent segment's, plus a per-reach
lapse-rate correction of air temperature) and are gathered by :func:`fine_drivers`.
Sources: PRMS-SNTemp run of the bundle (``sntemp/``), USGS segment observations
(``obs/temp_segment_daily.parquet``) and site observations (``obs/temp_site_daily.parquet``).
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from msgl_core.data import bundle as files
from msgl_core.data.network import PROJECTED_CRS, MultiscaleNetwork
from msgl_core.dims import PARENT_SEGMENT, REACH, SEGMENT, TIME
from msgl_core.errors import DataError

OBS, SIM = "water_temp_obs", "water_temp_sim"
AIR_TEMP = "seg_tave_air"
START, END = "1979-01-01", "2021-12-31"
#: Sites farther than this from their linked NHM segment are not on the network (most such
#: sites are on small tributaries the NHM does not draw; the bundle's median distance is 40 m).
MAX_SITE_DISTANCE_M = 250.0
#: Static attributes shared by both scales, in model-feature order, with units.
STATIC = {"slope": ("m m-1", "channel slope"), "elevation_m": ("m", "elevation"),
          "width_m": ("m", "bankfull width")}


def _attrs(units: str, long_name: str) -> dict[str, str]:
    return {"units": units, "long_name": long_name}


def coarse_dataset(network: MultiscaleNetwork, sntemp: xr.Dataset, segment_obs: pd.DataFrame) -> xr.Dataset:
    """Daily coarse arrays, dims ``(time, segment)``, 1979-01-01..2021-12-31.

    Variables: the drivers of :data:`msgl_core.data.bundle.DRIVER_UNITS` (float32),
    ``water_temp_sim`` (PRMS-SNTemp, °C), ``water_temp_obs`` (USGS segment mean, °C; subsegment
    rows of split segments averaged), static ``slope``, ``elevation_m``, ``width_m``,
    ``length_m``, and ``updown`` (segment, segment_to) m.

    Raises DataError if a segment is missing from the SNTemp file or a driver is not finite.
    """
    segments = network.segments.index.to_numpy()
    sim = sntemp.sel(time=slice(START, END))
    missing = np.setdiff1d(segments, sim["seg_id_nat"].values)
    if len(missing):
        raise DataError(files.SNTEMP, "seg_id_nat", f"segments missing: {missing[:5].tolist()}")
    sim = sim.sel(seg_id_nat=segments).rename(seg_id_nat=SEGMENT).drop_vars(SEGMENT)
    ds = xr.Dataset(coords={TIME: sim[TIME].values, SEGMENT: segments})
    for name, units in files.DRIVER_UNITS.items():
        values = sim[name].values.astype(np.float32)
        if not np.isfinite(values).all():
            bad = np.argwhere(~np.isfinite(values))[0]
            raise DataError(files.SNTEMP, name, f"non-finite driver on {ds[TIME].values[bad[0]]} "
                            f"at segment {segments[bad[1]]}; expected finite values every day")
        ds[name] = ((TIME, SEGMENT), values, _attrs(units, sim[name].attrs.get("long_name", name)))
    ds[SIM] = ((TIME, SEGMENT), sim[files.SIMULATED_WATER_TEMP].values.astype(np.float32),
               _attrs("degC", "simulated daily mean water temperature (PRMS-SNTemp)"))
    obs = segment_obs.groupby(["date", "seg_id_nat"])["mean_temp_c"].mean()
    ds[OBS] = _grid(obs, ds[TIME].values, segments, SEGMENT, files.SEGMENT_OBS).astype(np.float32)
    ds[OBS].attrs = _attrs("degC", "observed daily mean water temperature (USGS, segment aggregate)")
    for name, (units, long_name) in STATIC.items():
        ds[name] = (SEGMENT, network.segments[name].to_numpy(), _attrs(units, long_name))
    ds["length_m"] = (SEGMENT, network.segments["length_m"].to_numpy(), _attrs("m", "segment length"))
    ds["updown"] = ((SEGMENT, "segment_to"), network.segment_updown,
                    _attrs("m", "channel distance between segment outlets: +downstream, -upstream, inf unconnected"))
    ds = ds.assign_coords(segment_to=segments)
    return ds


def snap_sites(network: MultiscaleNetwork, sites: gpd.GeoDataFrame,
               max_distance_m: float = MAX_SITE_DISTANCE_M) -> pd.Series:
    """Reach of each site: the reach of the site's linked segment nearest to the site.

    The site is projected onto its segment's line (EPSG:5070); the reach is the one containing the
    projected point. Sites farther than ``max_distance_m`` from the line are dropped.

    Returns: Series ``site_id -> reach_id``.
    """
    on_network = sites[sites["seg_id_nat"].isin(network.segments.index)]
    points = on_network.geometry.to_crs(PROJECTED_CRS).to_numpy()
    lines = network.segments.geometry.to_crs(PROJECTED_CRS)
    seg_lines = lines.loc[on_network["seg_id_nat"]].to_numpy()
    distance = np.array([ln.distance(pt) for ln, pt in zip(seg_lines, points)])
    fraction = np.array([ln.project(pt, normalized=True) for ln, pt in zip(seg_lines, points)])
    n = network.segments.loc[on_network["seg_id_nat"], "n_reaches"].to_numpy()
    k = np.minimum(n, np.floor(fraction * n).astype(int) + 1)
    reach = [f"{s}_{p}" for s, p in zip(on_network["seg_id_nat"], k)]
    snapped = pd.Series(reach, index=on_network["site_id"].to_numpy(), name="reach_id")
    return snapped[distance <= max_distance_m]


def fine_dataset(network: MultiscaleNetwork, site_obs: pd.DataFrame, site_reach: pd.Series,
                 time: np.ndarray) -> xr.Dataset:
    """Fine arrays, dims ``(time, reach)``: ``water_temp_obs`` (°C, sites on the same reach-day
    averaged) and per-reach statics (parent ``segment``, ``position``, ``slope``, ``elevation_m``,
    ``width_m``, ``length_m``, ``lon``, ``lat``, ``air_temp_correction_c``)."""
    reaches = network.reaches
    obs = site_obs[site_obs["site_id"].isin(site_reach.index)].copy()
    obs["reach_id"] = site_reach.loc[obs["site_id"]].to_numpy()
    grid = _grid(obs.groupby(["date", "reach_id"])["mean_temp_c"].mean(), time, reaches.index.to_numpy(),
                 REACH, files.SITE_OBS)
    ds = xr.Dataset({OBS: grid.astype(np.float32)}, coords={TIME: time, REACH: reaches.index.to_numpy()})
    ds[OBS].attrs = _attrs("degC", "observed daily mean water temperature (sites snapped to reaches)")
    ds = ds.assign_coords({PARENT_SEGMENT: (REACH, reaches["segment"].to_numpy()),
                           "position": (REACH, reaches["position"].to_numpy())})
    ds[PARENT_SEGMENT].attrs = {"long_name": "parent NHM segment (seg_id_nat)"}
    for name, (units, long_name) in STATIC.items():
        ds[name] = (REACH, reaches[name].to_numpy(), _attrs(units, long_name))
    ds["length_m"] = (REACH, reaches["length_m"].to_numpy(), _attrs("m", "reach length"))
    ds["lon"] = (REACH, reaches["lon"].to_numpy(), _attrs("degrees_east", "reach midpoint longitude"))
    ds["lat"] = (REACH, reaches["lat"].to_numpy(), _attrs("degrees_north", "reach midpoint latitude"))
    ds["air_temp_correction_c"] = (REACH, reaches["air_temp_correction_c"].to_numpy(),
                                   _attrs("degC", "lapse-rate (-6.5 degC/km) correction of the parent's air temperature"))
    return ds


def fine_drivers(coarse: xr.Dataset, fine: xr.Dataset, names: list[str] | tuple[str, ...]) -> xr.Dataset:
    """Gather daily drivers (or ``water_temp_sim``) onto reaches: the parent segment's values,
    with air temperature corrected to the reach's elevation.

    Returns: Dataset of ``names``, dims ``(time, reach)``, same units as ``coarse``.
    """
    gathered = coarse[list(names)].sel({SEGMENT: fine[PARENT_SEGMENT].values})
    gathered = gathered.rename({SEGMENT: REACH}).assign_coords({REACH: fine[REACH].values})
    if AIR_TEMP in names:
        gathered[AIR_TEMP] = gathered[AIR_TEMP] + fine["air_temp_correction_c"].astype(np.float32)
        gathered[AIR_TEMP].attrs = coarse[AIR_TEMP].attrs
    return gathered


def _grid(series: pd.Series, time: np.ndarray, nodes: np.ndarray, node_dim: str, file: str) -> xr.DataArray:
    """Long (date, node) → value series onto a dense (time, ``node_dim``) grid; other dates/nodes dropped."""
    index = series.index
    if index.duplicated().any():
        raise DataError(file, "date", "duplicated (date, id) rows after aggregation")
    t = pd.Index(time).get_indexer(pd.to_datetime(index.get_level_values(0)).astype("datetime64[ns]"))
    n = pd.Index(nodes).get_indexer(index.get_level_values(1))
    keep = (t >= 0) & (n >= 0)
    grid = np.full((len(time), len(nodes)), np.nan)
    grid[t[keep], n[keep]] = series.to_numpy()[keep]
    return xr.DataArray(grid, dims=(TIME, node_dim))
