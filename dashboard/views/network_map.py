"""The whole DRB: basin outline, coarse NHM segments, ~3,200 fine reaches, reservoirs, dams and sites."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import panel as pn
import param

from dashboard.state import UPSTREAM
from dashboard.views import maps
from dashboard.views.tab_view import TabView
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


class NetworkMap(TabView):
    """Map of the network with hover (ids, length, parent segment, observed days, names); a click picks the
    outlet of the domain, and the map zooms to the chosen domain (a locator inset shows where it lies)."""

    tab = "network"

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        r = self.state.resources
        # One layer per kind of thing, each with one tooltip per thing: a reach is drawn as many pieces.
        self._reaches = maps.segments(r.reach_pieces, ["reach", PARENT_SEGMENT, "length_km", "n_obs_days", "observed"],
                                      "fine reaches").opts(
            color="observed", cmap=REACH_COLORS, line_width=1.7, tools=["hover"], hooks=[maps.one_tooltip_per("reach")],
            hover_tooltips=maps.one_line(f"reach <b>@reach</b> · segment @{PARENT_SEGMENT} · @length_km{{0.00}} km · "
                                         "@n_obs_days observed days"))
        self._coarse = maps.segments(r.segment_pieces, ["segment", "length_km", "n_reaches", "area_km2", "n_obs_days"],
                                     "NHM segments")
        sites = r.site_points()
        sites = sites.assign(status=np.where(sites["n_obs_days"] > 0, *SITE_COLORS),
                             marker_size=np.where(sites["n_obs_days"] > 0, 4.0, 2.5))
        self._sites = maps.points(sites, ["site_id", "reach", "segment", "n_obs_days", "status", "marker_size"],
                                  "observation sites").opts(
            color="status", cmap=SITE_COLORS, size="marker_size", fill_alpha=0.8, line_alpha=0, tools=["hover"],
            hover_tooltips=maps.one_line("site <b>@site_id</b> · reach @reach · @n_obs_days observed days"))
        self._reservoirs = hv.Polygons(r.reservoir_polygons(), kdims=["x", "y"], vdims=["name", "area_km2"],
                                       label="reservoirs").opts(
            color="#7fb8e6", line_color="#2b6ea8", line_width=0.8, tools=["hover"],
            hover_tooltips=maps.one_line("reservoir <b>@name</b> · @area_km2{0.0} km²"))
        self._dams = maps.points(r.dam_points(), ["name", "river", "year"], "dams").opts(
            marker="triangle", size=9, color="#b30000", tools=["hover"],
            hover_tooltips=maps.one_line("dam <b>@name</b> · @river · built @{year}"))
        self._zoomed_basin = self._basin()
        self._view = r.bounds
        self._plot = pn.pane.HoloViews(linked_axes=False)
        self._locator = pn.pane.HoloViews(hv.DynamicMap(self._locator_map, streams=[hv.streams.Params(
            self.state, ["check"])]), linked_axes=False)
        self._info = pn.pane.Markdown(sizing_mode="stretch_width")
        self._basemap = checkbox(self.state, "basemap", "tile basemap", disabled=True)
        self._toggles = pn.Column(self._basemap, checkbox(self.state, "show_reaches", "fine reaches"),
                                  checkbox(self.state, "show_sites", "observation sites, reservoirs, dams"))
        self.state.param.watch(self.refresh, ["basemap", "show_reaches", "show_sites"])
        self.state.param.watch(self._tiles_checked, "tiles_online")
        self.state.param.watch(self._describe, ["check", "clicked_segment"])
        self.refresh()
        self._describe()
        self._tiles_checked()

    def _basin(self) -> str | None:
        config = self.state.check.config
        return None if config is None else config.basin

    def _domain_layer(self, check: object) -> hv.Segments:
        basin = self._basin()
        pieces = self.state.resources.segment_pieces
        chosen = pieces.iloc[:0] if basin is None else pieces[
            pieces["segment"].isin(self.state.resources.domain_segments(basin))]
        return maps.segments(chosen[maps.PIECE_COLUMNS], [], "chosen domain").opts(
            color="#ff7f0e", line_width=7, alpha=0.55, tools=[], hooks=[self._zoom_to_domain])

    def _zoom_to_domain(self, plot: object, element: object) -> None:
        """Hook of the domain layer: when the chosen domain changed, zoom the map to it (equal x/y scale kept)."""
        basin = self._basin()
        if basin is None or basin == self._zoomed_basin:
            return
        self._zoomed_basin = basin
        figure = plot.state  # type: ignore[attr-defined]
        aspect = (figure.frame_height or 1) / (figure.frame_width or 1)
        self._view = self.state.resources.domain_bounds(basin).fit(aspect)
        figure.x_range.update(start=self._view.left, end=self._view.right)
        figure.y_range.update(start=self._view.bottom, end=self._view.top)

    def _locator_map(self, check: object) -> hv.Overlay:
        basin = self._basin()
        return maps.locator(self.state.resources, None if basin is None else self.state.resources.domain_bounds(basin),
                            LOCATOR_SIZE)

    def draw(self) -> None:
        """Rebuild the map (layers follow the toggles); it keeps showing the chosen domain's extent."""
        s, r = self.state, self.state.resources
        coarse = self._coarse.opts(clone=True, color="#1f4e79", line_width=6 if s.show_reaches else 3.5,
                                   alpha=0.18 if s.show_reaches else 0.9, tools=[])
        if not s.show_reaches:  # the segments are what is under the cursor then
            coarse = coarse.opts(tools=["hover"], hooks=[maps.one_tooltip_per("segment")], hover_tooltips=maps.one_line(
                "segment <b>@segment</b> · @length_km{0.0} km · @n_reaches fine reaches · "
                "@area_km2{0,0} km² drained · @n_obs_days observed reach-days"))
        domain = hv.DynamicMap(self._domain_layer, streams=[hv.streams.Params(s, ["check"])])
        # Tap on the inner DynamicMap: HoloViews ignores a Tap on an overlay that contains DynamicMaps.
        hv.streams.Tap(source=domain, x=None, y=None).add_subscriber(self._on_tap)
        layers = [maps.basemap(r, s.basemap), domain, coarse]
        if s.show_sites:
            layers += [self._reservoirs, self._dams]
        if s.show_reaches:
            layers.append(self._reaches)
        if s.show_sites:
            layers.append(self._sites)
        overlay = layers[0]
        for layer in layers[1:]:
            overlay = overlay * layer
        options = maps.map_options(r.bounds, WIDTH, MAX_HEIGHT, "Delaware River Basin", scale_bar=True)
        self._plot.object = overlay.opts(**{**options, "xlim": self._view.xlim, "ylim": self._view.ylim},
                                         legend_position="bottom_left", show_legend=False)

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
