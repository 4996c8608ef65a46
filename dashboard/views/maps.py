"""What every map shares (colours, titles, hover, scale bar) and the HoloViews building blocks of the maps
drawn once per tab visit (not a view itself).

Those maps are overlays of plain HoloViews elements in Web Mercator metres: an optional tile basemap, the
basin outline and ``hv.Segments`` for the river lines (see :mod:`dashboard.geometry`). The maps that change
with every click are Bokeh figures updated in place (:mod:`dashboard.views.figures`). Without network
access the tiles stay blank and everything else still draws.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
from bokeh.models import CustomJS, MetricLength, Plot, Range1d, ScaleBar

from dashboard.geometry import PIECE_COLUMNS, Bounds
from dashboard.resources import Resources
from msgl_core import Run

#: Colour of lines without a value (no prediction, no metric).
NAN_COLOR = "#b5b5b5"
#: Colour maps: water temperature (cividis: readable with colour-vision deficiency, unlike turbo), signed
#: differences (°C), unsigned errors (°C).
TEMPERATURE_CMAP = "cividis"
DIFFERENCE_CMAP = "RdBu_r"
ERROR_CMAP = "YlOrRd"
#: Half-range of the difference colour scale, °C.
DIFFERENCE_LIMIT = 5.0
TOOLS = ["pan", "wheel_zoom", "reset", "save"]
#: The tile basemap (CARTO light), Web Mercator.
TILE_URL = "https://cartodb-basemaps-4.global.ssl.fastly.net/light_all/{Z}/{X}/{Y}.png"


def run_title(run: Run, what: str, day: object = None) -> str:
    """A map title saying what, where and when: ``what · variant on basin · ρ 1 % · seed 1[ · Tue 12 Jul 2011]``."""
    cfg = run.config
    when = f" · {pd.Timestamp(day):%a %d %b %Y}" if day is not None else ""
    return f"{what} · {cfg.variant} on {cfg.basin} · ρ {cfg.sparsity * 100:g} % · seed {cfg.seed}{when}"


def wrap_title(title: str, width: int) -> str:
    """``title`` with line breaks at its `` · `` separators so that no line passes ``width`` px (~8 px a bold character)."""
    lines: list[str] = []
    for part in title.split(" · "):
        if lines and len(lines[-1]) + 3 + len(part) <= width // 8:
            lines[-1] += f" · {part}"
        else:
            lines.append(part)
    return "\n".join(lines)


def box(pane: pn.viewable.Viewable, visible: bool = True, **params: object) -> pn.Column:
    """``pane`` in a column whose visibility is toggled instead of the pane's own.

    Toggling ``visible`` of a rendered ``pn.pane.HoloViews`` inside a template fails in Panel 1.9
    (``TypeError: List parameter 'Bokeh.stylesheets' items must be instances of str``); toggling a
    column around it works.
    """
    return pn.Column(pane, visible=visible, margin=0, **params)


def one_line(template: str) -> str:
    """A compact HTML hover tooltip (Bokeh ``@column{format}`` fields), one line per hit."""
    return f'<div style="white-space:nowrap;font-size:11px">{template}</div>'


def map_options(bounds: Bounds, width: int, max_height: int, title: str = "") -> dict:
    """Options of a map's outermost overlay: no axes, equal x/y scale, wheel zoom active."""
    frame_width, frame_height = bounds.frame_size(width, max_height)
    return {"xaxis": None, "yaxis": None, "xlim": bounds.xlim, "ylim": bounds.ylim, "frame_width": frame_width,
            "frame_height": frame_height, "active_tools": ["wheel_zoom"], "toolbar": "above",
            "default_tools": [], "tools": TOOLS, "title": title, "show_grid": False, "bgcolor": "#f7f7f5",
            "backend_opts": {"plot.output_backend": "webgl"}}


def basemap(resources: Resources, tiles: bool) -> hv.Overlay:
    """Tiles (when ``tiles``) and the basin outline; an empty outline when the bundle has none."""
    outline = hv.Path(resources.boundary_paths(), kdims=["x", "y"], label="DRB outline").opts(
        color="#444444", line_width=1.5, tools=[])
    layers = [outline]
    if tiles:
        layers.insert(0, hv.Tiles(TILE_URL, name="CARTO light").opts(alpha=0.9))
    return hv.Overlay(layers)


def segments(pieces: pd.DataFrame, vdims: list[str], label: str = "") -> hv.Segments:
    """``hv.Segments`` of line pieces (x0, y0, x1, y1 in m) with value columns ``vdims``."""
    return hv.Segments(pieces, kdims=PIECE_COLUMNS, vdims=vdims, label=label)


def points(frame: pd.DataFrame, vdims: list[str], label: str = "") -> hv.Points:
    """``hv.Points`` at ``x``, ``y`` (m) with value columns ``vdims``."""
    return hv.Points(frame, kdims=["x", "y"], vdims=vdims, label=label)


def grey_lines(pieces: pd.DataFrame, width: float = 1.0, label: str = "") -> hv.Segments:
    """Context lines without hover."""
    return segments(pieces[PIECE_COLUMNS], [], label).opts(color=NAN_COLOR, line_width=width, tools=[])


def symmetric_limit(values: np.ndarray, floor: float = 0.5) -> float:
    """Half-range of a diverging colour scale: the 95th percentile of |values|, at least ``floor``, rounded up to 0.5."""
    finite = np.abs(values[np.isfinite(values)])
    top = float(np.percentile(finite, 95)) if finite.size else floor
    return float(np.ceil(max(top, floor) * 2) / 2)


def error_limits(metric: str, values: np.ndarray) -> tuple[tuple[float, float], str]:
    """Colour limits and colour map for a per-reach ``metric`` (°C): diverging for bias, sequential otherwise."""
    if metric == "bias":
        limit = symmetric_limit(values)
        return (-limit, limit), DIFFERENCE_CMAP
    finite = values[np.isfinite(values)]
    top = float(np.percentile(finite, 95)) if finite.size else 1.0
    return (0.0, float(np.ceil(max(top, 0.5) * 2) / 2)), ERROR_CMAP


#: Web Mercator's sphere radius, m.
MERCATOR_RADIUS_M = 6378137.0
#: Hover filter keeping one tooltip per value of a column: of the hit rows sharing a value, only the first.
_FIRST_PER_VALUE = """
export default (args, tool, {value, data_source, vars}) => {
  const column = data_source.data[args.column]
  for (const i of vars.indices) {
    if (i < vars.index && column[i] === value) return false
  }
  return true
}
"""


def ground_scale(y: float) -> float:
    """Ground metres per Web Mercator metre at northing ``y`` (m): the cosine of its latitude."""
    return float(np.cos(np.arctan(np.sinh(y / MERCATOR_RADIUS_M))))


def first_per_value(column: str) -> CustomJS:
    """A hover filter that keeps one tooltip per value of ``column``: of the hit rows sharing a value, the first.

    A line drawn as many pieces is otherwise listed once per piece near the cursor. Use as
    ``HoverTool(filters={f"@{column}": first_per_value(column)})``.
    """
    return CustomJS(args={"column": column}, code=_FIRST_PER_VALUE)


def scale_bar(figure: Plot) -> None:
    """A scale bar of ground distance (m, km; true at the map's centre latitude) in the lower right of ``figure``.

    Maps are in Web Mercator metres, which stretch ground distance by 1 / cos(latitude) (~1.33 in the
    DRB), so the bar measures a range that follows the map's x range scaled to the ground. Added once
    per figure, whose ranges must be set.
    """
    if any(isinstance(item, ScaleBar) for item in figure.center):
        return
    x_range, y_range = figure.x_range, figure.y_range
    scale = ground_scale(float((y_range.start + y_range.end) / 2))
    ground = Range1d(start=(x_range.start or 0.0) * scale, end=(x_range.end or 1.0) * scale)
    follow = CustomJS(args={"ground": ground, "scale": scale},
                      code="ground.setv({start: cb_obj.start * scale, end: cb_obj.end * scale})")
    x_range.js_on_change("start", follow)
    x_range.js_on_change("end", follow)
    figure.add_layout(ScaleBar(range=ground, unit="m", dimensional=MetricLength(), location="bottom_right",
                               bar_length=0.2, background_fill_alpha=0.6, border_line_color=None,
                               label_text_font_size="11px"))
