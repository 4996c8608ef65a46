"""The Calibration tab: an ensemble run's rank histogram, reliability diagram and scores beside the runs that saw the
same data, all read from the run records (no browser)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import panel as pn
from bokeh.document import Document
from bokeh.models import GlyphRenderer, Plot, VBar

from dashboard.resources import Resources
from dashboard.state import VIEWS, AppState
from dashboard.views.calibration import SCORES, Calibration, comparable_runs
from msgl_core import Run, RunConfig, list_runs


def test_an_ensemble_run_shows_its_recorded_calibration_beside_its_base_run(resources: Resources,
                                                                          base_config: RunConfig,
                                                                          ensemble_runs: Path) -> None:
    assert "calibration" in VIEWS
    state = AppState(resources, base_config, ensemble_runs)
    runs = list_runs(ensemble_runs).runs
    ensemble = next(r for r in runs if r.config.variant == "ot_diffusion")
    base = next(r for r in runs if r.config.variant == "msgl")
    view = Calibration(state=state)
    state.load(ensemble.path)
    state.view = "calibration"
    root = pn.panel(view).get_root(Document())
    record = ensemble.metrics.probabilistic.fine
    (bars,) = [r.data_source.data for r in root.select({"type": GlyphRenderer}) if isinstance(r.glyph, VBar)]
    assert list(bars["count"]) == list(record.rank_histogram) and len(bars["rank"]) == 4 + 1  # M + 1 ranks
    titles = [p.title.text for p in root.select({"type": Plot})]
    assert "Rank histogram" in titles and any("Reliability" in t for t in titles)
    assert "CRPS" in view._summary.object and "Learned from: base-run fields" in view._summary.object
    table = view._table.value
    assert set(table["variant"]) == {"ot_diffusion", "msgl"} and list(table.columns) == ["variant", *SCORES.values()]
    deterministic = table.set_index("variant").loc["msgl", SCORES["crps"]]
    assert np.isclose(deterministic, base.metrics.fine.overall.mae)  # a deterministic run's CRPS is its MAE


def test_a_deterministic_run_says_calibration_needs_an_ensemble(resources: Resources, base_config: RunConfig,
                                                                tiny_run: Run) -> None:
    state = AppState(resources, base_config, tiny_run.path.parent)
    view = Calibration(state=state)
    state.load(tiny_run.path)
    state.view = "calibration"
    assert "Calibration is shown for ensemble runs" in view._summary.object and not view._table.visible


def test_only_runs_that_saw_the_same_data_are_compared(ensemble_runs: Path) -> None:
    runs = list_runs(ensemble_runs).runs
    ensemble = next(r for r in runs if r.config.variant == "ot_diffusion")
    other_seed = Run(ensemble.path.with_name("other"), ensemble.config.with_overrides(seed=9),
                     ensemble.data_fingerprint, ensemble.msgl_version, ensemble.metrics)
    table = comparable_runs(ensemble, [*runs, other_seed])
    assert "other" not in set(table["run"]) and ensemble.path.name in set(table["run"])
