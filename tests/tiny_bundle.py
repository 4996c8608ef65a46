"""A tiny DRB-like bundle written in code: 5 NHM segments (one split into two subsegments).

Observations follow the air temperature (see N_COARSE_OBS, N_FINE_OBS). Topology (seg_id_nat): 101 → 103, 102 → 103 (joins the split segment 103 at its split point),
103 → 104 → 105 (outlet). COMIDs per segment: 101: 2, 102: 1, 103: 2 + 1, 104: 3, 105: 1,
so the fine network has 10 reaches.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr
from shapely.geometry import LineString, Point

from msgl_core.data.topology import downstream_index, updown_from_topology

TIME = pd.date_range("2000-01-01", "2000-03-31", freq="D")
SUBSEGMENTS = [  # subseg_id, seg_id_nat (None = upper half), parent, to_subseg, line, n_comid
    ("1_1", 101, 101, "3_1", [(-75.00, 41.00), (-74.95, 40.95), (-74.90, 40.90)], 2),
    ("2_1", 102, 102, "3_2", [(-74.80, 41.00), (-74.90, 40.85)], 1),
    ("3_1", None, 103, "3_2", [(-74.90, 40.90), (-74.90, 40.85)], 2),
    ("3_2", 103, 103, "4_1", [(-74.90, 40.85), (-74.90, 40.80)], 1),
    ("4_1", 104, 104, "5_1", [(-74.90, 40.80), (-74.90, 40.70)], 3),
    ("5_1", 105, 105, None, [(-74.90, 40.70), (-74.90, 40.60)], 1),
]
SEGMENT_IDS = [101, 102, 103, 104, 105]
N_REACHES = 10
#: Observed segment-days: 103 once (two subsegment rows averaged), 105 daily; a NaN row is dropped.
N_COARSE_OBS = 1 + len(TIME)
#: Observed reach-days: site S-on-101 daily on reach 101_1, S-on-104 every third day on 104_1; the
#: site 'S-far' (>250 m from its segment) is dropped.
N_FINE_OBS = len(TIME) + len(TIME[::3])
#: GRanD-like dams: "Tiny Dam" on reach 103_3 (so 103_3, 104_1..3 and 105_1 lie below it; segments 103-105);
#: "Off Dam" 5.6 km from its nearest segment, off the network.
DAMS = {"GRAND_ID": [7, 8], "DAM_NAME": ["Tiny Dam", "Off Dam"], "RIVER": ["Tiny Creek", "Off Creek"],
        "YEAR": [1960, 1970], "CAP_MCM": [99.0, 50.0], "DOR_PC": [80.0, 4000.0], "nearest_seg_id_nat": [103, 104],
        "dist_to_segment_m": [25.0, 5600.0]}
#: Periods for training tests on the tiny record (inclusive).
PERIODS = {"train_periods": [("2000-01-01", "2000-02-15")], "val_periods": [("2000-02-16", "2000-03-10")],
           "test_periods": [("2000-03-11", "2000-03-31")]}


def segments_frame() -> gpd.GeoDataFrame:
    """The subsegment GeoDataFrame of ``network/nhm_segments.gpkg``."""
    lines = gpd.GeoSeries([LineString(s[4]) for s in SUBSEGMENTS], crs=4326)
    length = lines.to_crs(5070).length.to_numpy()
    parent = np.array([s[2] for s in SUBSEGMENTS])
    seg_length = np.array([length[parent == p].sum() for p in parent])
    return gpd.GeoDataFrame({
        "subseg_id": [s[0] for s in SUBSEGMENTS],
        "seg_id_nat": [np.nan if s[1] is None else float(s[1]) for s in SUBSEGMENTS],
        "parent_seg_id_nat": parent,
        "is_split_upper_half": [s[1] is None for s in SUBSEGMENTS],
        "to_subseg": [s[3] for s in SUBSEGMENTS],
        "length_m": length,
        "seg_length_m": seg_length,
        "seg_slope": np.full(len(parent), 0.002),
        "seg_elev_m": 500.0 - 50.0 * np.arange(len(parent)),
        "seg_width_m": np.full(len(parent), 10.0),
        "seg_cum_area_km2": 10.0 * (1 + np.arange(len(parent))),
    }, geometry=lines, crs=4326)


def write_tiny_bundle(root: Path) -> Path:
    """Write every file the build reads into ``root`` (created) and return it."""
    for sub in ("network", "obs", "sntemp"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    seg = segments_frame()
    seg.to_file(root / "network/nhm_segments.gpkg", layer="nhm_segments", driver="GPKG")
    pd.DataFrame({
        "subseg_id": seg["subseg_id"], "seg_id_nat": seg["parent_seg_id_nat"],
        "comid_down": 1000 + np.arange(len(seg)), "n_comid_seg": [s[5] for s in SUBSEGMENTS],
        "comid_seg": [";".join(str(10 * k + j) for j in range(s[5])) for k, s in enumerate(SUBSEGMENTS)],
    }).to_csv(root / "network/nhd_crosswalk.csv", index=False)
    ids = seg["subseg_id"].tolist()
    to_index = downstream_index(ids, [t or "" for t in seg["to_subseg"]])
    np.savez(root / "network/nhm_distance_matrix.npz", subseg_id=np.array(ids),
             updown=updown_from_topology(to_index, seg["length_m"].to_numpy()))
    sites = gpd.GeoDataFrame({
        "site_id": ["S-on-101", "S-on-104", "S-far"],
        "seg_id_nat": [101, 104, 105],
        "subseg_id": ["1_1", "4_1", "5_1"],
    }, geometry=[Point(-74.999, 40.999), Point(-74.9001, 40.79), Point(-74.80, 40.65)], crs=4326)
    sites.to_file(root / "obs/sites.gpkg", layer="sites", driver="GPKG")
    gpd.GeoDataFrame(DAMS, geometry=[Point(-74.9003, 40.81), Point(-74.80, 40.75)], crs=4326).to_file(
        root / "network/reservoirs.gpkg", layer="dams", driver="GPKG")
    rng = np.random.default_rng(0)
    air = 5 + 10 * np.sin(np.arange(len(TIME)) / 58)[:, None] + rng.normal(0, 1, (len(TIME), len(SEGMENT_IDS)))
    every3 = TIME[::3]
    pd.DataFrame({
        "site_id": ["S-on-101"] * len(TIME) + ["S-on-104"] * len(every3) + ["S-far"] * len(TIME),
        "date": TIME.append(every3).append(TIME),
        "mean_temp_c": np.concatenate([0.9 * air[:, 0] + 1, 0.9 * air[::3, 3] + 2, air[:, 4]]),
    }).to_parquet(root / "obs/temp_site_daily.parquet")
    pd.DataFrame({
        "seg_id_nat": [103, 103] + [105] * len(TIME) + [104],
        "subseg_id": ["3_1", "3_2"] + ["5_1"] * len(TIME) + ["4_1"],
        "date": pd.DatetimeIndex(["2000-01-10", "2000-01-10"]).append(TIME).append(pd.DatetimeIndex(["2000-01-01"])),
        "mean_temp_c": np.concatenate([[2.0, 4.0], 0.8 * air[:, 4] + 2, [np.nan]]),
    }).to_parquet(root / "obs/temp_segment_daily.parquet")
    shape = (len(TIME), len(SEGMENT_IDS))
    sntemp = xr.Dataset(
        {
            "seg_tave_air": (("time", "seg_id_nat"), air, {"units": "degC"}),
            "seginc_swrad": (("time", "seg_id_nat"), 100 + rng.normal(0, 10, shape), {"units": "W m-2"}),
            "seg_rain": (("time", "seg_id_nat"), rng.exponential(0.002, shape), {"units": "m d-1"}),
            "seginc_potet": (("time", "seg_id_nat"), rng.exponential(0.001, shape), {"units": "m d-1"}),
            "seg_tave_water": (("time", "seg_id_nat"), 0.8 * air + 2, {"units": "degC"}),
        },
        coords={"time": TIME, "seg_id_nat": np.array(SEGMENT_IDS, dtype=np.int32)},
    )
    sntemp.to_netcdf(root / "sntemp/sntemp_input_output_1979_2021.nc")
    return root
