"""Build, cache and load the processed two-scale DRB dataset.

``build_dataset`` reads the bundle, builds the network and daily arrays, and writes
``coarse.nc``, ``fine.nc``, ``network.gpkg`` and ``manifest.json`` into
``<cache>/drb-<hash>/``, where ``hash`` covers the input files' contents and
:data:`BUILD_VERSION`. It writes into a temporary folder and renames it at the end, so an
interrupted or failed build leaves nothing behind; an existing folder for the same hash is
reused.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import geopandas as gpd
import xarray as xr

from msgl_core.data import bundle as files
from msgl_core.data.basins import PRESETS, available_presets, subnetwork
from msgl_core.data.network import MultiscaleNetwork, build_network
from msgl_core.data.timeseries import OBS, TIME, coarse_dataset, fine_dataset, snap_sites
from msgl_core.paths import resolve_cache_dir, resolve_data_dir

#: Bump when the processing changes, so old caches are not reused.
BUILD_VERSION = 1
Progress = Callable[[str], None]


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

    Raises DataError (a ValueError) naming the file and field for bad input; FileNotFoundError if
    the bundle cannot be found.
    """
    say = progress or (lambda message: None)
    bundle = files.Bundle(resolve_data_dir(data_dir))
    say("hashing input files")
    key = f"drb-{bundle.fingerprint()[:16]}-v{BUILD_VERSION}"
    target = resolve_cache_dir(cache_dir) / key
    if target.is_dir() and not rebuild:
        say(f"reusing {target}")
        return target
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".tmp-") as tmp:
        work = Path(tmp) / key
        work.mkdir()
        say("building the network (segments, reaches, crosswalk)")
        network = build_network(bundle)
        say("building coarse daily arrays (drivers, simulation, observations)")
        coarse = coarse_dataset(network, files.read_sntemp(bundle), files.read_segment_obs(bundle))
        say("snapping sites to reaches and building fine daily arrays")
        site_reach = snap_sites(network, files.read_sites(bundle))
        fine = fine_dataset(network, files.read_site_obs(bundle), site_reach, coarse[TIME].values)
        say("writing NetCDF and GeoPackage")
        _write_netcdf(coarse, work / "coarse.nc")
        _write_netcdf(fine, work / "fine.nc")
        _write_network(network, work / "network.gpkg")
        (work / "manifest.json").write_text(json.dumps({
            "build_version": BUILD_VERSION, "inputs": list(files.BUILD_INPUTS),
            "fingerprint": key, "data_dir": str(bundle.root),
            "n_sites_snapped": int(len(site_reach)),
        }, indent=2))
        if target.exists():
            shutil.rmtree(target)
        os.replace(work, target)
    say(f"wrote {target}")
    return target


def load_dataset(data_dir: str | Path | None = None, cache_dir: str | Path | None = None,
                 progress: Progress | None = None) -> MultiscaleData:
    """Build if needed, then load the processed dataset (arrays loaded lazily)."""
    bundle_dir = resolve_data_dir(data_dir)
    path = build_dataset(bundle_dir, cache_dir, progress=progress)
    coarse = xr.open_dataset(path / "coarse.nc")
    fine = xr.open_dataset(path / "fine.nc")
    segments = gpd.read_file(path / "network.gpkg", layer="segments").set_index("seg_id_nat")
    reaches = gpd.read_file(path / "network.gpkg", layer="reaches").set_index("reach_id")
    reaches["to_reach"] = reaches["to_reach"].fillna("")
    network = MultiscaleNetwork(segments, reaches, coarse["updown"].values)
    return MultiscaleData(network, coarse, fine, path, bundle_dir)


def _write_netcdf(ds: xr.Dataset, path: Path) -> None:
    encoding = {name: {"zlib": True, "complevel": 4} for name, var in ds.data_vars.items()
                if var.dtype.kind == "f"}
    ds.to_netcdf(path, encoding=encoding)


def _write_network(network: MultiscaleNetwork, path: Path) -> None:
    network.segments.reset_index().to_file(path, layer="segments", driver="GPKG")
    network.reaches.reset_index().to_file(path, layer="reaches", driver="GPKG")
