"""Every view renders (to a Bokeh document, no browser) before and after a run is loaded, and follows the state."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import panel as pn
import pytest
from bokeh.document import Document
from bokeh.models import VArea
from typer.testing import CliRunner

from dashboard.app import Dashboard, create_app
from dashboard.resources import Resources, resources_from_data
from dashboard.state import VIEWS, AppState
from dashboard.views.controls import RunControls
from dashboard.views.day_map import DayMap
from dashboard.views.downloads import Downloads
from dashboard.views.reach_detail import ReachDetail, observation_class
from dashboard.views.training import TrainingProgress
from msgl_core import MIN_GROUP_OBS, PARENT_SEGMENT, SPLIT_NAMES, MultiscaleData, Run, RunConfig, train_or_load
from msgl_core.cli import app as cli


def _render(viewable: object) -> None:
    if isinstance(viewable, pn.template.BaseTemplate):
        viewable.server_doc(Document())
    else:
        pn.panel(viewable).get_root(Document())


def test_every_tab_renders_before_and_after_loading(resources: Resources, base_config: RunConfig, tiny_run: Run) -> None:
    state = AppState(resources, base_config, tiny_run.path.parent)
    dashboard = Dashboard(state=state)
    for view in VIEWS:
        state.view = view
        assert dashboard.tabs.active == VIEWS.index(view)
        _render(dashboard.views[view])
    _render(dashboard.template())
    state.view = "network"
    state.load(tiny_run.path)
    assert dashboard.tabs.active == VIEWS.index("day")
    state.reach = "101_1"
    for view in VIEWS:
        state.view = view
        _render(dashboard.views[view])
    _render(dashboard.reach)
    dashboard.tabs.active = VIEWS.index("compare")
    assert state.view == "compare"


def test_controls_follow_the_settings(resources: Resources, base_config: RunConfig, tiny_run: Run) -> None:
    state = AppState(resources, base_config, tiny_run.path.parent)
    controls = RunControls(state=state)
    state.settings.variant = "rgcn_fine"
    assert controls._train.label == "Load cached run" and not controls._train.disabled
    state.settings.seed = 99
    assert controls._train.label == "Train" and "reach-days kept" in controls._counts.object
    state.settings.sparsity = 0.37  # a loaded run's value that the slider does not offer joins its options
    assert controls._sparsity.value == 0.37 and "37 %" in controls._sparsity.options
    state.settings.param.update(domain="upstream", outlet=None)
    assert controls._train.disabled and controls._problem.visible
    state.settings.variant = "async_msgl"
    assert "2 stages (pretrain → finetune)" in controls._variant_info.object
    state.settings.variant = "remap"
    assert "Sparsity does not change" in controls._variant_info.object


def test_day_map_steps_through_the_record(resources: Resources, base_config: RunConfig, tiny_run: Run) -> None:
    state = AppState(resources, base_config, tiny_run.path.parent)
    day_map = DayMap(state=state)
    state.load(tiny_run.path)
    _render(day_map)
    start = state.date
    day_map.step(+1)
    assert (state.date - start).days == 1 and f"{state.date:%d %b %Y}" in day_map._header.object
    assert SPLIT_NAMES[state.results.split[state.results.day_index(state.date)]] in day_map._header.object
    day_map._step.value = 7
    day_map.step(-1)
    assert (start - state.date).days == 6
    state.date = state.results.time[-1]
    day_map.step(+1)
    assert state.date == state.results.time[-1]  # clipped to the record


def test_reach_panel_and_downloads(resources: Resources, base_config: RunConfig, tiny_run: Run) -> None:
    state = AppState(resources, base_config, tiny_run.path.parent)
    reach, downloads = ReachDetail(state=state), Downloads(state=state)
    assert downloads._netcdf.disabled
    state.load(tiny_run.path)
    assert not downloads._netcdf.disabled and downloads._netcdf.filename.endswith("_predictions.nc")
    state.reach = "101_1"
    assert "Reach 101_1" in reach._title.object and reach._plots.visible
    _render(reach)
    months = reach.month_errors("101_1").set_index("month")  # the panel's test error by month
    assert f"fewer than {MIN_GROUP_OBS} observations" in reach.figures.months.title.text
    assert months.loc["Mar", "n_obs"] >= MIN_GROUP_OBS and months.loc["Mar", "rmse"] > 0
    state.reach = "104_1"  # 7 test observations: no score, as in the run's metrics
    months = reach.month_errors("104_1").set_index("month")
    assert months.loc["Mar", "n_obs"] == 7 and months["rmse"].isna().all()
    assert f"fewer than {MIN_GROUP_OBS} test observations" in reach._title.object
    assert downloads._predictions_csv().getvalue().startswith(f"date,reach,{PARENT_SEGMENT}")
    assert downloads._metrics_gpkg().getvalue()[:16].startswith(b"SQLite format 3")


def test_training_progress_polls_the_job(resources: Resources, base_config: RunConfig, tmp_path: Path) -> None:
    state = AppState(resources, base_config, tmp_path)
    progress = TrainingProgress(state=state)
    state.settings.variant = "rgcn_fine"
    state.train()
    state.job.wait(60)
    progress._tick()  # what the periodic callback does
    assert state.results is not None and progress._layout.visible and "done" in progress._text.object
    assert not progress._cancel.visible


def test_network_map_without_layers_renders(tiny_data: MultiscaleData, base_config: RunConfig, tmp_path: Path) -> None:
    state = AppState(resources_from_data(tiny_data), base_config, tmp_path)
    dashboard = Dashboard(state=state)
    _render(dashboard.views["network"])
    assert "not available" in dashboard.views["network"]._info.object


def test_bad_data_location_shows_a_message(tmp_path: Path) -> None:
    page = create_app(data_dir=tmp_path / "nowhere", cache_dir=tmp_path / "cache")
    alerts = [obj for obj in page.main.objects if isinstance(obj, pn.pane.Alert)]
    assert alerts and "could not load the DRB data" in alerts[0].object


@pytest.mark.parametrize("args", [["serve", "--help"]])
def test_cli_has_serve(args: list[str]) -> None:
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0 and "--port" in result.output and "--address" in result.output


def test_a_holdout_run_labels_withheld_observations_as_held_out(resources: Resources, dash_data: MultiscaleData,
                                                                base_config: RunConfig, tmp_path: Path) -> None:
    """Observations of hold-out reaches are withheld by the hold-out, not by the sparsity mask."""
    run = train_or_load(base_config.with_overrides(variant="rgcn_fine", holdout_segments=[104]), dash_data,
                        runs_dir=tmp_path, progress=False)
    state = AppState(resources, base_config, tmp_path)
    day_map, reach = DayMap(state=state), ReachDetail(state=state)
    assert state.load(run.path)
    results = state.results
    assert results.is_held_out("104_1") and not results.is_held_out("101_1")
    classes = observation_class(results.reach_series("104_1"), held_out=True)
    assert set(classes) == {"held out", "test"}
    state.reach = "104_1"
    assert "hold-out reach" in reach._title.object
    state.date = results.time[0]  # a training day: 104_1 is observed
    state.view = "day"
    status = day_map._points(state.date).set_index("reach")["status"]
    assert status["104_1"].startswith("withheld: hold-out reach") and status["101_1"].startswith("used")
    frame = results.metrics_frame(resources.reaches)
    assert frame.loc[frame[PARENT_SEGMENT] == 104, "holdout"].all() and not frame.loc["101_1", "holdout"]


def test_an_ensemble_hydrograph_shows_the_member_bands(resources: Resources, base_config: RunConfig,
                                                       ensemble_runs: Path, tiny_run: Run) -> None:
    from msgl_core import list_runs

    state = AppState(resources, base_config, ensemble_runs)
    reach = ReachDetail(state=state)
    run = next(r for r in list_runs(ensemble_runs).runs if r.config.variant == "ot_diffusion")
    state.load(run.path)
    assert state.results is not None and state.results.is_ensemble
    series = state.results.reach_series("101_1")
    sampled = series["prediction_q05"].notna()
    assert sampled.any() and (series.loc[sampled, "prediction_q05"] <= series.loc[sampled, "prediction_q95"]).all()
    state.reach = "101_1"
    hydrograph = reach.figures.hydrograph
    labels = [item.label["value"] for item in hydrograph.legend[0].items]
    assert labels[:3] == ["5–95 % of members", "25–75 % of members", "ensemble mean"]
    bands = [r for r in hydrograph.renderers if isinstance(r.glyph, VArea)]
    assert len(bands) == 2 and all(band.visible for band in bands)
    data = bands[0].data_source.data
    np.testing.assert_allclose(data["prediction_q05"], series["prediction_q05"].to_numpy(), rtol=1e-6)
    state.load(tiny_run.path)  # a deterministic run: no bands, its predictions
    state.reach = "101_1"
    assert not any(band.visible for band in bands)
    assert [item.label["value"] for item in hydrograph.legend[0].items][0] == "predicted"


def test_a_tab_view_is_made_when_the_tab_is_first_shown(resources: Resources, base_config: RunConfig,
                                                        tiny_run: Run) -> None:
    state = AppState(resources, base_config, tiny_run.path.parent)
    dashboard = Dashboard(state=state)
    assert set(dashboard.views) == {"network"}  # a page opening on the network map builds no other tab
    state.load(tiny_run.path)  # shows the day map
    assert set(dashboard.views) == {"network", "day"} and dashboard.views["day"]._drawn_for is state.results
    state.view = "errors"
    assert dashboard.views["errors"]._plot_box.visible  # made for the loaded run
