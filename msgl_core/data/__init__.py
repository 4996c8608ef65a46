"""The two-scale DRB dataset: network, daily arrays, sub-basins, cache."""

from msgl_core.data.basins import PRESETS, BasinPreset, available_presets, basin_outlet, subnetwork, upstream_segments
from msgl_core.data.build import MultiscaleData, build_dataset, load_dataset
from msgl_core.data.layers import MapLayers, map_layers, reach_table
from msgl_core.data.network import MultiscaleNetwork, build_network
from msgl_core.data.timeseries import fine_drivers

__all__ = [
    "PRESETS", "BasinPreset", "MapLayers", "MultiscaleData", "available_presets", "MultiscaleNetwork", "basin_outlet", "build_dataset",
    "build_network", "fine_drivers", "load_dataset", "map_layers", "reach_table", "subnetwork", "upstream_segments",
]
