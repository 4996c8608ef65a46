"""Drive the served dashboard in headless Chromium (for the end-to-end test and the speed benchmark).

Uses Debian's ``chromium`` through Playwright's ``executable_path`` (never ``playwright install``)
and blocks every request that does not go to the loopback server, so tile basemaps stay blank and
nothing leaves the machine. Requires the ``playwright`` Python package (a development dependency).
"""

from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path
from typing import Any

#: Debian's chromium; override with $MSGL_CHROMIUM.
CHROMIUM = os.environ.get("MSGL_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
VIEWPORT = {"width": 1500, "height": 1100}
LOCAL = ("http://127.0.0.1", "http://localhost", "ws://127.0.0.1", "ws://localhost", "data:", "blob:")


def chromium_problem() -> str:
    """Why the browser cannot run here ("" when it can)."""
    if not Path(CHROMIUM).exists() and shutil.which(CHROMIUM) is None:
        return f"{CHROMIUM} not found (apt-get install chromium, or set $MSGL_CHROMIUM)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright Python package is not installed (pip install playwright; no browser download)"
    return ""


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def launch(playwright: Any) -> Any:
    """Headless Debian Chromium (a Playwright ``Browser``)."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def _route_local(route: Any) -> None:
    if route.request.url.startswith(LOCAL):
        route.continue_()
    else:
        route.abort()


def new_page(browser: Any) -> Any:
    """A page in a fresh context (own cookies: its own dashboard session) that only reaches the loopback server."""
    context = browser.new_context(viewport=VIEWPORT)
    context.route("**/*", _route_local)
    return context.new_page()


# JavaScript run in the page. Bokeh 3 keeps every view in ``Bokeh.index``.
_FIND_PLOT = """
(column) => {
  for (const view of Bokeh.index.all_views()) {
    const model = view.model;
    if (!model || !model.renderers || !view.frame) continue;
    for (const renderer of model.renderers) {
      const source = renderer.data_source;
      if (source && source.data && Object.prototype.hasOwnProperty.call(source.data, column)) return view;
    }
  }
  return null;
}
"""

JS_SOURCE_ROWS = """
(column) => {
  if (!window.Bokeh || !Bokeh.index) return -1;
  let rows = -1;
  for (const view of Bokeh.index.all_views()) {
    const model = view.model;
    if (!model || !model.renderers || !view.frame || !view.has_finished()) continue;
    for (const renderer of model.renderers) {
      if (!renderer.visible) continue;
      const data = renderer.data_source && renderer.data_source.data;
      if (data && Object.prototype.hasOwnProperty.call(data, column)) rows = Math.max(rows, data[column].length);
    }
  }
  return rows;
}
"""

JS_COLUMN = f"""
(column) => {{
  const find = {_FIND_PLOT};
  const view = find(column);
  if (!view) return null;
  for (const renderer of view.model.renderers) {{
    const data = renderer.data_source && renderer.data_source.data;
    if (data && Object.prototype.hasOwnProperty.call(data, column)) return Array.from(data[column]).slice(0, 50);
  }}
  return null;
}}
"""

JS_SCREEN_POINT = f"""
([column, x, y]) => {{
  const find = {_FIND_PLOT};
  const view = find(column);
  if (!view) return null;
  const canvas = view.canvas_view || view.canvas;
  const box = canvas.el.getBoundingClientRect();
  return {{x: box.left + view.frame.x_scale.compute(x), y: box.top + view.frame.y_scale.compute(y)}};
}}
"""


JS_DIGEST = """
(columns) => {
  if (!window.Bokeh || !Bokeh.index) return null;
  let rows = 0, total = 0;
  for (const view of Bokeh.index.all_views()) {
    const model = view.model;
    if (!model || !model.renderers || !view.frame || !view.has_finished()) continue;
    for (const renderer of model.renderers) {
      if (!renderer.visible) continue;
      const data = renderer.data_source && renderer.data_source.data;
      if (!data || !columns.every((c) => Object.prototype.hasOwnProperty.call(data, c))) continue;
      const values = data[columns[0]];
      rows += values.length;
      for (let k = 0; k < values.length; k++) { const v = Number(values[k]); if (Number.isFinite(v)) total += v; }
    }
  }
  return [rows, total];
}
"""


def digest(page: Any, columns: list[str]) -> tuple[int, float] | None:
    """(rows, sum of the first column) over drawn plots' data sources having all ``columns``."""
    value = page.evaluate(JS_DIGEST, columns)
    return None if value is None else (int(value[0]), float(value[1]))


def source_rows(page: Any, column: str) -> int:
    """Most rows of a data source holding ``column`` in a fully drawn plot (-1 while there is none)."""
    return int(page.evaluate(JS_SOURCE_ROWS, column))


def wait_for_plot(page: Any, column: str, min_rows: int = 1, timeout_ms: float = 30_000) -> None:
    """Wait until a drawn plot shows a data source with ``column`` and at least ``min_rows`` rows."""
    page.wait_for_function(f"([c, n]) => ({JS_SOURCE_ROWS})(c) >= n", arg=[column, min_rows], timeout=timeout_ms)


def column_values(page: Any, column: str) -> list | None:
    """The first 50 values of ``column`` in the page's plot data (None if no plot has it)."""
    return page.evaluate(JS_COLUMN, column)


def screen_point(page: Any, column: str, x: float, y: float) -> tuple[float, float]:
    """Page pixel position of map point (x, y) (Web Mercator, m) in the plot whose data has ``column``."""
    point = page.evaluate(JS_SCREEN_POINT, [column, x, y])
    if point is None:
        raise LookupError(f"no plot with a data column {column!r} on the page")
    return float(point["x"]), float(point["y"])
