"""The day map, rendered to a Bokeh document (no browser): titles, colour scales, anomaly colours and Play/Pause."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import panel as pn
import pytest
from bokeh.document import Document
from bokeh.models import ColorBar, GlyphRenderer, Model, Plot

from dashboard.resources import Resources
from dashboard.results import percentile_range
from dashboard.state import COLOR_SCALES, EXCEEDANCE_SCALES, AppState
from dashboard.views.day_map import EXCEEDANCE_OPTIONS, SCALE_LABELS, SCALE_OPTIONS, DayMap
from msgl_core import TIME, RunConfig, anomaly, climatology, list_runs


def _loaded(resources: Resources, base_config: RunConfig, runs_dir: Path, sparsity: float = 1.0
            ) -> tuple[AppState, DayMap, Model]:
    state = AppState(resources, base_config, runs_dir)
    day_map = DayMap(state=state)
    state.load(_run_path(runs_dir, sparsity))
    return state, day_map, pn.panel(day_map).get_root(Document())


def _run_path(runs_dir: Path, sparsity: float) -> Path:
    return next(run.path for run in list_runs(runs_dir).runs if run.config.sparsity == sparsity)


def _titles(root: Model) -> list[str]:
    return sorted(plot.title.text for plot in root.select({"type": Plot}))


def _colorbar(root: Model, label: str) -> ColorBar:
    (bar,) = [bar for bar in root.select({"type": ColorBar}) if bar.title == label]
    return bar


def _prediction_source(root: Model) -> dict:
    (source,) = [r.data_source.data for r in root.select({"type": GlyphRenderer})
                 if {"prediction", "parent_segment"} <= set(r.data_source.data)]
    return source


def test_titles_say_what_where_and_when_and_follow_the_day_and_the_run(resources: Resources, base_config: RunConfig,
                                                                       runs_dir: Path) -> None:
    state, day_map, root = _loaded(resources, base_config, runs_dir)
    titles = _titles(root)
    assert len(titles) == 2 and titles[0].startswith("Predicted (lines), observed (dots)")
    assert titles[1].startswith("Predicted − observed")
    for title in titles:
        flat = title.replace("\n", " · ")
        assert "rgcn_fine on drb" in flat and "ρ 100 %" in flat and f"{state.date:%a %d %b %Y}" in flat
    day_map.step(+1)
    assert all(f"{state.date:%a %d %b %Y}" in title for title in _titles(root))
    state.load(_run_path(runs_dir, 0.5))
    assert all("ρ 50 %" in title and f"{state.date:%a %d %b %Y}" in title for title in _titles(root))


@pytest.mark.parametrize("scale", [s for s in COLOR_SCALES if s not in EXCEEDANCE_SCALES])
def test_colour_scales_give_their_range(resources: Resources, base_config: RunConfig, runs_dir: Path,
                                        scale: str) -> None:
    state, day_map, root = _loaded(resources, base_config, runs_dir)
    state.color_scale = scale
    results = state.results
    expected = {"day": percentile_range(results.day(state.date)["prediction"].to_numpy()),
                "season": results.month_clims[state.date.month], "record": results.clim,
                "anomaly": (-5.0, 5.0)}[scale]
    mapper = _colorbar(root, SCALE_LABELS[scale]).color_mapper
    assert (mapper.low, mapper.high) == expected
    if scale == "day":  # the day's own range follows the date (a winter day of the tiny record is colder)
        state.date = results.time[0]
        assert (mapper.low, mapper.high) == percentile_range(results.day(state.date)["prediction"].to_numpy())
        assert (mapper.low, mapper.high) != expected


def test_anomaly_colours_are_the_core_anomaly(resources: Resources, base_config: RunConfig, runs_dir: Path) -> None:
    state, day_map, root = _loaded(resources, base_config, runs_dir)
    state.color_scale = "anomaly"
    results = state.results
    predictions = results.predictions["prediction"]
    k = results.day_index(state.date)
    expected = anomaly(predictions.isel({TIME: [k]}), climatology(predictions)).values[0]
    source = _prediction_source(root)
    reaches = results.reaches.get_indexer(source["reach"])
    np.testing.assert_allclose(source["prediction_anomaly"], expected[reaches])
    np.testing.assert_allclose(source["prediction"], predictions.values[k, reaches], rtol=1e-6)
    assert "anomaly" in _titles(root)[0] and np.isfinite(source["prediction_anomaly"]).all()


def test_play_becomes_pause_while_playing(resources: Resources, base_config: RunConfig, runs_dir: Path) -> None:
    state, day_map, _ = _loaded(resources, base_config, runs_dir)
    assert day_map._play.label == "Play"
    day_map._play.value = True
    assert day_map._play.label == "Pause"
    day_map._play.value = False
    assert day_map._play.label == "Play"


def test_an_ensemble_run_maps_exceedance_probabilities(resources: Resources, base_config: RunConfig,
                                                       ensemble_runs: Path, runs_dir: Path) -> None:
    state = AppState(resources, base_config, ensemble_runs)
    day_map = DayMap(state=state)
    run = next(r for r in list_runs(ensemble_runs).runs if r.config.variant == "ot_diffusion")
    state.load(run.path)
    assert day_map._scale.options == {**SCALE_OPTIONS, **EXCEEDANCE_OPTIONS}
    root = pn.panel(day_map).get_root(Document())
    state.color_scale = "exceed20"
    mapper = _colorbar(root, SCALE_LABELS["exceed20"]).color_mapper
    assert (mapper.low, mapper.high) == (0.0, 1.0)
    source = _prediction_source(root)
    results = state.results
    k = results.day_index(state.date)
    expected = results.predictions["p_exceed_20"].values[k, results.reaches.get_indexer(source["reach"])]
    np.testing.assert_allclose(source["prediction_exceed"], expected)
    assert "P(T > 20 °C)" in _titles(root)[0]
    state.load(_run_path(runs_dir, 1.0))  # a deterministic run: no exceedance buttons, back to the day's range
    assert day_map._scale.options == SCALE_OPTIONS and state.color_scale == "day"
