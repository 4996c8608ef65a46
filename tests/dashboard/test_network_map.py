"""The network map: one tooltip per thing under the cursor, names on hover, scale bar, locator, zoom to the domain,
and checkbox labels that toggle (the last two in a browser)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd
import panel as pn
import pytest
from bokeh.document import Document
from bokeh.models import GlyphRenderer, HoverTool, Model, Quad, Range1d, ScaleBar

from dashboard import browser as chromium
from dashboard.geometry import Bounds
from dashboard.resources import Resources
from dashboard.state import UPSTREAM, AppState
from dashboard.views import figures, maps
from dashboard.views.network_map import NetworkMap

PROBLEM = chromium.chromium_problem()


def _root(pane: pn.pane.HoloViews) -> Model:
    return pane.get_root(Document())


def _hovers(root: Model) -> list[HoverTool]:
    return list(root.select({"type": HoverTool}))


def _columns(renderer: GlyphRenderer) -> set[str]:
    return set(renderer.data_source.data)


@pytest.fixture
def view(resources: Resources, runs_dir: Any) -> NetworkMap:
    return NetworkMap(state=AppState(resources, None, runs_dir))


def test_each_kind_of_thing_has_one_hover_and_reaches_one_tooltip_each(view: NetworkMap) -> None:
    hovers = _hovers(_root(view._plot))
    hovered = [r for tool in hovers for r in tool.renderers]
    assert len(hovered) == len(set(map(id, hovered))), "a renderer under two hover tools shows two tooltips"
    reach = [t for t in hovers if any("length_km" in _columns(r) and "reach" in _columns(r) for r in t.renderers)]
    assert len(reach) == 1 and len(reach[0].renderers) == 1  # every reach piece in one layer
    assert list(reach[0].filters) == ["@reach"]  # one tooltip per reach, not per piece
    assert not [t for t in hovers if any("n_reaches" in _columns(r) for r in t.renderers)], \
        "segments have no hover while the reaches show"


def test_segments_hover_once_each_when_reaches_are_hidden(view: NetworkMap) -> None:
    view.state.show_reaches = False
    hovers = _hovers(_root(view._plot))
    segment = [t for t in hovers if any("n_reaches" in _columns(r) for r in t.renderers)]
    assert len(segment) == 1 and list(segment[0].filters) == ["@segment"]


def test_hover_names_reservoirs_and_dams(view: NetworkMap, resources: Resources) -> None:
    tips = " ".join(str(t.tooltips) for t in _hovers(_root(view._plot)))
    assert "reservoir <b>@{name}</b>" in tips and "dam <b>@{name}</b>" in tips
    assert "@{year}" in tips  # HoloViews turns a bare "@year" into "@{y}ear", the map's y coordinate
    assert [p["name"] for p in resources.reservoir_polygons()] == ["Tiny Lake"]


def test_a_reservoir_without_its_own_name_takes_its_dam_name(resources: Resources) -> None:
    reservoirs = resources.layers.reservoirs.assign(RES_NAME=[np.nan])
    unnamed = Resources(resources.data, dataclasses.replace(resources.layers, reservoirs=reservoirs))
    assert [p["name"] for p in unnamed.reservoir_polygons()] == ["Tiny Dam"]


def test_the_map_has_a_scale_bar_in_ground_distance(view: NetworkMap, resources: Resources) -> None:
    root = _root(view._plot)
    bars = list(root.select({"type": ScaleBar}))
    assert len(bars) == 1 and bars[0].unit == "m"
    ground, bounds = bars[0].range, resources.bounds
    assert isinstance(ground, Range1d)
    scale = maps.ground_scale((bounds.bottom + bounds.top) / 2)
    assert 0.7 < scale < 0.8  # the tiny basin lies at ~41° N
    assert ground.end - ground.start == pytest.approx((bounds.right - bounds.left) * scale)
    assert maps.ground_scale(0.0) == pytest.approx(1.0)


def _locator_boxes(root: Model) -> list[tuple[float, float, float, float]]:
    data = next(r.data_source.data for r in root.select({"type": GlyphRenderer}) if isinstance(r.glyph, Quad))
    return list(zip(data["left"], data["bottom"], data["right"], data["top"], strict=True))


def test_choosing_a_domain_zooms_the_map_and_boxes_it_in_the_locator(view: NetworkMap, resources: Resources) -> None:
    root, locator = _root(view._plot), _root(view._locator)
    whole = resources.bounds
    x_range = next(r for r in root.select({"type": Range1d}) if r.start == pytest.approx(whole.left))
    y_range = next(r for r in root.select({"type": Range1d}) if r.start == pytest.approx(whole.bottom))
    outlet = int(resources.segments.index[0])
    view.state.settings.param.update(domain=UPSTREAM, outlet=outlet)
    domain = resources.domain_bounds(str(outlet))
    assert x_range.start - 1 <= domain.left < domain.right <= x_range.end + 1  # m
    assert y_range.start - 1 <= domain.bottom < domain.top <= y_range.end + 1
    assert (x_range.end - x_range.start) * (y_range.end - y_range.start) < 0.9 * (whole.right - whole.left) * (
        whole.top - whole.bottom)  # zoomed in
    assert _locator_boxes(locator) == [pytest.approx((domain.left, domain.bottom, domain.right, domain.top))]


def test_fit_grows_bounds_to_an_aspect_about_their_centre() -> None:
    wide = Bounds(0, 0, 100, 10).fit(0.5)
    assert (wide.left, wide.right, wide.top - wide.bottom) == (0, 100, 50) and wide.center_y == 5
    tall = Bounds(0, 0, 10, 100).fit(0.5)
    assert (tall.bottom, tall.top, tall.right - tall.left) == (0, 100, 200)


# -- in a browser ---------------------------------------------------------------------------------------------------

JS_HOVER_ENTRIES = """
() => {
  let n = 0;
  for (const view of Bokeh.index.all_views())
    if (view.model.type === "HoverTool" && view._current_entries) n += view._current_entries.length;
  return n;
}
"""


@pytest.mark.parametrize("first_per_reach", [True, False])
@pytest.mark.browser
@pytest.mark.skipif(bool(PROBLEM), reason=f"no headless browser: {PROBLEM}")
def test_hover_lists_a_line_of_many_pieces_once(browser: Any, first_per_reach: bool) -> None:
    # Reach "a" is three pieces meeting near the cursor, reach "b" one piece through the same point.
    pieces = pd.DataFrame({"x0": [0, 10, 10, 0], "y0": [0, 10, 10, 20], "x1": [10, 10, 20, 20], "y1": [10, 10, 0, 0],
                           "reach": ["a", "a", "a", "b"]})
    fig = figures.map_figure(Bounds(-5, -5, 25, 25), 300, 300)
    line = figures.line_layer(fig, figures.data_source(pieces))
    figures.add_hover(fig, [line], "@{reach}", one_per="reach" if first_per_reach else None)
    port = chromium.free_port()
    server = pn.serve({"/": lambda: pn.pane.Bokeh(fig)}, port=port, address="127.0.0.1", show=False,
                      threaded=True, websocket_origin=[f"127.0.0.1:{port}"])
    try:
        page = chromium.new_page(browser)
        page.goto(f"http://127.0.0.1:{port}/")
        chromium.wait_for_plot(page, "reach", 4)
        page.mouse.move(*chromium.screen_point(page, "reach", 10, 10))
        page.wait_for_function(f"() => ({JS_HOVER_ENTRIES})() > 0")
        assert page.evaluate(JS_HOVER_ENTRIES) == (2 if first_per_reach else 4)
        page.context.close()
    finally:
        server.stop()


@pytest.mark.browser
@pytest.mark.skipif(bool(PROBLEM), reason=f"no headless browser: {PROBLEM}")
def test_clicking_a_layer_label_toggles_the_layer(browser: Any, url: str) -> None:
    page = chromium.new_page(browser)
    page.goto(url)
    chromium.wait_for_plot(page, "n_obs_days", 1)
    assert chromium.digest(page, ["reach", "length_km"])[0] == 10  # the fine reaches drawn
    page.get_by_text("fine reaches", exact=True).click()
    page.wait_for_function(f"() => ({chromium.JS_DIGEST})(['reach', 'length_km'])[0] === 0")
    page.get_by_text("fine reaches", exact=True).click()
    page.wait_for_function(f"() => ({chromium.JS_DIGEST})(['reach', 'length_km'])[0] === 10")
    page.context.close()

