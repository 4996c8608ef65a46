"""netCDF reads and writes, one at a time per process.

The netCDF4/HDF5 libraries are not thread-safe, and xarray's own locks do not cover every call (opening
and closing files race; pydata/xarray#7079, #9779): two threads touching netCDF files at once can crash
the process (a segmentation fault, seen with an in-process Dask worker training while the test thread
read). The dashboard trains in a background thread while pages read runs, so every netCDF file this
package reads or writes goes through :func:`read` or :func:`write`, which hold one process-wide lock and
leave no file open afterwards (reads load the whole file into memory; the build reads only the variables
it needs of the source bundle's large netCDF file, under the same lock).
"""

from __future__ import annotations

import threading
from pathlib import Path

import xarray as xr

LOCK = threading.RLock()
"""Held for every netCDF read or write of this package."""


def read(path: str | Path, lazy: bool = False) -> xr.Dataset:
    """The dataset in netCDF file ``path``, loaded into memory and closed.

    ``lazy=True`` opens it instead, for a file too large to load: its arrays are read when used, under
    xarray's own lock only, so a lazy dataset must not be read while another thread writes netCDF (the
    dashboard keeps only runs above its size limit lazy). Close it when done.

    Raises what :func:`xarray.load_dataset` raises (FileNotFoundError, OSError, ValueError for a file
    that is not netCDF).
    """
    with LOCK:
        return xr.open_dataset(path) if lazy else xr.load_dataset(path)


def write(ds: xr.Dataset, path: str | Path, encoding: dict | None = None) -> None:
    """Write ``ds`` to netCDF file ``path`` (``encoding`` per variable, as :meth:`xarray.Dataset.to_netcdf`)."""
    with LOCK:
        ds.to_netcdf(path, encoding=encoding)
