"""Building, caching and loading the processed dataset from the tiny bundle."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from msgl_core.data import MultiscaleData, build_dataset, fine_drivers, load_dataset, subnetwork
from msgl_core.data.network import LAPSE_RATE_C_PER_M
from msgl_core.errors import DataError
from tests.tiny_bundle import N_COARSE_OBS, N_FINE_OBS, N_REACHES


def test_info_counts(tiny_data: MultiscaleData) -> None:
    info = tiny_data.info()
    assert (info["n_segments"], info["n_reaches"]) == (5, N_REACHES)
    assert info["n_coarse_obs"] == N_COARSE_OBS
    assert (info["n_fine_obs"], info["n_fine_obs_reaches"]) == (N_FINE_OBS, 2)
    assert (info["time_start"], info["time_end"]) == ("2000-01-01", "2000-03-31")
    assert info["drivers"] == ["seg_tave_air", "seginc_swrad", "seg_rain", "seginc_potet"]


def test_observations_are_aggregated_and_snapped(tiny_data: MultiscaleData) -> None:
    coarse = tiny_data.coarse["water_temp_obs"]
    assert float(coarse.sel(time="2000-01-10", segment=103)) == pytest.approx(3.0)  # mean of 2 and 4
    fine = tiny_data.fine["water_temp_obs"]
    observed = fine.notnull().sum("time").to_series()
    assert observed[observed > 0].to_dict() == {"101_1": 91, "104_1": 31}
    air = tiny_data.coarse["seg_tave_air"].sel(segment=101, time="2000-01-05")
    assert float(fine.sel(reach="101_1", time="2000-01-05")) == pytest.approx(0.9 * float(air) + 1, abs=1e-4)


def test_every_variable_has_units_and_long_name(tiny_data: MultiscaleData) -> None:
    for ds in (tiny_data.coarse, tiny_data.fine):
        for name, var in ds.data_vars.items():
            assert "units" in var.attrs and "long_name" in var.attrs, name


def test_crosswalk_and_tributary_junction(tiny_data: MultiscaleData) -> None:
    net = tiny_data.network
    assert net.segments["outlet_reach"].to_dict() == {101: "101_2", 102: "102_1", 103: "103_3",
                                                      104: "104_3", 105: "105_1"}
    # 102 joins the merged split segment 103 half-way, inside its second reach.
    assert net.reaches.loc["102_1", "to_reach"] == "103_2"
    assert net.reaches.loc["101_2", "to_reach"] == "103_1"
    assert net.reach_updown().shape == (N_REACHES, N_REACHES)


def test_fine_drivers_are_parent_values_with_lapse_correction(tiny_data: MultiscaleData) -> None:
    drivers = fine_drivers(tiny_data.coarse, tiny_data.fine, ["seg_tave_air", "seginc_swrad"])
    assert drivers["seg_tave_air"].dims == ("time", "reach")
    parent = tiny_data.coarse.sel(segment=101)
    np.testing.assert_allclose(drivers["seginc_swrad"].sel(reach="101_1"), parent["seginc_swrad"])
    reach = tiny_data.network.reaches.loc["101_1"]
    expected = parent["seg_tave_air"] + LAPSE_RATE_C_PER_M * (reach["elevation_m"] - 500.0)
    np.testing.assert_allclose(drivers["seg_tave_air"].sel(reach="101_1"), expected, rtol=1e-5)
    assert reach["elevation_m"] > 500.0  # upstream half of a sloping segment lies higher


def test_subnetwork_upstream_of_an_outlet(tiny_data: MultiscaleData) -> None:
    sub = subnetwork(tiny_data.network, 103)
    assert sub.segments.index.tolist() == [101, 102, 103]
    assert len(sub.reaches) == 6 and sub.reaches.loc["103_3", "to_reach"] == ""
    assert sub.segment_updown.shape == (3, 3)
    assert subnetwork(tiny_data.network, "drb") is tiny_data.network
    with pytest.raises(ValueError, match="unknown basin 'nowhere'"):
        subnetwork(tiny_data.network, "nowhere")
    with pytest.raises(ValueError, match="unknown basin 999"):
        subnetwork(tiny_data.network, 999)


def test_cache_is_reused_and_keyed_by_content(tiny_bundle: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    first = build_dataset(tiny_bundle, cache)
    stamp = (first / "coarse.nc").stat().st_mtime_ns
    assert build_dataset(tiny_bundle, cache) == first
    assert (first / "coarse.nc").stat().st_mtime_ns == stamp
    manifest = json.loads((first / "manifest.json").read_text())
    assert manifest["fingerprint"] == first.name
    csv = tiny_bundle / "network/nhd_crosswalk.csv"
    csv.write_text(csv.read_text() + "\n")  # same content to the parser, different bytes
    second = build_dataset(tiny_bundle, cache)
    assert second != first and second.is_dir()


def _corrupt_column(path: Path, column: str, value: object) -> None:
    import pandas as pd
    df = pd.read_parquet(path)
    df[column] = value
    df.to_parquet(path)


CORRUPTIONS = {
    "missing file": (lambda b: os.remove(b / "obs/sites.gpkg"), r"obs/sites\.gpkg: missing"),
    "missing column": (
        lambda b: _drop_csv_column(b / "network/nhd_crosswalk.csv", "n_comid_seg"),
        r"network/nhd_crosswalk\.csv: field 'n_comid_seg': column missing",
    ),
    "wrong dtype": (
        lambda b: _corrupt_column(b / "obs/temp_site_daily.parquet", "mean_temp_c", "warm"),
        r"obs/temp_site_daily\.parquet: field 'mean_temp_c': expected float",
    ),
    "wrong unit": (
        lambda b: _corrupt_column(b / "obs/temp_segment_daily.parquet", "mean_temp_c", 75.0),
        r"obs/temp_segment_daily\.parquet: field 'mean_temp_c': expected daily water temperature in °C",
    ),
    "duplicated ids": (
        lambda b: _edit_segments(b, lambda s: s.assign(subseg_id=["1_1"] * len(s))),
        r"network/nhm_segments\.gpkg: field 'subseg_id': duplicated ids",
    ),
    "cycle": (
        lambda b: _edit_segments(b, lambda s: s.assign(to_subseg=s["to_subseg"].fillna("1_1"))),
        r"network/nhm_segments\.gpkg: field 'to_subseg': topology has a cycle",
    ),
    "non-finite driver": (
        lambda b: _nan_driver(b),
        r"sntemp/sntemp_input_output_1979_2021\.nc: field 'seginc_swrad': non-finite driver",
    ),
    "driver units": (
        lambda b: _nan_driver(b, units="Langley d-1"),
        r"field 'seginc_swrad': expected units 'W m-2', found 'Langley d-1'",
    ),
}


def _drop_csv_column(path: Path, column: str) -> None:
    import pandas as pd
    pd.read_csv(path).drop(columns=column).to_csv(path, index=False)


def _edit_segments(bundle: Path, edit) -> None:  # noqa: ANN001
    import geopandas as gpd
    path = bundle / "network/nhm_segments.gpkg"
    edit(gpd.read_file(path)).to_file(path, layer="nhm_segments", driver="GPKG")


def _nan_driver(bundle: Path, units: str = "W m-2") -> None:
    import xarray as xr
    path = bundle / "sntemp/sntemp_input_output_1979_2021.nc"
    ds = xr.load_dataset(path)
    if units == "W m-2":
        ds["seginc_swrad"][3, 1] = np.nan
    ds["seginc_swrad"].attrs["units"] = units
    ds.to_netcdf(path)


@pytest.mark.parametrize("case", list(CORRUPTIONS))
def test_bad_input_raises_clear_error_and_leaves_no_cache(case: str, tiny_bundle: Path, tmp_path: Path) -> None:
    corrupt, message = CORRUPTIONS[case]
    corrupt(tiny_bundle)
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=message):
        build_dataset(tiny_bundle, cache)
    assert not cache.exists() or list(cache.iterdir()) == []


def test_missing_bundle_names_every_place_tried(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MSGL_DATA_DIR", raising=False)
    with pytest.raises(FileNotFoundError, match=r"data/drb \(default\), \.\./shared/data/drb \(default\)"):
        load_dataset(cache_dir=tmp_path / "cache")
