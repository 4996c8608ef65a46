"""The Management tab: days above 20/25 °C per reach of a run, on a map, in a table and as CSV (no browser)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import panel as pn
import pytest
import xarray as xr
from bokeh.document import Document
from bokeh.models import GlyphRenderer, Plot

from dashboard.app import TAB_TITLES
from dashboard.resources import Resources
from dashboard.state import VIEWS, AppState
from dashboard.views.management import ManagementMap, season_label
from msgl_core import TIME, Run, RunConfig


@pytest.fixture
def warm_state(resources: Resources, base_config: RunConfig, tiny_run: Run) -> AppState:
    """The tiny run with its predictions moved to about 17–28 °C (the tiny record is Jan–Mar 2000, ~7–12 °C)
    and reach 0 without predictions on 1–5 Feb, on the Management tab."""
    state = AppState(resources, base_config, tiny_run.path.parent)
    state.load(tiny_run.path)
    results = state.results
    warm = results.predictions.copy(deep=True)
    prediction = warm["prediction"]
    offsets = xr.DataArray(17.0 + 1.2 * np.arange(prediction.sizes["reach"]), dims="reach")  # 17–28 °C by reach
    warm["prediction"] = prediction - float(prediction.sel({TIME: "2000-02"}).median()) + offsets
    warm["prediction"][{TIME: slice(31, 36), "reach": 0}] = np.nan
    state.param.update(results=dataclasses.replace(results, predictions=warm), view="management")
    return state


def _expected(state: AppState, threshold: float) -> tuple[pd.Series, pd.Series]:
    """Days above ``threshold`` and days counted in February 2000, per reach, straight from the array."""
    feb = state.results.predictions["prediction"].sel({TIME: "2000-02"}).values
    finite = np.isfinite(feb)
    index = state.results.reaches
    return (pd.Series((finite & (np.nan_to_num(feb, nan=-1e9) > threshold)).sum(axis=0), index=index),
            pd.Series(finite.sum(axis=0), index=index))


def test_the_tab_is_registered() -> None:
    assert "management" in VIEWS and TAB_TITLES["management"] == "Days above 20/25 °C"
    assert season_label([8, 6, 7]) == "Jun–Aug" and season_label([1, 3]) == "Jan, Mar"


def test_counts_map_and_table_follow_season_year_and_threshold(warm_state: AppState) -> None:
    state = warm_state
    view = ManagementMap(state=state)
    root = pn.panel(view).get_root(Document())
    state.param.update(season_months=[2], season_year=2000)
    above_20, counted = _expected(state, 20.0)
    above_25, _ = _expected(state, 25.0)
    assert 0 < above_25.sum() < above_20.sum() < counted.sum()  # some reach-days above 25 °C, more above 20 °C
    table = view._table.value
    assert list(table.columns) == ["parent_segment", "days > 20 °C", "days > 25 °C", "days counted"]
    assert table["days > 20 °C"].is_monotonic_decreasing
    assert table["days > 20 °C"].to_dict() == above_20.to_dict()
    assert table["days counted"].to_dict() == counted.to_dict()
    assert counted.iloc[0] == 29 - 5 and counted.iloc[1:].eq(29).all()
    (title,) = [plot.title.text for plot in root.select({"type": Plot})]
    assert "Days above 20 °C in Feb 2000" in title and "rgcn_fine on drb" in title.replace("\n", " · ")

    state.heat_threshold = 25.0
    assert view._table.value["days > 25 °C"].is_monotonic_decreasing
    assert view._table.value["days > 25 °C"].to_dict() == above_25.to_dict()
    (source,) = [r.data_source.data for r in root.select({"type": GlyphRenderer}) if "value" in r.data_source.data]
    np.testing.assert_array_equal(source["value"], above_25.reindex(source["reach"]).to_numpy())
    assert "Days above 25 °C" in [plot.title.text for plot in root.select({"type": Plot})][0]

    view._year.value = None  # "all years": the tiny record has one year, so the same counts
    assert state.season_year is None and view._table.value["days > 25 °C"].to_dict() == above_25.to_dict()
    assert set(view._year.options) == {"all years", "2000"}


def test_csv_has_the_counts_and_what_they_count(warm_state: AppState) -> None:
    state = warm_state
    view = ManagementMap(state=state)
    state.param.update(season_months=[2, 3], season_year=2000)
    csv = pd.read_csv(view._table_csv(), index_col="reach")
    assert list(csv.columns) == ["parent_segment", "days_above_20", "days_above_25", "days_counted", "season_days",
                                 "months", "year"]
    assert (csv["season_days"] == 29 + 31).all() and (csv["months"] == "2,3").all() and (csv["year"] == 2000).all()
    assert csv["days_above_20"].to_dict() == view.counts()["days_above_20"].to_dict()
    assert view._csv.filename.endswith("_days_above_months_2-3_2000.csv") and not view._csv.disabled


def test_an_empty_season_or_a_year_outside_the_record_is_explained(warm_state: AppState) -> None:
    state = warm_state
    view = ManagementMap(state=state)
    assert state.season_months == [6, 7, 8]  # the default summer: not in the tiny Jan–Mar record
    assert "no day of the record falls in months 6, 7, 8" in view._summary.object
    assert not view._table.visible and view._csv.disabled
    state.param.update(season_months=[1], season_year=1999)
    assert "year 1999 is not in the record (2000–2000)" in view._summary.object
    state.season_year = 2000
    assert view._table.visible and not view._csv.disabled


def test_an_ensemble_run_maps_the_expected_days_above_from_its_members(resources: Resources, base_config: RunConfig,
                                                                       ensemble_runs) -> None:
    from msgl_core import list_runs

    state = AppState(resources, base_config, ensemble_runs)
    run = next(r for r in list_runs(ensemble_runs).runs if r.config.variant == "ot_diffusion")
    state.load(run.path)
    results = state.results
    warm = results.predictions.copy(deep=True)
    p20 = warm["p_exceed_20"]
    warm["p_exceed_20"] = p20.where(p20.isnull(), 0.5)  # every sampled day: P(T > 20 °C) = 0.5
    state.param.update(results=dataclasses.replace(results, predictions=warm), view="management",
                       season_months=[3], season_year=2000)
    view = ManagementMap(state=state)
    root = pn.panel(view).get_root(Document())
    counted = np.isfinite(warm["p_exceed_20"].sel({TIME: "2000-03"}).values).sum(axis=0)
    assert counted.max() > 0  # the test days of March were sampled
    counts = view.counts()
    assert list(counts.columns) == ["parent_segment", "days_above_20", "days_above_25", "expected_days_above_20",
                                    "expected_days_above_25", "days_counted", "season_days"]
    np.testing.assert_allclose(counts["expected_days_above_20"].to_numpy(), 0.5 * counted)
    (source,) = [r.data_source.data for r in root.select({"type": GlyphRenderer}) if "value" in r.data_source.data]
    np.testing.assert_allclose(source["value"], counts["expected_days_above_20"].reindex(source["reach"]).to_numpy())
    (title,) = [plot.title.text for plot in root.select({"type": Plot})]
    assert "Expected days above 20 °C in Mar 2000" in title and "expected" in view._summary.object
    assert "expected days > 20 °C (members)" in view._table.value.columns
