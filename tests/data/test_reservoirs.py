"""Nearest-upstream-dam attributes and the reservoir input option, on the tiny network (one dam on reach 103_3)."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import torch

from msgl_core.config import RunConfig
from msgl_core.data import MultiscaleData, load_dataset
from msgl_core.data import bundle as files
from msgl_core.data.dataset import DRIVERS, batch, prepare
from msgl_core.data.reservoirs import DAM_DECAY_KM, dam_attributes, dam_features
from msgl_core.errors import DataError
from msgl_core.registry import get_variant
from tests.tiny_bundle import N_REACHES, PERIODS

BELOW = ["103_3", "104_1", "104_2", "104_3", "105_1"]


def test_reaches_below_the_dam_get_its_attributes_and_channel_distance(tiny_data: MultiscaleData) -> None:
    reaches, fine = tiny_data.network.reaches, tiny_data.fine
    distance = fine["dam_distance_km"].to_series()
    assert sorted(distance.dropna().index) == BELOW
    expected = np.cumsum([0.0] + [reaches.loc[r, "length_m"] / 1000 for r in BELOW[1:]])
    np.testing.assert_allclose(distance[BELOW].to_numpy(), expected, rtol=1e-9)
    assert set(fine["dam_name"].to_series()[BELOW]) == {"Tiny Dam"}
    assert set(fine["dam_name"].to_series().drop(BELOW)) == {""}
    np.testing.assert_array_equal(fine["dam_storage_mcm"].to_series()[BELOW].to_numpy(), 99.0)
    assert fine["dam_dor_pc"].attrs["units"] == "percent" and fine["dam_distance_km"].attrs["units"] == "km"


def test_segments_below_the_dam_and_the_off_network_dam_is_left_out(tiny_data: MultiscaleData) -> None:
    coarse, segments = tiny_data.coarse, tiny_data.network.segments
    distance = coarse["dam_distance_km"].to_series()
    assert sorted(distance.dropna().index) == [103, 104, 105]
    np.testing.assert_allclose(distance[[103, 104, 105]].to_numpy(),
                               [0, segments.loc[104, "length_m"] / 1000, segments.loc[[104, 105], "length_m"].sum() / 1000])
    assert set(coarse["dam_dor_pc"].to_series().dropna()) == {80.0}  # not the off-network dam's 4000 %


def test_the_nearest_dam_wins_and_a_larger_one_breaks_a_tie(tiny_bundle, tiny_data: MultiscaleData) -> None:
    dams = files.read_dams(files.Bundle(tiny_bundle))
    second = dams.iloc[[0]].assign(GRAND_ID=9, DAM_NAME="Lower Dam", CAP_MCM=5.0,
                                   geometry=gpd.points_from_xy([-74.9001], [40.79], crs=4326))
    second["nearest_seg_id_nat"] = 104
    _, reaches = dam_attributes(tiny_data.network, pd.concat([dams, second]))
    assert reaches.loc["103_3", "dam_name"] == "Tiny Dam"
    assert reaches.loc["104_1", "dam_name"] == "Lower Dam" and reaches.loc["104_1", "dam_distance_km"] == 0.0
    twin = dams.iloc[[0]].assign(GRAND_ID=10, DAM_NAME="Big Twin", CAP_MCM=500.0)
    _, reaches = dam_attributes(tiny_data.network, pd.concat([dams, twin]))
    assert set(reaches.loc[BELOW, "dam_name"]) == {"Big Twin"}


def test_dam_features_are_zero_without_a_dam_and_decay_along_the_channel() -> None:
    out = dam_features(np.array([0.0, DAM_DECAY_KM, np.nan]), np.array([9.0, 9.0, np.nan]), np.array([150.0, 150.0, np.nan]))
    np.testing.assert_allclose(out, [[1.0, 1.0, 1.5], [np.exp(-1), 1.0, 1.5], [0, 0, 0]])
    with pytest.raises(ValueError, match="dam_storage_mcm must be finite"):
        dam_features(np.array([1.0]), np.array([np.nan]), np.array([1.0]))


def test_reservoir_features_add_three_statics_at_both_scales(tiny_data: MultiscaleData) -> None:
    base = RunConfig.from_dict({"basin": "drb", "window": 20, **PERIODS})
    plain, with_dams = prepare(tiny_data, base), prepare(tiny_data, base.with_overrides(reservoir_features=True))
    assert plain.n_features == 3 + len(DRIVERS) and with_dams.n_features == 6 + len(DRIVERS)
    window = with_dams.windows["train"][0]
    b, b0 = batch(with_dams, window), batch(plain, window)
    assert b.x_fine.shape == (N_REACHES, 20, 10) and b.x_coarse.shape == (5, 20, 10)
    torch.testing.assert_close(b.x_fine[..., :3], b0.x_fine[..., :3])
    torch.testing.assert_close(b.x_fine[..., 6:], b0.x_fine[..., 3:])
    below = np.isin(with_dams.reach_ids, BELOW)
    proximity = with_dams.x_static_fine[:, 3]
    assert proximity[below].min() > proximity[~below].max()  # standardised, still ordered
    variant = get_variant("msgl")
    model = variant.build(with_dams, base.with_overrides(reservoir_features=True))
    assert variant.predict_fine(model, b).shape == (N_REACHES, 20)


def test_the_option_is_part_of_the_run_key_only_when_set() -> None:
    base = RunConfig()
    assert base.key("d") != base.with_overrides(reservoir_features=True).key("d")
    assert RunConfig.from_yaml_text(base.with_overrides(reservoir_features=True).to_yaml()).reservoir_features


def test_a_dams_layer_without_storage_is_named(tiny_bundle, tmp_path) -> None:
    dams = gpd.read_file(tiny_bundle / files.RESERVOIRS, layer="dams").drop(columns="CAP_MCM")
    dams.to_file(tiny_bundle / files.RESERVOIRS, layer="dams", driver="GPKG")
    with pytest.raises(DataError, match="reservoirs.gpkg.*CAP_MCM"):
        load_dataset(tiny_bundle, tmp_path / "cache")
