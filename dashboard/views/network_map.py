"""The whole DRB: basin outline, coarse NHM segments, ~3,200 fine reaches, reservoirs, dams and sites."""

from __future__ import annotations

import holoviews as hv
import panel as pn

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
Hover shows ids, length, parent segment and observed days; the wheel zooms.
</div>"""
WIDTH, MAX_HEIGHT = 560, 900


class NetworkMap(TabView):
    """Map of the network with hover (ids, length, parent segment, observed days); a click picks the outlet of the domain."""

    tab = "network"

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        r = self.state.resources
        # One-line tooltips: a cursor on a vertex hits two pieces, and several sites can share a reach.
        reach_tooltips = maps.one_line(f"reach <b>@reach</b> · segment @{PARENT_SEGMENT} · @length_km{{0.00}} km · "
                                       "@n_obs_days observed days")
        columns = ["reach", PARENT_SEGMENT, "length_km", "n_obs_days"]
        observed = r.reach_pieces["n_obs_days"] > 0
        # Fixed colours (no colour mapping) keep the first render fast.
        self._reaches = [
            maps.segments(r.reach_pieces[~observed], columns, "fine reaches without observations").opts(
                color="#6baed6", line_width=1.6, tools=["hover"], hover_tooltips=reach_tooltips),
            maps.segments(r.reach_pieces[observed], columns, "fine reaches with observations").opts(
                color="#08519c", line_width=1.8, tools=["hover"], hover_tooltips=reach_tooltips)]
        self._coarse = maps.segments(r.segment_pieces, ["segment", "length_km", "n_reaches", "area_km2", "n_obs_days"],
                                     "NHM segments")
        sites = r.site_points()
        site_tooltips = maps.one_line("site <b>@site_id</b> · reach @reach · @n_obs_days observed days")
        with_data = sites["n_obs_days"] > 0
        self._sites = [
            maps.points(sites[~with_data], ["site_id", "reach", "segment", "n_obs_days"], "sites without data").opts(
                color="#9a9a9a", size=2.5, line_alpha=0, tools=["hover"], hover_tooltips=site_tooltips),
            maps.points(sites[with_data], ["site_id", "reach", "segment", "n_obs_days"], "observation sites").opts(
                color="#111111", size=4, fill_alpha=0.8, line_alpha=0, tools=["hover"], hover_tooltips=site_tooltips)]
        self._reservoirs = hv.Polygons(r.reservoir_polygons(), kdims=["x", "y"], vdims=["name", "area_km2"],
                                       label="reservoirs").opts(
            color="#7fb8e6", line_color="#2b6ea8", line_width=0.8, tools=["hover"],
            hover_tooltips=maps.one_line("reservoir <b>@name</b> · @area_km2{0.0} km²"))
        self._dams = maps.points(r.dam_points(), ["name", "river", "year"], "dams").opts(
            marker="triangle", size=9, color="#b30000", tools=["hover"],
            hover_tooltips=maps.one_line("dam <b>@name</b> · @river · built @year"))
        self._plot = pn.pane.HoloViews(linked_axes=False)
        self._info = pn.pane.Markdown(sizing_mode="stretch_width")
        self._basemap = pn.widgets.Checkbox.from_param(self.state.param.basemap, label="tile basemap", disabled=True)
        self._toggles = pn.Column(
            self._basemap,
            pn.widgets.Checkbox.from_param(self.state.param.show_reaches, label="fine reaches"),
            pn.widgets.Checkbox.from_param(self.state.param.show_sites, label="observation sites, reservoirs, dams"))
        self.state.param.watch(self.refresh, ["basemap", "show_reaches", "show_sites"])
        self.state.param.watch(self._tiles_checked, "tiles_online")
        self.state.param.watch(self._describe, ["check", "clicked_segment"])
        self.refresh()
        self._describe()
        self._tiles_checked()

    def _domain_layer(self, check: object) -> hv.Segments:
        check = self.state.check
        pieces = self.state.resources.segment_pieces
        if check.config is None:
            chosen = pieces.iloc[:0]
        else:
            chosen = pieces[pieces["segment"].isin(self.state.resources.domain_segments(check.config.basin))]
        return maps.segments(chosen[maps.PIECE_COLUMNS], [], "chosen domain").opts(
            color="#ff7f0e", line_width=7, alpha=0.55, tools=[])

    def draw(self) -> None:
        """Rebuild the map (layers follow the toggles)."""
        s, r = self.state, self.state.resources
        coarse = self._coarse.opts(
            clone=True, color="#1f4e79", line_width=3.5 if not s.show_reaches else 6, alpha=0.9 if not s.show_reaches else 0.18,
            tools=[] if s.show_reaches else ["hover"],
            hover_tooltips=maps.one_line("segment <b>@segment</b> · @length_km{0.0} km · @n_reaches fine reaches · "
                                         "@area_km2{0,0} km² drained · @n_obs_days observed reach-days"))
        domain = hv.DynamicMap(self._domain_layer, streams=[hv.streams.Params(s, ["check"])])
        # Tap on the inner DynamicMap: HoloViews ignores a Tap on an overlay that contains DynamicMaps.
        hv.streams.Tap(source=domain, x=None, y=None).add_subscriber(self._on_tap)
        layers = [maps.basemap(r, s.basemap), domain, coarse]
        if s.show_sites:
            layers += [self._reservoirs, self._dams]
        if s.show_reaches:
            layers += self._reaches
        if s.show_sites:
            layers += self._sites
        overlay = layers[0]
        for layer in layers[1:]:
            overlay = overlay * layer
        overlay = overlay.opts(**maps.map_options(r.bounds, WIDTH, MAX_HEIGHT, "Delaware River Basin"),
                               legend_position="bottom_left", show_legend=False)
        self._plot.object = overlay

    def _tiles_checked(self, *events: object) -> None:
        online = self.state.tiles_online
        label = {None: "tile basemap (checking…)", True: "tile basemap", False: "tile basemap (offline: unavailable)"}
        self._basemap.param.update(label=label[online], disabled=not online)

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
        side = pn.Column(self._toggles, self._info, pn.pane.HTML(LEGEND), width=420)
        return pn.Row(self._plot, side, name="Network")
