"""Checks on the real DRB bundle (marker ``data``; skipped when the bundle is absent)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pytest
import shapely

from msgl_core.data import PRESETS, MultiscaleData, load_dataset
from msgl_core.paths import resolve_data_dir

pytestmark = pytest.mark.data


@pytest.fixture(scope="module")
def drb(tmp_path_factory: pytest.TempPathFactory) -> MultiscaleData:
    try:
        data_dir = resolve_data_dir()
    except FileNotFoundError:
        pytest.skip("real DRB bundle not found")
    return load_dataset(data_dir, tmp_path_factory.mktemp("drb-cache"))


def test_real_network_sizes(drb: MultiscaleData) -> None:
    info = drb.info()
    assert info["n_segments"] == 456
    assert info["n_reaches"] == 3229  # one reach per NHDPlusV2 COMID of the crosswalk
    assert info["n_coarse_obs"] > 400_000 and info["n_fine_obs"] > 300_000
    assert (info["time_start"], info["time_end"]) == ("1979-01-01", "2021-12-31")
    # Reach lengths add up to the segment lengths.
    sums = drb.network.reaches.groupby("segment")["length_m"].sum()
    np.testing.assert_allclose(sums.loc[drb.network.segments.index], drb.network.segments["length_m"])


@pytest.mark.parametrize("name", list(PRESETS))
def test_preset_outlets_end_at_their_mouths(drb: MultiscaleData, name: str) -> None:
    preset = PRESETS[name]
    segment = drb.network.segments.loc[[preset.outlet]].to_crs(5070)
    end = shapely.Point(segment.geometry.iloc[0].coords[-1])
    mouth = gpd.GeoSeries([shapely.Point(preset.mouth)], crs=4326).to_crs(5070).iloc[0]
    assert end.distance(mouth) < 6000
    # A tributary, not the main stem: its downstream segment drains a much larger area.
    downstream = drb.network.segments.loc[segment["to_segment"].iloc[0]]
    assert downstream["cum_area_km2"] > 3 * segment["cum_area_km2"].iloc[0]


def test_data_dir_resolution_prefers_argument(tmp_path: Path) -> None:
    assert resolve_data_dir(tmp_path) == tmp_path.resolve()


def test_map_layers(drb: MultiscaleData) -> None:
    from msgl_core.data import map_layers

    layers = map_layers(drb)
    assert len(layers.boundary) == 1 and len(layers.dams) == 20 and len(layers.reservoirs) == 20
    assert layers.sites["reach_id"].isin(drb.network.reaches.index).all()
    assert layers.sites["n_obs_days"].max() > 1000
