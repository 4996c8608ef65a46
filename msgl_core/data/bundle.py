"""Readers for the raw DRB bundle files, with validation.

Every reader checks the columns it needs, their dtypes, units and ids, and raises
:class:`msgl_core.errors.DataError` naming the file and field otherwise. File layout and units
follow the bundle's ``README.md`` (``../shared/data/drb/README.md``; see ``data/README.md``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import xarray as xr

from msgl_core.errors import DataError

SEGMENTS = "network/nhm_segments.gpkg"
CROSSWALK = "network/nhd_crosswalk.csv"
DISTANCE = "network/nhm_distance_matrix.npz"
BOUNDARY = "network/drb_boundary.gpkg"
RESERVOIRS = "network/reservoirs.gpkg"
SITES = "obs/sites.gpkg"
SEGMENT_OBS = "obs/temp_segment_daily.parquet"
SITE_OBS = "obs/temp_site_daily.parquet"
SNTEMP = "sntemp/sntemp_input_output_1979_2021.nc"

#: Files the processed dataset is built from (the cache key hashes exactly these).
BUILD_INPUTS = (SEGMENTS, CROSSWALK, DISTANCE, SITES, SEGMENT_OBS, SITE_OBS, SNTEMP)

#: PRMS-SNTemp variables used as daily drivers, with their required units.
DRIVER_UNITS = {
    "seg_tave_air": "degC",
    "seginc_swrad": "W m-2",
    "seg_rain": "m d-1",
    "seginc_potet": "m d-1",
}
SIMULATED_WATER_TEMP = "seg_tave_water"

# Plausible range of daily mean water temperature, °C; a file outside it is likely in °F.
_WATER_TEMP_RANGE_C = (-5.0, 40.0)


@dataclass(frozen=True)
class Bundle:
    """The DRB bundle directory. ``path(name)`` returns a file, raising if it is missing."""

    root: Path

    def path(self, name: str) -> Path:
        """Absolute path of bundle file ``name``. Raises DataError if it does not exist."""
        full = self.root / name
        if not full.is_file():
            raise DataError(name, None, f"missing from the data bundle at {self.root}")
        return full

    def fingerprint(self, names: tuple[str, ...] = BUILD_INPUTS) -> str:
        """SHA-256 over the contents of ``names``: the key of the processed cache."""
        digest = hashlib.sha256()
        for name in names:
            digest.update(name.encode())
            with open(self.path(name), "rb") as fh:
                for block in iter(lambda: fh.read(1 << 20), b""):
                    digest.update(block)
        return digest.hexdigest()


def require_columns(df: pd.DataFrame, file: str, columns: dict[str, str]) -> None:
    """Check that ``df`` has ``columns`` of the given kinds ('int', 'float', 'str', 'date', 'bool', 'any').

    Raises DataError naming the file and column if one is missing or of the wrong dtype.
    """
    checks = {
        "int": pd.api.types.is_integer_dtype,
        "float": pd.api.types.is_numeric_dtype,
        "str": lambda s: pd.api.types.is_string_dtype(s) or pd.api.types.is_object_dtype(s),
        "date": pd.api.types.is_datetime64_any_dtype,
        "bool": pd.api.types.is_bool_dtype,
        "any": lambda s: True,
    }
    for column, kind in columns.items():
        if column not in df.columns:
            raise DataError(file, column, f"column missing (expected {kind}); found {list(df.columns)}")
        if not checks[kind](df[column].dtype):
            raise DataError(file, column, f"expected {kind} values, found dtype {df[column].dtype}")


def require_unique(values: pd.Series, file: str, field: str) -> None:
    """Raise DataError if ``values`` has duplicates."""
    duplicated = values[values.duplicated()]
    if len(duplicated):
        raise DataError(file, field, f"duplicated ids: {sorted(map(str, duplicated.unique()))[:5]}")


def _require_water_temp_c(values: pd.Series, file: str, field: str) -> None:
    low, high = _WATER_TEMP_RANGE_C
    finite = values[np.isfinite(values)]
    outside = ((finite < low) | (finite > high)).mean() if len(finite) else 0.0
    if outside > 0.01:
        raise DataError(
            file, field,
            f"expected daily water temperature in °C within [{low}, {high}]; "
            f"{outside:.1%} of values are outside (°F or wrong column?)",
        )


def read_segments(bundle: Bundle) -> gpd.GeoDataFrame:
    """NHM subsegments (459 LineStrings, EPSG:4326), validated; one row per ``subseg_id``."""
    gdf = gpd.read_file(bundle.path(SEGMENTS), layer="nhm_segments")
    require_columns(gdf, SEGMENTS, {
        "subseg_id": "str", "seg_id_nat": "float", "parent_seg_id_nat": "int",
        "is_split_upper_half": "bool", "to_subseg": "str", "length_m": "float",
        "seg_length_m": "float", "seg_slope": "float", "seg_elev_m": "float",
        "seg_width_m": "float", "seg_cum_area_km2": "float",
    })
    require_unique(gdf["subseg_id"], SEGMENTS, "subseg_id")
    require_unique(gdf["seg_id_nat"].dropna(), SEGMENTS, "seg_id_nat")
    if gdf.crs is None or gdf.crs.to_epsg() != 4326:
        raise DataError(SEGMENTS, "geometry", f"expected CRS EPSG:4326, found {gdf.crs}")
    unknown = set(gdf["to_subseg"].dropna()) - set(gdf["subseg_id"])
    if unknown:
        raise DataError(SEGMENTS, "to_subseg", f"refers to unknown subsegments {sorted(unknown)[:5]}")
    for column in ("seg_length_m", "seg_slope", "seg_elev_m", "seg_width_m", "length_m"):
        if not np.isfinite(gdf[column]).all():
            raise DataError(SEGMENTS, column, "expected finite values for every subsegment")
    return gdf


def read_crosswalk(bundle: Bundle) -> pd.DataFrame:
    """NHM subsegment → NHDPlusV2 COMID crosswalk (459 rows)."""
    df = pd.read_csv(bundle.path(CROSSWALK), dtype={"comid_seg": str, "subseg_id": str})
    require_columns(df, CROSSWALK, {
        "subseg_id": "str", "seg_id_nat": "int", "comid_down": "int", "n_comid_seg": "int",
        "comid_seg": "str",
    })
    require_unique(df["subseg_id"], CROSSWALK, "subseg_id")
    if (df["n_comid_seg"] < 1).any():
        raise DataError(CROSSWALK, "n_comid_seg", "expected at least one COMID per subsegment")
    return df


def read_distance_matrix(bundle: Bundle) -> tuple[np.ndarray, np.ndarray]:
    """River-dl ``updown`` matrix between subsegment outlets.

    Returns ``(subseg_id (459,), updown (459, 459) float64 m)``; +d downstream, −d upstream,
    inf unconnected, 0 diagonal.
    """
    with np.load(bundle.path(DISTANCE), allow_pickle=False) as npz:
        for key in ("subseg_id", "updown"):
            if key not in npz.files:
                raise DataError(DISTANCE, key, f"array missing; found {npz.files}")
        ids = npz["subseg_id"].astype(str)
        updown = npz["updown"].astype(np.float64)
    if updown.shape != (len(ids), len(ids)):
        raise DataError(DISTANCE, "updown", f"expected shape {(len(ids), len(ids))}, found {updown.shape}")
    if np.isnan(updown).any() or not np.all(np.diag(updown) == 0):
        raise DataError(DISTANCE, "updown", "expected no NaN and a zero diagonal")
    return ids, updown


def read_sites(bundle: Bundle) -> gpd.GeoDataFrame:
    """Monitoring sites (points, EPSG:4326) with their linked NHM segment."""
    gdf = gpd.read_file(bundle.path(SITES), layer="sites")
    require_columns(gdf, SITES, {"site_id": "str", "seg_id_nat": "int", "subseg_id": "str"})
    require_unique(gdf["site_id"], SITES, "site_id")
    return gdf


def read_segment_obs(bundle: Bundle) -> pd.DataFrame:
    """USGS segment-level daily observations: ``seg_id_nat, date, mean_temp_c`` (°C), non-null rows."""
    return _read_daily_obs(bundle, SEGMENT_OBS, "seg_id_nat", "int")


def read_site_obs(bundle: Bundle) -> pd.DataFrame:
    """Site-level daily observations: ``site_id, date, mean_temp_c`` (°C), non-null rows."""
    return _read_daily_obs(bundle, SITE_OBS, "site_id", "str")


def _read_daily_obs(bundle: Bundle, file: str, id_column: str, id_kind: str) -> pd.DataFrame:
    df = pd.read_parquet(bundle.path(file), columns=[id_column, "date", "mean_temp_c"])
    require_columns(df, file, {id_column: id_kind, "date": "date", "mean_temp_c": "float"})
    df = df.dropna(subset=["mean_temp_c"])
    _require_water_temp_c(df["mean_temp_c"], file, "mean_temp_c")
    return df


def read_sntemp(bundle: Bundle) -> xr.Dataset:
    """PRMS-SNTemp drivers and simulated water temperature, dims ``(time, seg_id_nat)``.

    Only the driver variables and ``seg_tave_water`` are loaded; their ``units`` attributes
    must match :data:`DRIVER_UNITS` (and ``degC`` for water temperature).
    """
    file = bundle.path(SNTEMP)
    expected = {**DRIVER_UNITS, SIMULATED_WATER_TEMP: "degC"}
    with xr.open_dataset(file) as ds:
        for dim in ("time", "seg_id_nat"):
            if dim not in ds.dims:
                raise DataError(SNTEMP, dim, f"dimension missing; found {list(ds.dims)}")
        for name, units in expected.items():
            if name not in ds:
                raise DataError(SNTEMP, name, f"variable missing; found {list(ds.data_vars)}")
            if ds[name].attrs.get("units") != units:
                raise DataError(SNTEMP, name, f"expected units '{units}', found '{ds[name].attrs.get('units')}'")
        out = ds[list(expected)].load()
    if pd.Index(out["seg_id_nat"].values).duplicated().any():
        raise DataError(SNTEMP, "seg_id_nat", "duplicated segment ids")
    return out
