"""Readers for the raw DRB bundle files, with validation.

Every reader checks the columns it needs, their dtypes, units, plausible values and ids, and raises
:class:`msgl_core.errors.DataError` naming the file and field otherwise; a file its library cannot
parse (empty, truncated, another format) also gives a DataError, never the library's own error.
File layout and units follow the bundle's ``README.md`` (``../shared/data/drb/README.md``; see
``data/README.md``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import xarray as xr

from msgl_core import netcdf
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
BUILD_INPUTS = (SEGMENTS, CROSSWALK, DISTANCE, SITES, SEGMENT_OBS, SITE_OBS, SNTEMP, RESERVOIRS)

#: PRMS-SNTemp variables used as daily drivers, with their required units.
DRIVER_UNITS = {
    "seg_tave_air": "degC",
    "seginc_swrad": "W m-2",
    "seg_rain": "m d-1",
    "seginc_potet": "m d-1",
}
SIMULATED_WATER_TEMP = "seg_tave_water"

T = TypeVar("T")


@dataclass(frozen=True)
class Plausible:
    """Plausible daily values of a temperature in °C for the DRB: each value finite and within
    ``[low, high]``, the record's mean at most ``max_mean``. A record in °F fails one or the other
    (water is never below 32 °F), whatever its units attribute says."""

    quantity: str
    low: float
    high: float
    max_mean: float


WATER_TEMP_C = Plausible("daily water temperature", -5.0, 45.0, 30.0)
AIR_TEMP_C = Plausible("daily air temperature", -60.0, 60.0, 30.0)


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


def read_or_fail(file: str | Path, kind: str, read: Callable[[], T], field: str | None = None) -> T:
    """Return ``read()``; if its library fails to parse the file, raise DataError naming ``file``
    (and ``field``) and the ``kind`` expected, e.g. "a GeoPackage with layer 'sites'".

    The library's own message is not repeated (numpy's suggests unsafe pickle loading); it is
    chained as ``__cause__``. DataError, MemoryError and PermissionError pass through unchanged.
    """
    try:
        return read()
    except (DataError, MemoryError, PermissionError):
        raise
    except Exception as error:
        raise DataError(file, field, f"cannot be read as {kind}; the file is damaged (empty or truncated) "
                        "or of another kind") from error


def read_layer(bundle: Bundle, file: str, layer: str | None = None) -> gpd.GeoDataFrame:
    """GeoPackage ``layer`` (the first one if None) of bundle ``file``. Raises DataError if unreadable."""
    path = bundle.path(file)
    kind = "a GeoPackage" + (f" with layer '{layer}'" if layer else "")
    return read_or_fail(file, kind, lambda: gpd.read_file(path, layer=layer))


def read_table(bundle: Bundle, file: str, columns: dict[str, str], layer: str | None = None,
               **csv_options: Any) -> pd.DataFrame:
    """Bundle ``file`` (GeoPackage ``layer``, Parquet or CSV by its suffix), checked with
    :func:`require_columns`; of a Parquet file only ``columns`` are read.

    Raises DataError naming the file if it cannot be parsed or has no data rows, and the column if
    one is missing or of the wrong kind.
    """
    path = bundle.path(file)
    if file.endswith(".gpkg"):
        df = read_layer(bundle, file, layer)
    elif file.endswith(".parquet"):
        schema = read_or_fail(file, "a Parquet table", lambda: pq.read_schema(path))
        require_columns(schema.empty_table().to_pandas(), file, columns)  # names every column found
        df = read_or_fail(file, "a Parquet table", lambda: pd.read_parquet(path, columns=list(columns)))
    else:
        df = read_or_fail(file, "a CSV table with a header row", lambda: pd.read_csv(path, **csv_options))
    if df.empty:
        raise DataError(file, None, f"has no data rows; expected at least one row with columns {list(columns)}")
    require_columns(df, file, columns)
    return df


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
            found = [str(name)[:40] for name in df.columns[:12]] + (["..."] if len(df.columns) > 12 else [])
            raise DataError(file, column, f"column missing (expected {kind}); found {found}")
        if kind == "int" and pd.api.types.is_float_dtype(df[column].dtype) and df[column].isna().any():
            raise DataError(file, column, f"expected int values in every row; {int(df[column].isna().sum())} of "
                            f"{len(df)} rows are empty (truncated file?)")
        if not checks[kind](df[column].dtype):
            raise DataError(file, column, f"expected {kind} values, found dtype {df[column].dtype}")


def require_unique(values: pd.Series | pd.DataFrame, file: str, field: str) -> None:
    """Raise DataError if ``values`` (ids, or a frame of key columns) repeats a row; the message
    gives the number of extra rows and the first repeated keys."""
    duplicated = values[values.duplicated()]
    if len(duplicated):
        keys = duplicated.drop_duplicates().head(5).astype(str)
        first = keys.tolist() if isinstance(keys, pd.Series) else list(keys.itertuples(index=False, name=None))
        raise DataError(file, field, f"duplicated ids (extra rows: {len(duplicated)}), first {first}; "
                        f"expected one row per {field}")


def require_plausible(values: np.ndarray, file: str, field: str, check: Plausible,
                      label: Callable[[int], str]) -> None:
    """Raise DataError unless every non-missing (non-NaN) value is plausible (see :class:`Plausible`).

    The message gives how many values are not, the first ones (``label(k)`` names flat position
    k) and the range and mean found; a record in °F fails here even if its units say degC.
    """
    flat = np.asarray(values, dtype=np.float64).ravel()
    present = ~np.isnan(flat)
    bad = present & ~((flat >= check.low) & (flat <= check.high))
    finite = flat[present & np.isfinite(flat)]
    mean = float(finite.mean()) if len(finite) else float("nan")
    if not bad.any() and not mean > check.max_mean:
        return
    found = [f"found mean {mean:.2f}, range {finite.min():.2f}..{finite.max():.2f}" if len(finite) else "no finite values"]
    if bad.any():
        first = ", ".join(f"{label(k)}: {flat[k]:.2f}" for k in np.flatnonzero(bad)[:3])
        found.insert(0, f"{int(bad.sum())} of {int(present.sum())} values are not finite or outside "
                        f"[{check.low:g}, {check.high:g}], first [{first}]")
    hint = " (wrong units, °F?)" if mean > check.max_mean or (len(finite) and finite.max() > check.high) else ""
    raise DataError(file, field, f"expected {check.quantity} in °C (finite, within [{check.low:g}, {check.high:g}], "
                    f"record mean at most {check.max_mean:g}); " + "; ".join(found) + hint)


def _text(value: object) -> str:
    """An id or date for a message: ``'S-1'``, ``105``, ``2000-01-05``."""
    if isinstance(value, np.datetime64):
        return str(np.datetime_as_string(value, unit="D"))
    return repr(value.item() if isinstance(value, np.generic) else value)


def read_segments(bundle: Bundle) -> gpd.GeoDataFrame:
    """NHM subsegments (459 LineStrings, EPSG:4326), validated; one row per ``subseg_id``."""
    gdf = read_table(bundle, SEGMENTS, {
        "subseg_id": "str", "seg_id_nat": "float", "parent_seg_id_nat": "int",
        "is_split_upper_half": "bool", "to_subseg": "str", "length_m": "float",
        "seg_length_m": "float", "seg_slope": "float", "seg_elev_m": "float",
        "seg_width_m": "float", "seg_cum_area_km2": "float",
    }, layer="nhm_segments")
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
    df = read_table(bundle, CROSSWALK, {
        "subseg_id": "str", "seg_id_nat": "int", "comid_down": "int", "n_comid_seg": "int",
        "comid_seg": "str",
    }, dtype={"comid_seg": str, "subseg_id": str})
    require_unique(df["subseg_id"], CROSSWALK, "subseg_id")
    if (df["n_comid_seg"] < 1).any():
        raise DataError(CROSSWALK, "n_comid_seg", "expected at least one COMID per subsegment")
    return df


def read_distance_matrix(bundle: Bundle) -> tuple[np.ndarray, np.ndarray]:
    """River-dl ``updown`` matrix between subsegment outlets.

    Returns ``(subseg_id (459,), updown (459, 459) float64 m)``; +d downstream, −d upstream,
    inf unconnected, 0 diagonal. Raises DataError if the file is not a readable ``.npz`` archive, an
    array is missing or holds Python objects (never unpickled), or ``updown`` is malformed.
    """
    path = bundle.path(DISTANCE)
    with read_or_fail(DISTANCE, "a NumPy .npz archive", lambda: _open_npz(path)) as npz:
        arrays = {}
        for key in ("subseg_id", "updown"):
            if key not in npz.files:
                raise DataError(DISTANCE, key, f"array missing; found {npz.files}")
            arrays[key] = read_or_fail(DISTANCE, "a plain numeric or text array (object arrays are not loaded)",
                                       partial(npz.__getitem__, key), field=key)
        ids = arrays["subseg_id"].astype(str)
        updown = arrays["updown"].astype(np.float64)
    if updown.shape != (len(ids), len(ids)):
        raise DataError(DISTANCE, "updown", f"expected shape {(len(ids), len(ids))}, found {updown.shape}")
    if np.isnan(updown).any() or not np.all(np.diag(updown) == 0):
        raise DataError(DISTANCE, "updown", "expected no NaN and a zero diagonal")
    return ids, updown


def _open_npz(path: Path) -> np.lib.npyio.NpzFile:
    """``np.load`` of a zip (``.npz``) archive only, never of a pickle or a bare ``.npy``."""
    with open(path, "rb") as fh:
        if fh.read(4) != b"PK\x03\x04":
            raise ValueError("not a zip archive")
    return np.load(path, allow_pickle=False)


def read_sites(bundle: Bundle) -> gpd.GeoDataFrame:
    """Monitoring sites (points, EPSG:4326) with their linked NHM segment."""
    gdf = read_table(bundle, SITES, {"site_id": "str", "seg_id_nat": "int", "subseg_id": "str"}, layer="sites")
    require_unique(gdf["site_id"], SITES, "site_id")
    return gdf


def read_dams(bundle: Bundle) -> gpd.GeoDataFrame:
    """GRanD v1.3 dams (layer ``dams`` of ``network/reservoirs.gpkg``, points) with ``GRAND_ID``, ``DAM_NAME``,
    ``CAP_MCM`` (10⁶ m³), ``DOR_PC`` (%), ``nearest_seg_id_nat`` and ``dist_to_segment_m`` (m).

    Raises DataError naming the file and column if the layer or a column is missing or of the wrong kind, or a
    ``GRAND_ID`` repeats."""
    gdf = read_table(bundle, RESERVOIRS, {"GRAND_ID": "int", "DAM_NAME": "str", "CAP_MCM": "float", "DOR_PC": "float",
                                          "nearest_seg_id_nat": "int", "dist_to_segment_m": "float"}, layer="dams")
    require_unique(gdf["GRAND_ID"], RESERVOIRS, "GRAND_ID")
    return gdf


def read_segment_obs(bundle: Bundle) -> pd.DataFrame:
    """USGS segment-level daily observations: ``seg_id_nat, date, mean_temp_c`` (°C), non-null rows.

    Raises DataError (see :func:`_read_daily_obs`)."""
    return _read_daily_obs(bundle, SEGMENT_OBS, "seg_id_nat", "int", key="subseg_id")


def read_site_obs(bundle: Bundle) -> pd.DataFrame:
    """Site-level daily observations: ``site_id, date, mean_temp_c`` (°C), non-null rows.

    Raises DataError (see :func:`_read_daily_obs`)."""
    return _read_daily_obs(bundle, SITE_OBS, "site_id", "str", key="site_id")


def _read_daily_obs(bundle: Bundle, file: str, id_column: str, id_kind: str, key: str) -> pd.DataFrame:
    """Raises DataError if ``file`` is unreadable or empty, a column is missing, a ``(key, date)`` row
    repeats (it would be averaged in), or a ``mean_temp_c`` is ±inf or implausible in °C."""
    df = read_table(bundle, file, {id_column: id_kind, key: "str", "date": "date", "mean_temp_c": "float"})
    require_unique(df[[key, "date"]], file, f"({key}, date)")
    ids, dates = df[id_column].to_numpy(), df["date"].to_numpy()
    require_plausible(df["mean_temp_c"].to_numpy(), file, "mean_temp_c", WATER_TEMP_C,
                      lambda k: f"{_text(ids[k])} on {_text(dates[k])}")
    return df.dropna(subset=["mean_temp_c"])[[id_column, "date", "mean_temp_c"]]


def read_sntemp(bundle: Bundle) -> xr.Dataset:
    """PRMS-SNTemp drivers and simulated water temperature, dims ``(time, seg_id_nat)``.

    Only the driver variables and ``seg_tave_water`` are loaded; their ``units`` attributes
    must match :data:`DRIVER_UNITS` (and ``degC`` for water temperature), and air and water
    temperature must be plausible in °C (:data:`AIR_TEMP_C`, :data:`WATER_TEMP_C`).

    Raises DataError if the file is not readable netCDF, or a dimension, variable or unit is wrong.
    """
    path = bundle.path(SNTEMP)
    expected = {**DRIVER_UNITS, SIMULATED_WATER_TEMP: "degC"}
    with netcdf.LOCK, read_or_fail(SNTEMP, "a netCDF file", lambda: xr.open_dataset(path)) as ds:
        for dim in ("time", "seg_id_nat"):
            if dim not in ds.dims:
                raise DataError(SNTEMP, dim, f"dimension missing; found {list(ds.dims)}")
        for name, units in expected.items():
            if name not in ds:
                raise DataError(SNTEMP, name, f"variable missing; found {list(ds.data_vars)}")
            if ds[name].attrs.get("units") != units:
                raise DataError(SNTEMP, name, f"expected units '{units}', found '{ds[name].attrs.get('units')}'")
        out = read_or_fail(SNTEMP, "a netCDF file", ds[list(expected)].load)
    if pd.Index(out["seg_id_nat"].values).duplicated().any():
        raise DataError(SNTEMP, "seg_id_nat", "duplicated segment ids")
    for name, check in (("seg_tave_air", AIR_TEMP_C), (SIMULATED_WATER_TEMP, WATER_TEMP_C)):
        var = out[name]
        require_plausible(var.values, SNTEMP, name, check, partial(_position, var))
    return out


def _position(var: xr.DataArray, k: int) -> str:
    """``dim=value`` labels of flat index ``k`` of ``var``, e.g. ``time=2000-02-24 seg_id_nat=101``."""
    return " ".join(f"{dim}={_text(var[dim].values[i])}" for dim, i in zip(var.dims, np.unravel_index(k, var.shape)))
