"""The shareable URL: a session's choices written as a query and restored in a new session."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from dashboard import share
from dashboard.resources import Resources
from dashboard.state import AppState
from msgl_core import Run, RunConfig


def _loaded(resources: Resources, base: RunConfig, run: Run) -> AppState:
    state = AppState(resources, base, run.path.parent)
    assert state.load(run.path)
    state.param.update(date=state.results.time[40], reach="101_1", view="errors", error_metric="bias")
    return state


def test_a_shared_url_restores_run_tab_day_and_reach(resources: Resources, base_config: RunConfig,
                                                     tiny_run: Run) -> None:
    state = _loaded(resources, base_config, tiny_run)
    query = share.url_query(state)
    assert query["run"] == tiny_run.path.name and query["tab"] == "errors" and query["reach"] == "101_1"
    assert query["day"] == f"{state.results.time[40]:%Y-%m-%d}" and query["variant"] == "rgcn_fine"
    assert query["rho"] == "1" and query["metric"] == "bias"
    # What the browser sends back: the query string, then parsed as text (Panel's parser reads 101_1 as 1011).
    search = share.query_text("?theme=dark", query)
    assert "theme=dark" in search
    fresh = AppState(resources, base_config, tiny_run.path.parent)
    assert share.restore(fresh, share.raw_query(search)) == []
    assert share.url_query(fresh) == query
    assert fresh.results is not None and fresh.results.name == tiny_run.path.name
    assert fresh.reach == "101_1" and pd.Timestamp(fresh.date) == state.results.time[40] and fresh.view == "errors"


def test_bad_values_are_named_and_the_rest_still_applies(resources: Resources, base_config: RunConfig,
                                                         tiny_run: Run) -> None:
    state = AppState(resources, base_config, tiny_run.path.parent)
    problems = share.restore(state, {"rho": "2", "seed": "7", "run": "../../etc", "reach": "999_9", "tab": "nowhere",
                                     "day": "not a day", "theme": "dark"})
    text = " | ".join(problems)
    assert "rho='2'" in text and "run='../../etc'" in text and "reach='999_9'" in text and "tab='nowhere'" in text
    assert "day='not a day'" in text and len(problems) == 5
    assert state.settings.seed == 7 and state.settings.sparsity == 1.0 and state.results is None


def test_a_run_missing_from_the_cache_is_reported(resources: Resources, base_config: RunConfig, tmp_path: Path) -> None:
    state = AppState(resources, base_config, tmp_path)
    problems = share.restore(state, {"run": "msgl_drb_rho1_seed1_0123"})
    assert len(problems) == 1 and "not in this server's run cache" in problems[0]


def test_the_url_drops_our_keys_that_are_unset(resources: Resources, base_config: RunConfig, tmp_path: Path) -> None:
    state = AppState(resources, base_config, tmp_path)
    query = share.url_query(state)
    assert "run" not in query and "reach" not in query and "day" not in query
    assert share.query_text("?run=old&reach=1_1&theme=dark", query).count("run=") == 0


def test_the_page_says_which_run_the_maps_show(resources: Resources, base_config: RunConfig, tiny_run: Run) -> None:
    # Defect: after choosing another basin the maps still showed the previous run and nothing said which.
    state = AppState(resources, base_config, tiny_run.path.parent)
    assert state.shown_run_note() == ""
    state.load(tiny_run.path)
    assert state.shown_run_note() == f"**Maps show:** {tiny_run.label()}"
    state.settings.param.update(domain="upstream", outlet=102)
    note = state.shown_run_note()
    assert note.startswith(f"**Maps show:** {tiny_run.label()}") and "rgcn_fine on 102" in note and "Train" in note


def test_the_glossary_explains_the_page_words() -> None:
    from dashboard.views.glossary import TERMS, Glossary

    assert {"Sparsity ρ", "Reach-day", "RMSE", "NSE"} <= set(TERMS)
    card = Glossary().__panel__()
    assert card.collapsed and "Nash–Sutcliffe" in card.objects[0].object


def test_an_unreliable_run_is_not_announced_in_green(resources: Resources, base_config: RunConfig, tiny_run: Run,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from msgl_core import Reliability

    state = AppState(resources, base_config, tiny_run.path.parent)
    monkeypatch.setattr(resources, "reliability", lambda run: Reliability(False, ("test NSE -0.40 < 0",), 100))
    assert state.load(tiny_run.path)
    assert state.alert_level == "warning" and "Unreliable: test NSE -0.40 < 0" in state.alert


def test_the_active_choice_button_stands_out(resources: Resources, base_config: RunConfig, tiny_run: Run) -> None:
    # Defect: the active metric button (RMSE / bias / MAE) looked like the others.
    from dashboard.views.error_map import ErrorMap

    view = ErrorMap(state=AppState(resources, base_config, tiny_run.path.parent))
    assert view._metric.button_style == "outline" and view._metric.button_type == "primary"
