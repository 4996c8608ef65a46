"""The Compare tab for analysts (titled A, B and A − B maps on robust scales, `msgl compare` outputs, unreliable
runs flagged), the Errors table's missing scores, and no server path sent to the browser."""

from __future__ import annotations

import json
from pathlib import Path

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import pytest
from bokeh.document import Document
from typer.testing import CliRunner

from dashboard.app import Dashboard
from dashboard.resources import Resources
from dashboard.state import AppState
from dashboard.views import maps
from dashboard.views.compare import MAX_SPARSITY, RELIABILITY, CompareRuns, difference, shared_scale, two_lines
from dashboard.views.error_map import CLIP_HIGH, MISSING, MISSING_NOTE, ErrorMap
from dashboard.views.run_picker import UNRELIABLE, RunPicker
from msgl_core import (
    MultiscaleData,
    Run,
    RunConfig,
    RunMetrics,
    Scores,
    SkillSection,
    format_table,
    grid,
    read_comparison,
    reliability,
    run_grid,
    summarise,
)
from msgl_core.cli import app as cli
from msgl_core.compare import write_outputs


def _compare(resources: Resources, base_config: RunConfig, runs_dir: Path, **params: object) -> tuple[AppState,
                                                                                                      CompareRuns]:
    state = AppState(resources, base_config, runs_dir, **params)
    view = CompareRuns(state=state)
    state.view = "compare"
    return state, view


def _options(element: object) -> dict:
    return hv.Store.lookup_options("bokeh", element, "plot").kwargs


def _colours(element: object) -> dict:
    """Plot and style options of a coloured element (clim, clipping_colors, cmap)."""
    return {**_options(element), **hv.Store.lookup_options("bokeh", element, "style").kwargs}


def _points(overlay: hv.Overlay) -> hv.Points:
    return next(e for e in overlay if isinstance(e, hv.Points))


def test_compare_maps_are_titled_and_add_an_a_minus_b_map(resources: Resources, base_config: RunConfig,
                                                          runs_dir: Path) -> None:
    state, view = _compare(resources, base_config, runs_dir)
    runs = {r.path.name: r for r in state.cached_runs}
    first, second = runs[view._first.value], runs[view._second.value]
    panels = [pane.object for pane in view._maps]
    assert len(panels) == 3
    titles = [_options(p)["title"] for p in panels]
    label = Scores.LABELS["rmse"]
    assert titles[0] == two_lines(maps.run_title(first, f"A {UNRELIABLE}: test-period {label}"))
    assert titles[1] == two_lines(maps.run_title(second, f"B {UNRELIABLE}: test-period {label}"))
    assert titles[0].startswith(f"A {UNRELIABLE}: test-period {label}\nrgcn_fine on drb · ρ ")
    change = difference(first.metrics.per_reach_frame(), second.metrics.per_reach_frame(), "rmse")
    assert titles[2] == f"A − B: test-period {label}\non the {len(change)} reach(es) both scored · drb"
    # The A − B map colours each reach scored by both runs by A's score minus B's, on a scale centred on 0.
    points = _points(panels[2]).dframe().set_index("reach")
    assert len(points) == len(change) > 0
    np.testing.assert_allclose(points.loc[change.index, "value"], first.metrics.per_reach_frame().loc[
        change.index, "rmse"] - second.metrics.per_reach_frame().loc[change.index, "rmse"])
    low, high = _colours(_points(panels[2]))["clim"]
    assert low == -high and _colours(_points(panels[2]))["cmap"] == maps.DIFFERENCE_CMAP
    # A and B share one scale; values beyond it have their own colour.
    assert _colours(_points(panels[0]))["clim"] == _colours(_points(panels[1]))["clim"]
    assert _colours(_points(panels[0]))["clipping_colors"]["max"] == CLIP_HIGH


def test_one_bad_run_does_not_set_the_shared_colour_scale() -> None:
    good = np.array([0.8, 1.0, 1.1, 1.2, 0.9, 1.3, np.nan])
    bad = np.array([9.0, 12.0, 10.0, 11.0, 14.0])
    scale = shared_scale("rmse", [good, bad])
    assert scale.clim == (0.0, 1.5)  # the good run's 95th percentile, rounded up to 0.5 °C
    assert scale.clipped(good) == 0 and scale.clipped(bad) == len(bad)  # drawn as clipped, not rescaled
    bias = shared_scale("bias", [good - 1.0, bad])
    assert bias.clim == (-0.5, 0.5) and bias.cmap == maps.DIFFERENCE_CMAP
    old_top = maps.error_limits("rmse", np.concatenate([good, bad]))[0][1]
    assert old_top >= 10  # what the pooled scale did: the bad run stretched it


def test_difference_uses_the_reaches_both_runs_scored() -> None:
    a = pd.DataFrame({"rmse": [1.0, 2.0, np.nan]}, index=["r1", "r2", "r3"])
    b = pd.DataFrame({"rmse": [1.5, np.nan, 1.0, 4.0]}, index=["r1", "r2", "r3", "r4"])
    change = difference(a, b, "rmse")
    assert list(change.index) == ["r1"] and change.loc["r1", "difference"] == -0.5


def test_rmse_vs_sparsity_axis_ends_at_rho_one(resources: Resources, base_config: RunConfig, runs_dir: Path) -> None:
    _, view = _compare(resources, base_config, runs_dir)
    low, high = _options(view._chart.object)["xlim"]
    assert high == MAX_SPARSITY == 1.0 and 0 < low < 0.5  # the runs are at ρ = 0.5 and 1


def test_compare_shows_the_msgl_compare_outputs_of_the_basin(resources: Resources, dash_data: MultiscaleData,
                                                             base_config: RunConfig, runs_dir: Path,
                                                             tmp_path: Path) -> None:
    outcomes = run_grid(grid(base_config, ["rgcn_fine"], [1.0, 0.5], [1]), dash_data, runs_dir, train=False)
    write_outputs(outcomes, summarise(outcomes), tmp_path / "drb", "drb: test RMSE, 2 epochs per stage, seeds 1")
    state, view = _compare(resources, base_config, runs_dir, comparisons_dir=tmp_path)
    view._domain.value = "drb"
    outputs = read_comparison(tmp_path / "drb")
    assert format_table(outputs.table) in view._summary.object and outputs.title in view._summary.object
    assert view._figure.visible and view._figure.object == outputs.figure.read_bytes() and not view._chart_box.visible
    table = view._table.value
    assert sorted(table["run"]) == sorted(Path(o.path).name for o in outcomes) and "path" not in table
    assert all(cell.startswith(UNRELIABLE) for cell in table[RELIABILITY])  # the tiny runs are worse than climatology
    assert "2 of the 2 runs" in view._summary.object
    pn.panel(view).get_root(Document())
    # Every domain: the cached runs' summary, as before.
    view._domain.value = "all domains"
    assert not view._figure.visible and view._chart_box.visible and "msgl compare` reports it" in view._summary.object
    # A damaged output is reported, and the cached runs are shown instead.
    (tmp_path / "drb" / "comparison.json").write_text("{")
    view._domain.value = "drb"
    assert "drb/comparison.json: not JSON" in view._note.object and view._chart_box.visible


def test_unreliable_runs_are_flagged_in_the_lists_tables_and_maps(resources: Resources, dash_data: MultiscaleData,
                                                                 base_config: RunConfig, runs_dir: Path) -> None:
    state, view = _compare(resources, base_config, runs_dir)
    picker = RunPicker(state=state)
    runs = state.cached_runs
    assert all(not reliability(r, dash_data).ok for r in runs)  # 2 epochs on the tiny record: NSE < 0
    assert all(label.startswith(UNRELIABLE) for label in picker._select.options)
    assert all(label.startswith(UNRELIABLE) for label in view._first.options)
    assert "worse than climatology" in picker._details.object and "color:#a15c00" in picker._details.object
    assert all(cell.startswith(f"{UNRELIABLE}: worse than climatology") for cell in view._table.value[RELIABILITY])
    assert UNRELIABLE in view._maps_note.object
    # A reliable run is listed without the mark.
    scores = Scores(0.9, 0.7, 0.1, 0.9, 0.8, 28)
    good = Run(runs[0].path.with_name("good"), runs[0].config, runs[0].data_fingerprint, "0",
               RunMetrics(runs[0].config.test_periods, SkillSection(scores, {}, {})))
    state.cached_runs = [*runs, good]
    assert good.label() in picker._select.options and picker._select.options[good.label()] == "good"


def test_the_page_sends_run_folder_names_not_server_paths(resources: Resources, base_config: RunConfig,
                                                          runs_dir: Path) -> None:
    state = AppState(resources, base_config, runs_dir)
    dashboard = Dashboard(state=state)
    picker = next(v for v in dashboard.sidebar if isinstance(v, RunPicker))
    names = {r.path.name for r in state.cached_runs}
    assert set(picker._select.options.values()) == names
    state.view = "compare"
    compare = dashboard.views["compare"]
    assert set(compare._first.options.values()) == set(compare._second.options.values()) == names
    assert str(runs_dir) not in picker._note.object and f"`{runs_dir.name}`" in picker._note.object
    document = Document()
    document.add_root(pn.Column(*dashboard.sidebar, dashboard).get_root(document))  # sidebar and Compare tab
    sent = json.dumps(document.to_json(deferred=False), default=str)  # what the browser gets
    assert sorted(names)[0] in sent and str(runs_dir) not in sent
    # The picker resolves the name on the server.
    picker._select.value = sorted(names)[0]
    picker._on_load(None)
    assert state.results is not None and state.results.name == sorted(names)[0]


def test_errors_table_shows_a_dash_for_missing_scores(resources: Resources, base_config: RunConfig,
                                                      tiny_run: Run) -> None:
    state = AppState(resources, base_config, tiny_run.path.parent)
    errors = ErrorMap(state=state)
    state.load(tiny_run.path)
    state.view = "errors"
    formatters = errors._table.formatters
    for metric in ("rmse", "bias", "mae", "nse"):
        formatter = formatters[Scores.LABELS[metric]]
        assert (formatter.nan_format, formatter.null_format) == (MISSING, MISSING)
    assert MISSING_NOTE in errors._summary.object
    assert _options(errors._plot.object)["title"] == maps.run_title(tiny_run, "Test-period RMSE (°C) per gauged reach")
    pn.panel(errors).get_root(Document())


def test_serve_passes_the_comparisons_folder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    seen: dict[str, object] = {}
    monkeypatch.setattr("dashboard.app.serve", lambda **kwargs: seen.update(kwargs))
    result = CliRunner().invoke(cli, ["serve", "--comparisons-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert seen["comparisons_dir"] == tmp_path
    assert "--comparisons-dir" in CliRunner().invoke(cli, ["serve", "--help"]).output


def test_a_run_list_with_unreadable_folders_names_no_server_path(resources: Resources, base_config: RunConfig,
                                                                 runs_dir: Path, tmp_path: Path) -> None:
    broken = tmp_path / "runs" / "broken"
    broken.mkdir(parents=True)
    (broken / "metrics.json").write_text("{}")
    (broken / "config.yaml").write_text("[")
    state = AppState(resources, base_config, tmp_path / "runs")
    picker = RunPicker(state=state)
    assert state.skipped_runs and str(tmp_path) in state.skipped_runs[0]
    assert "broken" in picker._note.object and str(tmp_path) not in picker._note.object
