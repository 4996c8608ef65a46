"""msgl_core.netcdf: whole-file reads that leave nothing open, and reads/writes safe across threads."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import xarray as xr

from msgl_core import netcdf


def _dataset(value: float) -> xr.Dataset:
    return xr.Dataset({"water_temp_obs": (("time", "reach"), np.full((30, 4), value, dtype=np.float32))})


def test_read_loads_the_whole_file_and_leaves_it_closed(tmp_path: Path) -> None:
    path = tmp_path / "a.nc"
    netcdf.write(_dataset(1.0), path, {"water_temp_obs": {"zlib": True}})
    ds = netcdf.read(path)
    assert isinstance(ds["water_temp_obs"].variable._data, np.ndarray)  # in memory, not a lazy file array
    netcdf.write(_dataset(2.0), tmp_path / "b.nc")
    (tmp_path / "b.nc").replace(path)  # the file under the dataset is replaced: the dataset keeps its values
    assert float(ds["water_temp_obs"].mean()) == 1.0
    assert float(netcdf.read(path)["water_temp_obs"].mean()) == 2.0


def test_threads_reading_and_writing_netcdf_at_once_get_their_own_values(tmp_path: Path) -> None:
    def work(index: int) -> list[float]:
        seen = []
        for repeat in range(15):
            path = tmp_path / f"{index}_{repeat}.nc"
            netcdf.write(_dataset(index + repeat), path, {"water_temp_obs": {"zlib": True, "complevel": 4}})
            seen.append(float(netcdf.read(path)["water_temp_obs"].max()))
        return seen

    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(work, range(4)))
    assert results == [[float(i + r) for r in range(15)] for i in range(4)]


def test_lazy_read_opens_without_loading(tmp_path: Path) -> None:
    path = tmp_path / "a.nc"
    netcdf.write(_dataset(3.0), path)
    with netcdf.read(path, lazy=True) as ds:
        assert not isinstance(ds["water_temp_obs"].variable._data, np.ndarray)
        assert float(ds["water_temp_obs"].mean()) == 3.0
