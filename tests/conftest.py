"""Shared fixtures: a tiny bundle and its processed dataset, built in code."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from msgl_core.data import MultiscaleData, load_dataset
from tests.tiny_bundle import write_tiny_bundle

# The tests' tensors are tiny: one thread avoids OpenMP contention on a busy 2-core machine (measured
# 3-4 s per model test file with one thread, 15-25 s with two under load).
torch.set_num_threads(1)


@pytest.fixture
def tiny_bundle(tmp_path: Path) -> Path:
    """A fresh tiny bundle folder (safe to corrupt in a test)."""
    return write_tiny_bundle(tmp_path / "bundle")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> MultiscaleData:
    """The processed tiny dataset (read-only, shared by the session)."""
    root = tmp_path_factory.mktemp("tiny")
    return load_dataset(write_tiny_bundle(root / "bundle"), root / "cache")
