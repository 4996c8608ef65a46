"""Build, cache and load the processed two-scale DRB dataset.

``build_dataset`` reads the bundle, builds the network and daily arrays, and writes
``coarse.nc``, ``fine.nc``, ``network.gpkg`` and ``manifest.json`` into
``<cache>/drb-<hash>/``, where ``hash`` covers the input files' contents and
:data:`BUILD_VERSION`. It writes into a temporary folder ``<cache>/.tmp-<pid>-*`` and renames it
at the end, so a failed build leaves nothing behind; the folder of a killed build (``kill -9``)
is removed by the next build once its process has ended. An existing folder for the same hash is
reused; ``load_dataset`` rebuilds it once if one of its files cannot be read (truncated, damaged).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import geopandas as gpd
import xarray as xr

from msgl_core import netcdf
from msgl_core.data import bundle as files
from msgl_core.data.basins import PRESETS, available_presets, subnetwork
from msgl_core.data.network import MultiscaleNetwork, build_network
from msgl_core.data.reservoirs import dam_attributes, with_dam_attributes
from msgl_core.data.timeseries import OBS, TIME, coarse_dataset, fine_dataset, snap_sites
from msgl_core.dims import REACH, SEGMENT
from msgl_core.errors import DataError
from msgl_core.paths import CACHE_DIR_ENV, resolve_cache_dir, resolve_data_dir

#: Bump when the processing changes, so old caches are not reused.
BUILD_VERSION = 3  # 2: fine.nc names a reach's parent segment `parent_segment` (msgl_core.dims); 3: dam attributes
Progress = Callable[[str], None]
TEMP_PREFIX = ".tmp-"


class CacheWriteError(OSError, ValueError):
    """The processed cache could not be written (disk full, not writable); nothing half-written is kept.

    An OSError, and also a ValueError (as :class:`io.UnsupportedOperation` is both) so that callers
    that report bad input with its message report this one the same way.
    """


@dataclass(frozen=True)
class MultiscaleData:
    """The processed dataset: network (segments, reaches, crosswalk) and daily arrays per scale.

    Attributes:
        network: :class:`MultiscaleNetwork`.
        coarse: Dataset, dims ``(time, segment)``.
        fine: Dataset, dims ``(time, reach)``.
        path: cache folder it was loaded from.
        bundle_dir: the raw bundle folder it was built from.
    """

    network: MultiscaleNetwork
    coarse: xr.Dataset
    fine: xr.Dataset
    path: Path
    bundle_dir: Path

    def info(self) -> dict:
        """Summary figures (the content of ``msgl data info --json``)."""
        coarse_obs, fine_obs = self.coarse[OBS].notnull(), self.fine[OBS].notnull()
        presets = {}
        for name in available_presets(self.network):
            sub, preset = subnetwork(self.network, name), PRESETS[name]
            presets[name] = {"outlet_seg_id_nat": preset.outlet, "n_segments": len(sub.segments),
                             "n_reaches": len(sub.reaches), "description": preset.description}
        return {
            "n_segments": len(self.network.segments),
            "n_reaches": len(self.network.reaches),
            "n_coarse_obs": int(coarse_obs.sum()),
            "n_coarse_obs_segments": int(coarse_obs.any(TIME).sum()),
            "n_fine_obs": int(fine_obs.sum()),
            "n_fine_obs_reaches": int(fine_obs.any(TIME).sum()),
            "time_start": str(self.coarse[TIME].values[0])[:10],
            "time_end": str(self.coarse[TIME].values[-1])[:10],
            "drivers": list(files.DRIVER_UNITS),
            "presets": presets,
            "cache": str(self.path),
        }


def build_dataset(data_dir: str | Path | None = None, cache_dir: str | Path | None = None,
                  rebuild: bool = False, progress: Progress | None = None) -> Path:
    """Build the processed dataset (or reuse the cached one) and return its folder.

    Raises DataError (a ValueError) naming the file and field for bad input; CacheWriteError if a
    file cannot be written (disk full); FileNotFoundError if the bundle cannot be found.
    """
    say = progress or (lambda message: None)
    bundle = files.Bundle(resolve_data_dir(data_dir))
    say("hashing input files")
    key = f"drb-{bundle.fingerprint()[:16]}-v{BUILD_VERSION}"
    target = resolve_cache_dir(cache_dir) / key
    _remove_killed_builds(target.parent)
    if target.is_dir() and not rebuild:
        say(f"reusing {target}")
        return target
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=f"{TEMP_PREFIX}{os.getpid()}-") as tmp:
        work = Path(tmp) / key
        work.mkdir()
        say("building the network (segments, reaches, crosswalk)")
        network = build_network(bundle)
        say("building coarse daily arrays (drivers, simulation, observations)")
        coarse = coarse_dataset(network, files.read_sntemp(bundle), files.read_segment_obs(bundle))
        say("snapping sites to reaches and building fine daily arrays")
        site_reach = snap_sites(network, files.read_sites(bundle))
        fine = fine_dataset(network, files.read_site_obs(bundle), site_reach, coarse[TIME].values)
        say("placing GRanD dams on the network")
        segment_dams, reach_dams = dam_attributes(network, files.read_dams(bundle))
        coarse = with_dam_attributes(coarse, segment_dams, SEGMENT)
        fine = with_dam_attributes(fine, reach_dams, REACH)
        say("writing NetCDF and GeoPackage")
        manifest = json.dumps({
            "build_version": BUILD_VERSION, "inputs": list(files.BUILD_INPUTS),
            "fingerprint": key, "data_dir": str(bundle.root),
            "n_sites_snapped": int(len(site_reach)),
        }, indent=2)
        for name, write in (("coarse.nc", lambda p: _write_netcdf(coarse, p)),
                            ("fine.nc", lambda p: _write_netcdf(fine, p)),
                            ("network.gpkg", lambda p: _write_network(network, p)),
                            ("manifest.json", lambda p: p.write_text(manifest))):
            _write(work / name, target / name, write)
        if target.exists():
            shutil.rmtree(target)
        os.replace(work, target)
    say(f"wrote {target}")
    return target


def load_dataset(data_dir: str | Path | None = None, cache_dir: str | Path | None = None,
                 progress: Progress | None = None) -> MultiscaleData:
    """Build if needed, then load the processed dataset (into memory: about 0.4 GB for the whole DRB).

    A cached folder with a file that cannot be read (truncated, damaged) is rebuilt once, saying so
    through ``progress``. Raises what :func:`build_dataset` raises, and DataError naming the file if
    the rebuilt cache still cannot be read.
    """
    bundle_dir = resolve_data_dir(data_dir)
    path = build_dataset(bundle_dir, cache_dir, progress=progress)
    try:
        return _open_cache(path, bundle_dir)
    except DataError as error:
        (progress or (lambda message: None))(f"{error}; rebuilding")
        return _open_cache(build_dataset(bundle_dir, cache_dir, rebuild=True, progress=progress), bundle_dir)


def _open_cache(path: Path, bundle_dir: Path) -> MultiscaleData:
    """The processed dataset in cache folder ``path``. Raises DataError naming a file that cannot be read."""
    coarse, fine = (files.read_or_fail(path / name, "a netCDF file (processed cache)", partial(netcdf.read, path / name))
                    for name in ("coarse.nc", "fine.nc"))
    segments, reaches = (files.read_or_fail(path / "network.gpkg", f"a GeoPackage with layer '{layer}'",
                                            partial(gpd.read_file, path / "network.gpkg", layer=layer))
                         for layer in ("segments", "reaches"))
    segments, reaches = segments.set_index("seg_id_nat"), reaches.set_index("reach_id")
    reaches["to_reach"] = reaches["to_reach"].fillna("")
    network = MultiscaleNetwork(segments, reaches, coarse["updown"].values)
    return MultiscaleData(network, coarse, fine, path, bundle_dir)


def _write(path: Path, final: Path, write: Callable[[Path], object]) -> None:
    """``write(path)``; raise CacheWriteError naming ``final`` (where the file was going) if it fails."""
    try:
        write(path)
    except (OSError, RuntimeError) as error:  # netCDF4 reports a full disk as "NetCDF: HDF error"
        reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
        raise CacheWriteError(f"could not write {final}: disk full? ({reason}); nothing was kept. Free some space "
                              f"or use another cache folder (--cache-dir or ${CACHE_DIR_ENV})") from error


def _remove_killed_builds(cache: Path) -> None:
    """Remove the temporary folders in ``cache`` of builds whose process no longer runs (killed)."""
    for path in cache.glob(f"{TEMP_PREFIX}*"):
        pid = path.name.removeprefix(TEMP_PREFIX).split("-")[0]
        if path.is_dir() and not _running(pid):
            shutil.rmtree(path, ignore_errors=True)


def _running(pid: str) -> bool:
    """Whether process ``pid`` runs (False for a name that is not a pid; True where unknowable)."""
    if not pid.isdigit():
        return False
    if os.name != "posix":
        return True
    try:
        os.kill(int(pid), 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


def _write_netcdf(ds: xr.Dataset, path: Path) -> None:
    encoding = {name: {"zlib": True, "complevel": 4} for name, var in ds.data_vars.items()
                if var.dtype.kind == "f"}
    netcdf.write(ds, path, encoding)


def _write_network(network: MultiscaleNetwork, path: Path) -> None:
    network.segments.reset_index().to_file(path, layer="segments", driver="GPKG")
    network.reaches.reset_index().to_file(path, layer="reaches", driver="GPKG")
