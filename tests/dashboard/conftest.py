"""Fixtures for the dashboard: the tiny dataset with map layers, a run cache with trained tiny runs, and (for
browser tests) the app served in-process and a headless Chromium."""

from __future__ import annotations

import shutil
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import geopandas as gpd
import panel as pn
import pytest
from shapely.geometry import box

from dashboard import browser as chromium
from dashboard.app import create_app
from dashboard.resources import Resources, resources_from_data
from msgl_core.config import RunConfig
from msgl_core.data import MultiscaleData, load_dataset
from msgl_core.runs import Run, train_or_load
from tests.tiny_bundle import PERIODS, write_tiny_bundle


def write_map_layers(bundle: Path) -> None:
    """Add a basin outline and one reservoir to a tiny bundle (its dams are a build input, written with it)."""
    outline = gpd.GeoDataFrame({"name": ["tiny basin"]}, geometry=[box(-75.05, 40.55, -74.75, 41.05)], crs=4326)
    outline.to_file(bundle / "network/drb_boundary.gpkg", driver="GPKG")
    reservoir = gpd.GeoDataFrame({"DAM_NAME": ["Tiny Dam"], "RES_NAME": ["Tiny Lake"], "AREA_SKM": [1.5]},
                                 geometry=[box(-74.93, 40.74, -74.91, 40.76)], crs=4326)
    reservoir.to_file(bundle / "network/reservoirs.gpkg", layer="reservoirs", driver="GPKG")


@pytest.fixture(scope="session")
def dash_data(tmp_path_factory: pytest.TempPathFactory) -> MultiscaleData:
    """The tiny dataset, built from a bundle that also has map layers."""
    root = tmp_path_factory.mktemp("dash")
    bundle = write_tiny_bundle(root / "bundle")
    write_map_layers(bundle)
    return load_dataset(bundle, root / "cache")


@pytest.fixture(scope="session")
def resources(dash_data: MultiscaleData) -> Resources:
    """Dashboard resources of the tiny dataset."""
    return resources_from_data(dash_data)


@pytest.fixture(scope="session")
def base_config() -> RunConfig:
    """A config that trains on the tiny record in well under a second."""
    return RunConfig.from_dict({"basin": "drb", "window": 20, "epochs": 2, "device": "cpu", "learning_rate": 0.02,
                                "threads": 1, **PERIODS})


@pytest.fixture(scope="session")
def runs_dir(tmp_path_factory: pytest.TempPathFactory, dash_data: MultiscaleData, base_config: RunConfig) -> Path:
    """A run cache holding two tiny runs (rgcn_fine at ρ = 1 and ρ = 0.5); tests must not add to it."""
    folder = tmp_path_factory.mktemp("runs")
    for sparsity in (1.0, 0.5):
        train_or_load(base_config.with_overrides(variant="rgcn_fine", sparsity=sparsity), dash_data,
                      runs_dir=folder, progress=False)
    return folder


@pytest.fixture(scope="session")
def tiny_run(runs_dir: Path, dash_data: MultiscaleData, base_config: RunConfig) -> Run:
    """The cached ρ = 1 tiny run."""
    return train_or_load(base_config.with_overrides(variant="rgcn_fine"), dash_data, runs_dir=runs_dir, progress=False)


@pytest.fixture(scope="session")
def ensemble_runs(dash_data: MultiscaleData, base_config: RunConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A run cache with a tiny ot_diffusion run (and its msgl base run)."""
    folder = tmp_path_factory.mktemp("ensemble_runs")
    train_or_load(base_config.with_overrides(variant="ot_diffusion", ot_diffusion={
        "members": 4, "steps": 4, "pretrain_epochs": 1, "finetune_epochs": 1, "batch_days": 8,
        "debias": {"n_support": 50}}), dash_data, runs_dir=folder, progress=False)
    return folder


@pytest.fixture(scope="module")
def served_runs(runs_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the tiny run cache that the served app may add runs to."""
    folder = tmp_path_factory.mktemp("served") / "runs"
    shutil.copytree(runs_dir, folder)
    return folder


@pytest.fixture(scope="module")
def url(resources: Resources, base_config: RunConfig, served_runs: Path) -> Iterator[str]:
    """The dashboard on the tiny data, served in this process on a free loopback port."""
    port = chromium.free_port()

    def app() -> pn.template.BaseTemplate:
        return create_app(resources=resources, base=base_config, runs_dir=served_runs)

    server = pn.serve({"/": app}, port=port, address="127.0.0.1", show=False, threaded=True,
                      websocket_origin=[f"127.0.0.1:{port}"])
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/"
    server.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """One headless Chromium for the module (browser tests only)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = chromium.launch(playwright)
        yield instance
        instance.close()
