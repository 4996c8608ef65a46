"""The strict run config."""

from __future__ import annotations

from pathlib import Path

import pytest

from msgl_core.config import RunConfig


def test_unknown_key_raises_with_suggestion() -> None:
    with pytest.raises(ValueError, match="unknown config key 'sparsty'; did you mean 'sparsity'"):
        RunConfig.from_dict({"sparsty": 0.1})


@pytest.mark.parametrize("sparsity", [0.0, -0.1, 1.5])
def test_sparsity_outside_unit_interval_raises(sparsity: float) -> None:
    with pytest.raises(ValueError, match=r"sparsity must be in \(0, 1\]"):
        RunConfig(sparsity=sparsity)


def test_yaml_round_trip_and_file_named_in_errors(tmp_path: Path) -> None:
    cfg = RunConfig(variant="rgcn_fine", sparsity=0.01, holdout_segments=(1781, 1777))
    path = tmp_path / "run.yaml"
    path.write_text(cfg.to_yaml({"msgl_version": "1.0"}))
    assert RunConfig.from_yaml(path) == cfg.with_overrides(holdout_segments=[1777, 1781])
    path.write_text("epochs: 0\n")
    with pytest.raises(ValueError, match=r"run\.yaml: epochs must be >= 1"):
        RunConfig.from_yaml(path)


def test_key_ignores_runtime_fields_but_not_results_fields() -> None:
    base = RunConfig()
    assert base.key("data") == base.with_overrides(device="cpu", threads=1).key("data")
    assert base.key("data") != base.with_overrides(seed=2).key("data")
    assert base.key("data") != base.key("other-data")
