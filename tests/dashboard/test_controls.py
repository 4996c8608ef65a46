"""The run settings widgets: grouped variants, only devices that work, typed numbers checked with a message."""

from __future__ import annotations

from pathlib import Path

import pytest

import dashboard.views.controls as controls_module
from dashboard.resources import Resources
from dashboard.state import AppState
from dashboard.views.controls import RunControls, device_options, variant_groups
from msgl_core import RunConfig, variant_names


def test_variants_are_grouped_with_friendly_names_and_the_registry_key(resources: Resources, base_config: RunConfig,
                                                                        tmp_path: Path) -> None:
    groups = variant_groups()
    assert list(groups) == ["multi-scale", "fine-only graph baselines", "downscaling baselines",
                            "probabilistic downscaling"]
    assert groups["multi-scale"]["MSGL (multi-scale graph learning) (msgl)"] == "msgl"
    assert sorted(key for group in groups.values() for key in group.values()) == variant_names()
    controls = RunControls(state=AppState(resources, base_config, tmp_path))
    assert controls._variant.groups == groups
    controls._variant.value = "remap"
    assert controls.state.settings.variant == "remap"


def test_without_cuda_the_gpu_cannot_be_chosen(resources: Resources, base_config: RunConfig, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    # Defect: "GPU: not available" could be chosen; the page showed a raw ValueError and the widget showed GPU.
    monkeypatch.setattr(controls_module, "cuda_available", lambda: False)
    controls = RunControls(state=AppState(resources, base_config, tmp_path))
    assert "cuda" not in controls._device.options.values()
    assert controls._device_note.visible and "No CUDA GPU" in controls._device_note.object
    assert device_options(True)["GPU (CUDA)"] == "cuda"


@pytest.mark.parametrize(("typed", "kept"), [(0, 2), (5000, 2), (-3, 2), (2.7, 2), (None, 2)])
def test_an_out_of_range_number_is_refused_with_a_message(resources: Resources, base_config: RunConfig,
                                                          tmp_path: Path, typed: float | None, kept: int) -> None:
    # Defect: Epochs 0, 5000, -3, 2.7 reverted silently.
    controls = RunControls(state=AppState(resources, base_config, tmp_path))
    controls._numbers["epochs"].value = typed
    assert controls.state.settings.epochs == kept and controls._numbers["epochs"].value == kept
    assert controls._number_problem.visible
    assert "Epochs must be a whole number from 1 to 1,000" in controls._number_problem.object
    controls._numbers["epochs"].value = 7  # a valid value clears the message
    assert controls.state.settings.epochs == 7 and not controls._number_problem.visible


def test_set_number_reports_why(resources: Resources, base_config: RunConfig, tmp_path: Path) -> None:
    state = AppState(resources, base_config, tmp_path)
    assert state.set_number("seed", 12) == "" and state.settings.seed == 12
    assert "Seed must be a whole number" in state.set_number("seed", 1.5) and state.settings.seed == 12
    assert "typed nothing" in state.set_number("threads", None)


def test_the_reservoir_checkbox_reaches_the_run_config_and_shows_a_loaded_run(resources: Resources,
                                                                             base_config: RunConfig,
                                                                             tmp_path: Path) -> None:
    state = AppState(resources, base_config, tmp_path)
    controls = RunControls(state=state)
    plain_key = state.check.config.key("x")
    controls._reservoirs.value = True
    assert state.settings.to_config().reservoir_features and state.check.config.reservoir_features
    assert state.check.config.key("x") != plain_key  # another run: it is trained, not loaded
    state.settings.apply_config(base_config)
    assert controls._reservoirs.value is False
