"""Bokeh map figures that a session builds once and then updates in place.

The network map, the day map and the reach panel change with every click (a domain, a day, a reach).
Rebuilding them through HoloViews cost 0.2–1 s of server time per change and per page. Here the Bokeh
models (figure, data sources, colour mappers, hover tools) are made once per session, and a change
replaces only what changed: a new day sends one column of values to the browser. The other maps (errors,
days above, compare, cross-validation) are drawn once per visit of their tab and stay HoloViews
overlays (:mod:`dashboard.views.maps`); both draw the same colours, outline, tiles and scale bar.

Every map coordinate is Web Mercator metres (:mod:`dashboard.geometry`).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack, contextmanager

import numpy as np
import panel as pn
from bokeh.events import Tap
from bokeh.models import (
    ColorBar,
    ColumnDataSource,
    GlyphRenderer,
    HoverTool,
    LinearColorMapper,
    Range1d,
    TileRenderer,
    WMTSTileSource,
)
from bokeh.plotting import figure
from holoviews.plotting.util import process_cmap

from dashboard.geometry import PIECE_COLUMNS, Bounds
from dashboard.resources import Resources
from dashboard.views import maps

#: Background of every map (the colour of the HoloViews maps too).
BACKGROUND = "#f7f7f5"
#: Colours in a colour map.
PALETTE_SIZE = 256


@functools.cache
def palette(cmap: str) -> tuple[str, ...]:
    """The :data:`PALETTE_SIZE` colours of colour map ``cmap`` (a Matplotlib/colorcet name such as ``cividis``,
    ``RdBu_r``), exactly as HoloViews draws it, so both kinds of maps agree (looked up once per process)."""
    return tuple(process_cmap(cmap, PALETTE_SIZE))


def map_figure(bounds: Bounds, width: int, max_height: int, title: str = "", scale_bar: bool = False,
               toolbar: bool = True) -> figure:
    """An empty map of ``bounds`` at equal x/y scale: no axes or grid, wheel zoom active (the toolbar: pan, wheel
    zoom, reset, save; none when not ``toolbar``), drawn on a 2D canvas (WebGL's copy of every repaint is slow
    without a GPU), and (with ``scale_bar``) a ground-distance
    scale bar (:func:`dashboard.views.maps.scale_bar`).

    ``width``/``max_height`` bound the frame in pixels (:meth:`Bounds.frame_size`).
    """
    frame_width, frame_height = bounds.frame_size(width, max_height)
    fig = figure(x_range=Range1d(*bounds.xlim), y_range=Range1d(*bounds.ylim), frame_width=frame_width,
                 frame_height=frame_height, x_axis_type=None, y_axis_type=None, title=title,
                 tools=maps.TOOLS if toolbar else [], toolbar_location="above" if toolbar else None,
                 active_scroll="wheel_zoom" if toolbar else None, background_fill_color=BACKGROUND,
                 output_backend="canvas", min_border=5)
    fig.grid.visible = False
    fig.toolbar.logo = None
    if scale_bar:
        maps.scale_bar(fig)
    return fig


def set_extent(fig: figure, bounds: Bounds, width: int, max_height: int) -> None:
    """Show ``bounds`` in ``fig`` (ranges and frame size, as :func:`map_figure` would make them)."""
    frame_width, frame_height = bounds.frame_size(width, max_height)
    fig.update(frame_width=frame_width, frame_height=frame_height)
    fig.x_range.update(start=bounds.left, end=bounds.right)
    fig.y_range.update(start=bounds.bottom, end=bounds.top)


def add_outline(fig: figure, resources: Resources, width: float = 1.5) -> GlyphRenderer:
    """The basin outline (nothing when the bundle has none)."""
    rings = resources.boundary_paths()
    source = ColumnDataSource({"xs": [ring[:, 0] for ring in rings], "ys": [ring[:, 1] for ring in rings]})
    return fig.multi_line("xs", "ys", source=source, line_color="#444444", line_width=width)


def show_tiles(fig: figure, on: bool) -> None:
    """Show or hide the tile basemap (:data:`dashboard.views.maps.TILE_URL`) under everything else of ``fig``.

    The tile renderer is added on first use only: offline, a tile renderer that exists keeps retrying
    (:mod:`dashboard.views.tile_probe`).
    """
    tiles = [r for r in fig.renderers if isinstance(r, TileRenderer)]
    if on and not tiles:
        fig.renderers.insert(0, TileRenderer(tile_source=WMTSTileSource(url=maps.TILE_URL), alpha=0.9))
    for renderer in tiles:
        renderer.visible = on


def data_source(columns: Mapping[str, object] | None = None) -> ColumnDataSource:
    """A data source of ``columns``' arrays: a DataFrame's columns (not its index) or a dict, e.g. line pieces
    (``x0, y0, x1, y1`` m and value columns); None gives empty line pieces, filled later."""
    if columns is None:
        columns = {name: np.array([], dtype=float) for name in PIECE_COLUMNS}
    return ColumnDataSource({name: np.asarray(values) for name, values in columns.items()})


def line_layer(fig: figure, source: ColumnDataSource, **glyph: object) -> GlyphRenderer:
    """``source``'s pieces as straight line segments (``glyph``: Bokeh line properties such as ``line_color``)."""
    x0, y0, x1, y1 = PIECE_COLUMNS
    return fig.segment(x0=x0, y0=y0, x1=x1, y1=y1, source=source, **glyph)


def add_hover(fig: figure, renderers: list[GlyphRenderer], tooltips: str | list[tuple[str, str]],
              one_per: str | None = None) -> HoverTool:
    """A hover tool for ``renderers`` showing ``tooltips``; with ``one_per``, one tooltip per value of that column
    under the cursor (a line drawn as many pieces is otherwise listed once per piece)."""
    hover = HoverTool(renderers=renderers, tooltips=tooltips)
    if one_per is not None:
        hover.filters = {f"@{one_per}": maps.first_per_value(one_per)}
    fig.add_tools(hover)
    return hover


def color_mapper(cmap: str, clim: tuple[float, float], clip_low: str | None = None,
                 clip_high: str | None = None) -> LinearColorMapper:
    """A linear colour mapper over ``clim`` with missing values in :data:`dashboard.views.maps.NAN_COLOR` and, if
    given, values below/above ``clim`` in ``clip_low``/``clip_high``."""
    return LinearColorMapper(palette=list(palette(cmap)), low=clim[0], high=clim[1], nan_color=maps.NAN_COLOR,
                             low_color=clip_low, high_color=clip_high)


def add_color_bar(fig: figure, mapper: LinearColorMapper, title: str) -> ColorBar:
    """A colour bar of ``mapper`` right of the map, titled ``title`` (with units)."""
    bar = ColorBar(color_mapper=mapper, title=title, width=12, title_text_font_size="11px",
                   major_label_text_font_size="11px")
    fig.add_layout(bar, "right")
    return bar


def on_tap(fig: figure, callback: Callable[[float | None, float | None], None]) -> None:
    """Call ``callback(x, y)`` (m) with the map point of every click on ``fig``."""
    fig.on_event(Tap, lambda event: callback(event.x, event.y))


@contextmanager
def hold(*models: object) -> Iterator[None]:
    """Send the changes made inside the block to the browser together, once, when the models are in a served
    document (a half-changed plot is never drawn); elsewhere (tests) a no-op. Panel's ``hold`` does the
    sending, which is safe inside and outside a session's document lock."""
    documents = {id(d): d for d in (getattr(m, "document", None) for m in models) if d is not None}
    with ExitStack() as stack:
        for document in documents.values():
            stack.enter_context(pn.io.hold(document))
        yield
