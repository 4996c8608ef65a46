"""Map layers from the bundle: basin outline, reservoirs and dams, observation sites.

All layers are GeoDataFrames in EPSG:4326. Sources (see the bundle README): DRB boundary
(jzwart/delaware-water-temp), GRanD v1.3 dams and SWBD reservoir polygons (Lehner et al. 2011,
CC BY 4.0), USGS/WQP monitoring sites.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import pandas as pd

from msgl_core.data import bundle as files
from msgl_core.data.build import MultiscaleData
from msgl_core.data.timeseries import OBS, TIME, snap_sites


@dataclass(frozen=True)
class MapLayers:
    """Context layers for maps.

    Attributes:
        boundary: the DRB outline (1 polygon).
        reservoirs: reservoir polygons (``DAM_NAME``, ``RES_NAME``, ``AREA_SKM``).
        dams: dam points (``DAM_NAME``, ``RIVER``, ``YEAR``, ``CAP_MCM``).
        sites: monitoring sites snapped to a reach (``site_id``, ``seg_id_nat``, ``reach_id``,
            ``n_obs_days`` in the processed record); sites off the network are not included.
    """

    boundary: gpd.GeoDataFrame
    reservoirs: gpd.GeoDataFrame
    dams: gpd.GeoDataFrame
    sites: gpd.GeoDataFrame


def map_layers(data: MultiscaleData) -> MapLayers:
    """Read the map layers of ``data``'s bundle. Raises DataError if a layer file is missing or unreadable."""
    bundle = files.Bundle(data.bundle_dir)
    boundary = files.read_layer(bundle, files.BOUNDARY)
    reservoirs = files.read_layer(bundle, files.RESERVOIRS, "reservoirs")
    dams = files.read_layer(bundle, files.RESERVOIRS, "dams")
    sites = files.read_sites(bundle)
    reach_of = snap_sites(data.network, sites)
    sites = sites[sites["site_id"].isin(reach_of.index)].copy()
    sites["reach_id"] = reach_of.loc[sites["site_id"]].to_numpy()
    obs_days = data.fine[OBS].notnull().sum(TIME).to_series()
    sites["n_obs_days"] = sites["reach_id"].map(obs_days).fillna(0).astype(int)
    keep = ["site_id", "seg_id_nat", "reach_id", "n_obs_days", "geometry"]
    return MapLayers(boundary.to_crs(4326), reservoirs.to_crs(4326), dams.to_crs(4326),
                     gpd.GeoDataFrame(sites[keep], crs=sites.crs).to_crs(4326))


def reach_table(data: MultiscaleData) -> pd.DataFrame:
    """Per reach: parent segment, length (m), and number of observed days in the record."""
    reaches = data.network.reaches
    obs_days = data.fine[OBS].notnull().sum(TIME).to_series()
    return pd.DataFrame({"segment": reaches["segment"], "length_m": reaches["length_m"],
                         "n_obs_days": obs_days.reindex(reaches.index).fillna(0).astype(int)})
