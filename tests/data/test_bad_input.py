"""Bad input files end in a clear DataError (file, field, what was expected), never in a library
traceback or a silently wrong number; a damaged or half-written processed cache is rebuilt or cleaned.

Every case corrupts a copy of the tiny bundle (tests/tiny_bundle.py) written in code.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from msgl_core.data import build as build_module
from msgl_core.data import build_dataset, load_dataset, map_layers
from msgl_core.data import bundle as files
from msgl_core.errors import DataError
from tests.tiny_bundle import N_COARSE_OBS, write_tiny_bundle

Corruption = Callable[[Path], None]


def _truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _random_bytes(path: Path) -> None:
    path.write_bytes(np.random.default_rng(1).integers(0, 256, 4096, dtype=np.uint8).tobytes())


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _edit_parquet(file: str, edit: Callable[[pd.DataFrame], pd.DataFrame]) -> Corruption:
    def corrupt(bundle: Path) -> None:
        path = bundle / file
        edit(pd.read_parquet(path)).to_parquet(path)
    return corrupt


def _edit_sntemp(name: str, edit: Callable[[xr.DataArray], xr.DataArray]) -> Corruption:
    def corrupt(bundle: Path) -> None:
        path = bundle / files.SNTEMP
        ds = xr.load_dataset(path)
        ds[name] = edit(ds[name]).assign_attrs(ds[name].attrs)  # the units attribute still says degC
        ds.to_netcdf(path)
    return corrupt


def _set_value(file: str, row: int, value: float) -> Corruption:
    def edit(df: pd.DataFrame) -> pd.DataFrame:
        df.loc[row, "mean_temp_c"] = value
        return df
    return _edit_parquet(file, edit)


def _duplicate_rows(file: str, rows: slice, shift_c: float) -> Corruption:
    def edit(df: pd.DataFrame) -> pd.DataFrame:
        extra = df.iloc[rows].assign(mean_temp_c=lambda d: d["mean_temp_c"] + shift_c)
        return pd.concat([df, extra], ignore_index=True)
    return _edit_parquet(file, edit)


def _header_only_csv(bundle: Path) -> None:
    path = bundle / files.CROSSWALK
    path.write_text(path.read_text().splitlines()[0] + "\n")


def _object_array_npz(bundle: Path) -> None:
    path = bundle / files.DISTANCE
    with np.load(path) as npz:
        arrays = dict(npz)
    arrays["subseg_id"] = arrays["subseg_id"].astype(object)
    np.savez(path, **arrays)


def _npy_instead_of_npz(bundle: Path) -> None:
    path = bundle / files.DISTANCE
    with np.load(path) as npz:
        updown = npz["updown"]
    with open(path, "wb") as fh:
        np.save(fh, updown)


def _damage(file: str, damage: Corruption) -> Corruption:
    return lambda bundle: damage(bundle / file)


def _unreadable(file: str, kind: str) -> str:
    return rf"^{re.escape(file)}: cannot be read as {kind}"


SITE_OBS, SEGMENT_OBS = files.SITE_OBS, files.SEGMENT_OBS
VALUE_CASES: dict[str, tuple[Corruption, str]] = {
    "air temperature in °F, units say degC": (
        _edit_sntemp("seg_tave_air", lambda t: t * 1.8 + 32),
        r"field 'seg_tave_air': expected daily air temperature in °C .*record mean .* found mean 5\d\.\d\d",
    ),
    "simulated water temperature in °F, units say degC": (
        _edit_sntemp("seg_tave_water", lambda t: t * 1.8 + 32),
        r"field 'seg_tave_water': expected daily water temperature in °C",
    ),
    "near-freezing water temperature in °F (every value inside the °C range)": (
        _edit_sntemp("seg_tave_water", lambda t: t.clip(0, 7) * 1.8 + 32),
        r"field 'seg_tave_water': expected .*record mean at most 30\); found mean 4\d\.\d\d, range \d\d\.\d\d\.\.44\.60 "
        r"\(wrong units, °F\?\)$",
    ),
    "duplicated site-day observations": (
        _duplicate_rows(SITE_OBS, slice(10, 13), 5.0),
        r"obs/temp_site_daily\.parquet: field '\(site_id, date\)': duplicated ids \(extra rows: 3\), "
        r"first \[\('S-on-101', '2000-01-11'\), .*expected one row per \(site_id, date\)",
    ),
    "duplicated subsegment-day observations": (
        _duplicate_rows(SEGMENT_OBS, slice(5, 6), 5.0),
        r"obs/temp_segment_daily\.parquet: field '\(subseg_id, date\)': duplicated ids \(extra rows: 1\), "
        r"first \[\('5_1', '2000-01-04'\)\]",
    ),
    "+inf observation": (
        _set_value(SITE_OBS, 4, np.inf),
        r"obs/temp_site_daily\.parquet: field 'mean_temp_c': .* 1 of \d+ values are not finite or outside "
        r"\[-5, 45\], first \['S-on-101' on 2000-01-05: inf\]",
    ),
    "-inf observation": (
        _set_value(SEGMENT_OBS, 3, -np.inf),
        r"obs/temp_segment_daily\.parquet: field 'mean_temp_c': .*1 of \d+ values are not finite.*: -inf\]",
    ),
    "renamed parquet column": (
        _edit_parquet(SITE_OBS, lambda df: df.rename(columns={"mean_temp_c": "temp_mean"})),
        r"obs/temp_site_daily\.parquet: field 'mean_temp_c': column missing \(expected float\); "
        r"found \['site_id', 'date', 'temp_mean'\]",
    ),
    "header-only parquet": (
        _edit_parquet(SEGMENT_OBS, lambda df: df.iloc[:0]),
        r"^obs/temp_segment_daily\.parquet: has no data rows; expected at least one",
    ),
    "header-only CSV": (
        _header_only_csv, r"^network/nhd_crosswalk\.csv: has no data rows; expected at least one",
    ),
    "npz with an object (pickled) array": (
        _object_array_npz,
        r"^network/nhm_distance_matrix\.npz: field 'subseg_id': cannot be read as a plain .* array",
    ),
    ".npy saved under the .npz name": (_npy_instead_of_npz, _unreadable(files.DISTANCE, r"a NumPy \.npz")),
}

DAMAGES = {"truncated": _truncate, "random bytes": _random_bytes, "empty": _empty}
KINDS = {
    files.SEGMENTS: "a GeoPackage", files.SITES: "a GeoPackage", files.SNTEMP: "a netCDF",
    files.DISTANCE: r"a NumPy \.npz", files.SEGMENT_OBS: "a Parquet", files.SITE_OBS: "a Parquet",
}
FILE_CASES: dict[str, tuple[Corruption, str]] = {
    f"{damage} {file}": (_damage(file, corrupt), _unreadable(file, kind))
    for file, kind in KINDS.items() for damage, corrupt in DAMAGES.items()
}
FILE_CASES.update({
    # A truncated CSV is still a CSV: its last row is cut, which the column checks catch.
    f"truncated {files.CROSSWALK}": (
        _damage(files.CROSSWALK, _truncate),
        rf"^{re.escape(files.CROSSWALK)}: field '\w+': expected int values in every row; 1 of \d+ rows are empty",
    ),
    f"random bytes {files.CROSSWALK}": (_damage(files.CROSSWALK, _random_bytes), _unreadable(files.CROSSWALK, "a CSV")),
    f"empty {files.CROSSWALK}": (_damage(files.CROSSWALK, _empty), _unreadable(files.CROSSWALK, "a CSV")),
})
CASES = {**VALUE_CASES, **FILE_CASES}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_gives_a_clear_error(case: str, tiny_bundle: Path, tmp_path: Path) -> None:
    corrupt, message = CASES[case]
    corrupt(tiny_bundle)
    cache = tmp_path / "cache"
    with pytest.raises(DataError, match=message) as caught:
        build_dataset(tiny_bundle, cache)
    text = str(caught.value)
    assert "pickle" not in text and "Traceback" not in text and len(text) < 600, text
    assert not cache.exists() or list(cache.iterdir()) == []


@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_map_layer_gives_a_clear_error(damage: str, tiny_data, tmp_path: Path) -> None:  # noqa: ANN001
    bundle = write_tiny_bundle(tmp_path / "bundle")
    (bundle / files.BOUNDARY).write_bytes(b"placeholder")
    DAMAGES[damage](bundle / files.BOUNDARY)
    with pytest.raises(DataError, match=_unreadable(files.BOUNDARY, "a GeoPackage")):
        map_layers(dataclasses.replace(tiny_data, bundle_dir=bundle))


@pytest.mark.parametrize("cache_file", ["coarse.nc", "fine.nc", "network.gpkg"])
@pytest.mark.parametrize("damage", list(DAMAGES))
def test_damaged_cache_is_rebuilt(cache_file: str, damage: str, tiny_bundle: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    path = build_dataset(tiny_bundle, cache)
    DAMAGES[damage](path / cache_file)
    said: list[str] = []
    data = load_dataset(tiny_bundle, cache, progress=said.append)
    assert any(re.search(rf"{re.escape(cache_file)}: cannot be read .*; rebuilding", s) for s in said), said
    assert data.path == path and data.info()["n_coarse_obs"] == N_COARSE_OBS


WRITE_FAILURES = {
    "netCDF disk full": ("xarray.Dataset.to_netcdf", OSError(errno.ENOSPC, "No space left on device"),
                         r"could not write .*coarse\.nc: disk full\? \(No space left on device\)"),
    "netCDF HDF error": ("xarray.Dataset.to_netcdf", RuntimeError("NetCDF: HDF error"),
                         r"could not write .*coarse\.nc: disk full\? \(NetCDF: HDF error\)"),
    "GeoPackage disk full": ("geopandas.GeoDataFrame.to_file", OSError(errno.ENOSPC, "No space left on device"),
                             r"could not write .*network\.gpkg: disk full\?"),
}


@pytest.mark.parametrize("case", list(WRITE_FAILURES))
def test_write_failure_is_clear_and_leaves_nothing(case: str, tiny_bundle: Path, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    target, error, message = WRITE_FAILURES[case]

    def fail(*args: object, **kwargs: object) -> None:
        raise error

    monkeypatch.setattr(target, fail)
    cache = tmp_path / "cache"
    with pytest.raises(build_module.CacheWriteError, match=message) as caught:
        build_dataset(tiny_bundle, cache)
    assert isinstance(caught.value, OSError) and isinstance(caught.value, ValueError)
    assert list(cache.iterdir()) == []


def test_leftovers_of_a_killed_build_are_removed(tiny_bundle: Path, tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    script = textwrap.dedent(f"""
        import os, signal
        from msgl_core.data import build
        build._write_network = lambda *args: os.kill(os.getpid(), signal.SIGKILL)
        build.build_dataset({str(tiny_bundle)!r}, {str(cache)!r})
    """)
    killed = subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).parents[2], capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()
    leftovers = [p for p in cache.iterdir() if p.name.startswith(".tmp-")]
    assert leftovers and any(leftovers[0].rglob("coarse.nc"))  # the killed build's half-written folder
    live = cache / f".tmp-{os.getpid()}-live"  # a build still running in this process is left alone
    live.mkdir()
    path = build_dataset(tiny_bundle, cache)
    assert sorted(p.name for p in cache.iterdir()) == sorted([path.name, live.name])
