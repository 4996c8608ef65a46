"""The whole DRB: basin outline, coarse NHM segments, ~3,200 fine reaches, reservoirs, dams and sites."""

from __future__ import annotations

import numpy as np
import panel as pn
import param
from bokeh.models import ColumnDataSource
from bokeh.transform import factor_cmap
from panel.viewable import Viewer

from dashboard.geometry import PIECE_COLUMNS
from dashboard.state import UPSTREAM, AppState
from dashboard.views import figures, maps
from msgl_core import PARENT_SEGMENT

LEGEND = """<div style="font-size:0.9em;line-height:1.7">
<b>Legend</b><br>
<span style="display:inline-block;width:28px;height:3px;background:#08519c;vertical-align:middle"></span> fine reach with observations<br>
<span style="display:inline-block;width:28px;height:3px;background:#6baed6;vertical-align:middle"></span> fine reach without observations<br>
<span style="display:inline-block;width:28px;height:6px;background:#1f4e79;opacity:0.35;vertical-align:middle"></span> coarse NHM segment (hover when fine reaches are off)<br>
<span style="display:inline-block;width:28px;height:7px;background:#ff7f0e;opacity:0.6;vertical-align:middle"></span> chosen training domain<br>
<span style="color:#111111">&#9679;</span> observation site (grey: no temperature days) &nbsp;
<span style="color:#b30000">&#9650;</span> dam &nbsp; <span style="color:#7fb8e6">&#9632;</span> reservoir<br>
Hover shows ids, names, length, parent segment and observed days; the wheel zooms. The map zooms to the
chosen domain (orange box in the small map below); the bar at the bottom right is ground distance.
</div>"""
WIDTH, MAX_HEIGHT = 560, 900


#: Colours of fine reaches with and without observations.
REACH_COLORS = {"observed": "#08519c", "no observations": "#6baed6"}
#: Colours of observation sites with and without temperature days.
SITE_COLORS = {"with temperature days": "#111111", "no temperature days": "#9a9a9a"}
LOCATOR_SIZE = 150


def checkbox(state: param.Parameterized, name: str, label: str, disabled: bool = False) -> pn.widgets.CheckBoxGroup:
    """A checkbox for boolean parameter ``name`` of ``state`` whose label text toggles it too.

    A one-option ``CheckBoxGroup``: Bokeh's ``Checkbox`` draws its label beside the input, where a
    click does nothing; the group wraps input and text in one ``<label>``.
    """
    box = pn.widgets.CheckBoxGroup(options=[label], value=[label] if getattr(state, name) else [], disabled=disabled,
                                   margin=(2, 10))
    box.param.watch(lambda event: setattr(state, name, bool(event.new)), "value")
    state.param.watch(lambda event: setattr(box, "value", list(box.options) if event.new else []), name)
    return box


class NetworkMap(Viewer):
    """Map of the network with hover (ids, length, parent segment, observed days, names); a click picks the
    outlet of the domain, and the map zooms to the chosen domain (a locator inset shows where it lies).

    The Bokeh figure is built once per session (:mod:`dashboard.views.figures`); the layer toggles, the chosen
    domain and the basemap only change what it shows.
    """

    state = param.ClassSelector(class_=AppState, doc="Session state shared by all views.")

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        r = self.state.resources
        fig = figures.map_figure(r.bounds, WIDTH, MAX_HEIGHT, "Delaware River Basin", scale_bar=True)
        figures.add_outline(fig, r)
        self._domain_source = figures.data_source()
        figures.line_layer(fig, self._domain_source, line_color="#ff7f0e", line_width=7, line_alpha=0.55)
        self._coarse = figures.line_layer(fig, figures.data_source(r.segment_pieces), line_color="#1f4e79")
        polygons = r.reservoir_polygons()
        self._reservoirs = fig.patches("x", "y", source=ColumnDataSource({
            "x": [p["x"] for p in polygons], "y": [p["y"] for p in polygons], "name": [p["name"] for p in polygons],
            "area_km2": [p["area_km2"] for p in polygons]}), fill_color="#7fb8e6", line_color="#2b6ea8", line_width=0.8)
        self._dams = fig.scatter("x", "y", source=figures.data_source(r.dam_points()), marker="triangle", size=9,
                                 color="#b30000")
        self._reaches = figures.line_layer(fig, figures.data_source(r.reach_pieces), line_width=1.7, line_color=
                                           factor_cmap("observed", list(REACH_COLORS.values()), list(REACH_COLORS)))
        sites = r.site_points()
        sites = sites.assign(status=np.where(sites["n_obs_days"] > 0, *SITE_COLORS),
                             marker_size=np.where(sites["n_obs_days"] > 0, 4.0, 2.5))
        self._sites = fig.scatter("x", "y", source=figures.data_source(sites), size="marker_size", fill_alpha=0.8,
                                  line_alpha=0, color=factor_cmap("status", list(SITE_COLORS.values()), list(SITE_COLORS)))
        # One hover per kind of thing, each with one tooltip per thing: a reach is drawn as many pieces.
        figures.add_hover(fig, [self._reaches], maps.one_line(
            f"reach <b>@{{reach}}</b> · segment @{{{PARENT_SEGMENT}}} · @{{length_km}}{{0.00}} km · "
            "@{n_obs_days} observed days"), one_per="reach")
        self._segment_hover = figures.add_hover(fig, [], maps.one_line(
            "segment <b>@{segment}</b> · @{length_km}{0.0} km · @{n_reaches} fine reaches · "
            "@{area_km2}{0,0} km² drained · @{n_obs_days} observed reach-days"), one_per="segment")
        figures.add_hover(fig, [self._sites], maps.one_line(
            "site <b>@{site_id}</b> · reach @{reach} · @{n_obs_days} observed days"))
        figures.add_hover(fig, [self._reservoirs], maps.one_line("reservoir <b>@{name}</b> · @{area_km2}{0.0} km²"))
        figures.add_hover(fig, [self._dams], maps.one_line("dam <b>@{name}</b> · @{river} · built @{year}"))
        figures.on_tap(fig, self._on_tap)
        self._figure = fig
        self._plot = pn.pane.Bokeh(fig)
        self._zoomed_basin = self._basin()  # the page opens on the whole DRB; later choices zoom
        self._locator_box = ColumnDataSource({"left": [], "bottom": [], "right": [], "top": []})
        locator = figures.map_figure(r.bounds, LOCATOR_SIZE, int(LOCATOR_SIZE * 1.6), toolbar=False)
        locator.min_border = 0
        figures.add_outline(locator, r, width=1)
        locator.quad(left="left", bottom="bottom", right="right", top="top", source=self._locator_box,
                     fill_color="#ff7f0e", fill_alpha=0.25, line_color="#d95f02", line_width=1.5)
        self._locator = pn.pane.Bokeh(locator)
        self._info = pn.pane.Markdown(sizing_mode="stretch_width")
        self._basemap = checkbox(self.state, "basemap", "tile basemap", disabled=True)
        self._toggles = pn.Column(self._basemap, checkbox(self.state, "show_reaches", "fine reaches"),
                                  checkbox(self.state, "show_sites", "observation sites, reservoirs, dams"))
        self.state.param.watch(self._layers, ["basemap", "show_reaches", "show_sites"])
        self.state.param.watch(self._tiles_checked, "tiles_online")
        self.state.param.watch(self._describe, ["check", "clicked_segment"])
        self.state.param.watch(self._domain_changed, "check")
        self._layers()
        self._domain_changed()
        self._describe()
        self._tiles_checked()

    def _basin(self) -> str | None:
        config = self.state.check.config
        return None if config is None else config.basin

    def _layers(self, *events: object) -> None:
        """Show the layers the toggles ask for; the coarse segments carry the hover while the reaches are hidden."""
        s = self.state
        with figures.hold(self._figure):
            figures.show_tiles(self._figure, s.basemap)
            self._reaches.visible = s.show_reaches
            self._coarse.glyph.update(line_width=6 if s.show_reaches else 3.5,
                                      line_alpha=0.18 if s.show_reaches else 0.9)
            self._segment_hover.renderers = [] if s.show_reaches else [self._coarse]
            for layer in (self._reservoirs, self._dams, self._sites):
                layer.visible = s.show_sites

    def _domain_changed(self, *events: object) -> None:
        """Draw the chosen domain in orange, box it in the locator and, when it changed, zoom the map to it."""
        basin, r = self._basin(), self.state.resources
        pieces = r.segment_pieces
        chosen = pieces.iloc[:0] if basin is None else pieces[pieces["segment"].isin(r.domain_segments(basin))]
        with figures.hold(self._figure):
            self._domain_source.data = {c: chosen[c].to_numpy() for c in PIECE_COLUMNS}
            box = [] if basin is None else [r.domain_bounds(basin)]
            self._locator_box.data = {side: [getattr(b, side) for b in box] for side in ("left", "bottom", "right", "top")}
            if basin is not None and basin != self._zoomed_basin:
                self._zoomed_basin = basin
                aspect = (self._figure.frame_height or 1) / (self._figure.frame_width or 1)
                view = r.domain_bounds(basin).fit(aspect)
                self._figure.x_range.update(start=view.left, end=view.right)
                self._figure.y_range.update(start=view.bottom, end=view.top)

    def _tiles_checked(self, *events: object) -> None:
        online = self.state.tiles_online
        label = {None: "tile basemap (checking…)", True: "tile basemap", False: "tile basemap (offline: unavailable)"}
        self._basemap.param.update(options=[label[online]], value=[label[online]] if self.state.basemap else [],
                                   disabled=not online)

    def _on_tap(self, x: float | None, y: float | None) -> None:
        segment = self.state.pick_segment(x, y)
        if segment is None and x is not None:
            self.state.say("No segment near the click; click on a river line.", "info")

    def _describe(self, *events: object) -> None:
        s, r, check = self.state, self.state.resources, self.state.check
        lines = [f"**{len(r.segments):,} NHM segments · {len(r.reaches):,} fine reaches** "
                 f"({int((r.reaches['n_obs_days'] > 0).sum()):,} with observations)"]
        if r.layers is not None:
            lines.append(f"{len(r.layers.sites):,} observation sites · {len(r.layers.dams)} dams · "
                         f"{len(r.layers.reservoirs)} reservoirs")
        else:
            lines.append(f"*{r.layers_note}*")
        if s.settings.domain == UPSTREAM and s.settings.outlet is not None:
            lines.append(f"Domain: everything upstream of segment **{s.settings.outlet}** "
                         f"({check.n_segments} segments, {check.n_reaches} reaches), in orange.")
        elif check.config is not None:
            lines.append(f"Domain: **{check.config.basin}** ({check.n_segments} segments, {check.n_reaches} reaches), "
                         "in orange. Click a segment to use everything upstream of it instead.")
        self._info.object = "  \n".join(lines)

    def __panel__(self) -> pn.viewable.Viewable:
        side = pn.Column(self._toggles, self._info, pn.pane.HTML(LEGEND), self._locator, width=420)
        # A FlexBox, so that on a narrow screen (a 1024-px tablet) the legend wraps below the map instead of
        # being cut off.
        return pn.FlexBox(self._plot, side, flex_wrap="wrap", name="Network", sizing_mode="stretch_width")
