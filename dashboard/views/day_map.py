"""Maps of one day: predicted temperature on every reach, observed temperature where it exists, and their difference (°C).

Each map's title says what it shows, for which run (variant, basin, ρ, seed) and day. Temperatures are coloured on
a scale chosen in :attr:`AppState.color_scale`: the day's own range, the calendar month's range over the record,
the whole record's range, or the anomaly from each reach's day-of-year climatology (diverging, ±5 °C); for an ensemble
run also by the members' probability of exceeding 20 or 25 °C (the exceedance map; dots: whether the observation did).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models import ColumnDataSource

from dashboard.design import CHOICE_BUTTONS
from dashboard.geometry import PIECE_COLUMNS, Bounds
from dashboard.resources import Resources
from dashboard.results import RunResults, percentile_range
from dashboard.state import EXCEEDANCE_SCALES
from dashboard.views import figures, maps
from dashboard.views.tab_view import TabView
from msgl_core import PARENT_SEGMENT, SPLIT_NAMES, exceedance_variable

#: Map frame sizes (px): side by side for tall domains, stacked for wide ones.
SIDE_WIDTH, SIDE_MAX_HEIGHT = 390, 640
STACKED_WIDTH, STACKED_MAX_HEIGHT = 560, 420
#: Interval between frames when playing, ms.
PLAY_MS = 700
STEPS = {"1 day": 1, "1 week": 7, "1 month": 30, "1 year": 365}
#: Buttons of the colour scales (:attr:`AppState.color_scale`).
SCALE_OPTIONS = {"Day's range": "day", "Month's range": "season", "Record's range": "record",
                 "Anomaly": "anomaly"}
#: The extra buttons of an ensemble run: reaches coloured by the members' probability of exceeding a threshold.
EXCEEDANCE_OPTIONS = {"P(T > 20 °C)": "exceed20", "P(T > 25 °C)": "exceed25"}
EXCEEDANCE_CMAP = "OrRd"
#: Colour-bar label of each colour scale.
SCALE_LABELS = {"day": "water temperature (°C), range of this day",
                "season": "water temperature (°C), range of this calendar month over the record",
                "record": "water temperature (°C), range of the whole record",
                "anomaly": "temperature − reach's day-of-year climatology (°C)",
                **{scale: f"probability that water temperature exceeds {threshold:g} °C (ensemble)"
                   for scale, threshold in EXCEEDANCE_SCALES.items()}}


class DayMap(TabView):
    """Two linked maps of the chosen day with a date slider, step buttons and play; a click selects a reach."""

    tab = "day"

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._slider = pn.widgets.DateSlider(label="Day", start=dt.date(2000, 1, 1), end=dt.date(2000, 1, 2),
                                             value=dt.date(2000, 1, 1), sizing_mode="stretch_width", disabled=True)
        self._back = pn.widgets.Button(label="◀", width=45, description="Previous step")
        self._forward = pn.widgets.Button(label="▶", width=45, description="Next step")
        self._play = pn.widgets.Toggle(label="Play", width=80)
        self._step = pn.widgets.Select(options=STEPS, value=1, width=100, description="Step size")
        self._scale = pn.widgets.RadioButtonGroup.from_param(self.state.param.color_scale, options=SCALE_OPTIONS,
                                                             label="Colour scale", **CHOICE_BUTTONS)
        # The two maps, side by side while they fit (the panes are made when the first run is drawn).
        self._row = pn.FlexBox(flex_wrap="wrap", sizing_mode="stretch_width")
        self._plot_box = maps.box(self._row, sizing_mode="stretch_width")
        self._empty = pn.pane.Markdown("Load or train a run to map its predictions.")
        self._header = pn.pane.Markdown(sizing_mode="stretch_width", margin=(0, 10))
        self._layout = pn.Column(
            pn.Row(self._back, self._forward, self._play, self._step, self._slider, sizing_mode="stretch_width"),
            pn.Row(pn.pane.Markdown("Colours:", margin=(5, 5, 0, 10)), self._scale), self._header, self._empty,
            self._plot_box, sizing_mode="stretch_width")
        self._pieces = pd.DataFrame()
        self._reach_index = np.array([], dtype=int)
        self._player: pn.io.callbacks.PeriodicCallback | None = None
        self._memo: dict = {}
        self._title_width = SIDE_WIDTH
        self._maps: _Maps | None = None
        self._drawn_for: RunResults | None = None
        self._scale_drawn: str | None = None
        self._back.on_click(lambda event: self.step(-1))
        self._forward.on_click(lambda event: self.step(+1))
        self._play.param.watch(self._toggle_play, "value")
        self._slider.param.watch(self._slid, "value_throttled")
        self.state.param.watch(self._results_changed, "results")
        self.state.param.watch(self.refresh, ["basemap", "color_scale", "date"])
        self.state.param.watch(self._date_changed, "date")
        self.state.param.watch(self._show_reach, "reach")
        self._results_changed()

    # -- date controls ---------------------------------------------------------------------------

    def step(self, direction: int) -> None:
        """Move the date by ``direction`` steps of the chosen size (clipped to the record)."""
        results = self.state.results
        if results is None or self.state.date is None:
            return
        k = results.day_index(self.state.date) + direction * int(self._step.value)
        k = min(max(k, 0), len(results.time) - 1)
        self.state.date = results.time[k]
        if self._play.value and k == len(results.time) - 1:
            self._play.value = False

    def _toggle_play(self, event: param.parameterized.Event) -> None:
        self._play.label = "Pause" if event.new else "Play"
        if event.new and self._player is None:
            self._player = pn.state.add_periodic_callback(lambda: self.step(+1), period=PLAY_MS)
        elif not event.new and self._player is not None:
            self._player.stop()
            self._player = None

    def _slid(self, event: param.parameterized.Event) -> None:
        if event.new is not None and self.state.results is not None:
            self.state.date = pd.Timestamp(event.new)

    def _date_changed(self, *events: object) -> None:
        results, date = self.state.results, self.state.date
        if results is None or date is None:
            self._header.object = ""
            return
        self._slider.value = pd.Timestamp(date).date()
        k = results.day_index(date)
        _, day = self._day(date)
        seen = day["observed"].notna()
        line = f"**{results.time[k]:%a %d %b %Y}** · {SPLIT_NAMES[results.split[k]]} · {int(seen.sum())} observed reach(es)"
        if seen.any():
            diff = day.loc[seen, "difference"]
            line += f" · mean predicted − observed {diff.mean():+.2f} °C, RMSE {(diff ** 2).mean() ** 0.5:.2f} °C"
        self._header.object = line

    # -- maps ------------------------------------------------------------------------------------

    def _results_changed(self, *events: object) -> None:
        results = self.state.results
        if results is None:
            self._plot_box.visible, self._empty.visible, self._slider.disabled = False, True, True
            self._play.value = False
        else:
            self._slider.param.update(start=results.time[0].date(), end=results.time[-1].date(), disabled=False,
                                      value=pd.Timestamp(self.state.date or results.time[0]).date())
        ensemble = results is not None and results.is_ensemble
        if not ensemble and self.state.color_scale in EXCEEDANCE_SCALES:
            self.state.color_scale = "day"  # before the buttons lose it, which would set None
        self._scale.options = {**SCALE_OPTIONS, **(EXCEEDANCE_OPTIONS if ensemble else {})}
        self._date_changed()
        self.refresh()

    def draw(self) -> None:
        """Show the current run's day on both maps: their domain when the run changed, then the day's values."""
        results = self.state.results
        if results is None:
            return
        if self._maps is None:
            self._maps = _Maps(self.state.resources, self._on_tap)
            self._row.objects = [pn.pane.Bokeh(self._maps.left), pn.pane.Bokeh(self._maps.right)]
        maps_ = self._maps
        with figures.hold(maps_.left, maps_.right):
            if self._drawn_for is not results:
                r = self.state.resources
                pieces = r.reach_pieces[r.reach_pieces["reach"].isin(results.reaches)]
                self._pieces = pieces[[*PIECE_COLUMNS, "reach", PARENT_SEGMENT]].reset_index(drop=True)
                self._reach_index = results.reaches.get_indexer(self._pieces["reach"])
                bounds = Bounds.of(r.reaches.loc[results.reaches])
                stacked = (bounds.top - bounds.bottom) < 0.9 * (bounds.right - bounds.left)
                size = (STACKED_WIDTH, STACKED_MAX_HEIGHT) if stacked else (SIDE_WIDTH, SIDE_MAX_HEIGHT)
                self._title_width = bounds.frame_size(*size)[0]
                maps_.show_domain(self._pieces, bounds, size)
                self._drawn_for, self._scale_drawn = results, None
            figures.show_tiles(maps_.left, self.state.basemap)
            figures.show_tiles(maps_.right, self.state.basemap)
            self._show_day()
            self._show_reach()
        self._plot_box.visible, self._empty.visible = True, False

    def _show_day(self) -> None:
        """The day's values, colours, titles and tooltips on both maps."""
        assert self._maps is not None
        date = self.state.date
        results, day = self._day(date)
        cmap, suffix = self._colors()
        scale = self._scale_name()
        shown = ["prediction", f"prediction{suffix}"]
        hover = "reach <b>@{reach}</b> · predicted @{prediction}{0.0} °C"
        what = "Predicted (lines), observed (dots)"
        dot_tips = [("reach", "@{reach}"), ("observed", "@{observed}{0.0} °C"), ("predicted", "@{prediction}{0.0} °C"),
                    ("observation", "@{status}")]
        if suffix == "_anomaly":
            hover += ", @{prediction_anomaly}{+0.0} °C from its climatology"
            what = "Predicted anomaly (lines), observed (dots)"
            dot_tips.insert(2, ("observed − climatology", "@{observed_anomaly}{+0.0} °C"))
        elif suffix == "_exceed":
            threshold = EXCEEDANCE_SCALES[scale]
            shown += ["prediction_q05", "prediction_q95"]
            hover = (f"reach <b>@{{reach}}</b> · P(T > {threshold:g} °C) @{{prediction_exceed}}{{0.00}} · ensemble mean "
                     "@{prediction}{0.0} °C, 90 % interval @{prediction_q05}{0.0}–@{prediction_q95}{0.0} °C")
            what = f"P(T > {threshold:g} °C) from the members (lines), observed above it: 1, below: 0 (dots)"
        values = {c: day[c].to_numpy()[self._reach_index] for c in dict.fromkeys(shown)}
        self._maps.show_day(values, self._memo["points"], scale != self._scale_drawn, suffix, cmap,
                            self._memo["clim"], SCALE_LABELS[scale], maps.one_line(hover), dot_tips)
        self._scale_drawn = scale
        self._maps.left.title.text = self._title(results, what, date)
        self._maps.right.title.text = self._title(results, "Predicted − observed", date)

    def _show_reach(self, *events: object) -> None:
        if self._maps is not None and self._drawn_for is self.state.results:
            reach = self.state.reach
            chosen = self._pieces[self._pieces["reach"] == reach] if reach else self._pieces.iloc[:0]
            self._maps.selected.data = {c: chosen[c].to_numpy() for c in PIECE_COLUMNS}

    def _day(self, date: object) -> tuple[RunResults, pd.DataFrame]:
        """The current run's values on ``date``, computed once per date and colour scale for the layers and the
        header; with the anomaly scale, ``prediction_anomaly`` and ``observed_anomaly`` (°C) are added."""
        results = self.state.results
        assert results is not None
        date = date if date is not None else results.time[0]
        key = (id(results), str(date), self._scale_name())
        if self._memo.get("key") != key:
            day = results.day(date)
            if self._scale_name() == "anomaly":
                day = day.join(results.day_anomaly(date).add_suffix("_anomaly"))
            threshold = EXCEEDANCE_SCALES.get(self._scale_name())
            if threshold is not None and exceedance_variable(threshold) in day:
                day = day.assign(prediction_exceed=day[exceedance_variable(threshold)],
                                 observed_exceed=np.where(day["observed"].isna(), np.nan,
                                                          (day["observed"] > threshold).astype(float)))
            self._memo = {"key": key, "day": day, "points": self._observed_points(results, day, date),
                          "clim": self._temperature_clim(results, day, date)}
        return results, self._memo["day"]

    def _temperature_clim(self, results: RunResults, day: pd.DataFrame, date: object) -> tuple[float, float]:
        """Colour range (°C) of the day's temperatures, or of their anomaly, on the chosen colour scale."""
        scale = self._scale_name()
        if scale in EXCEEDANCE_SCALES:
            return 0.0, 1.0
        if scale == "anomaly":
            return -maps.DIFFERENCE_LIMIT, maps.DIFFERENCE_LIMIT
        if scale == "season":
            return results.month_clims[pd.Timestamp(date).month]
        if scale == "day":
            return percentile_range(day["prediction"].to_numpy())
        return results.clim

    def _scale_name(self) -> str:
        """The colour scale in use: :attr:`AppState.color_scale`, except an exceedance scale on a deterministic run
        (e.g. from a shared link), which shows the day's range."""
        scale, results = self.state.color_scale, self.state.results
        return "day" if scale in EXCEEDANCE_SCALES and (results is None or not results.is_ensemble) else scale

    def _title(self, results: RunResults, what: str, date: object) -> str:
        return maps.wrap_title(maps.run_title(results.run, what, date), self._title_width)

    def _points(self, date: object) -> pd.DataFrame:
        """The observed reaches of ``date`` as drawn (x, y, reach, values, ``status``)."""
        self._day(date)
        return self._memo["points"]

    def _observed_points(self, results: RunResults, day: pd.DataFrame, date: object) -> pd.DataFrame:
        seen = day[np.isfinite(day["observed"].to_numpy())]
        where = self.state.resources.reaches.loc[seen.index, ["x", "y"]]
        split = results.split[results.day_index(date)] if date is not None else ""
        status = SPLIT_NAMES[split]
        if split in ("train", "val"):
            held = results.held_out[results.reaches.get_indexer(seen.index)]
            status = np.where(seen["used"].to_numpy(), f"used ({status})",
                              np.where(held, f"withheld: hold-out reach ({status})",
                                       f"withheld by the sparsity mask ({status})"))
        return pd.DataFrame({"x": where["x"].to_numpy(), "y": where["y"].to_numpy(), "reach": seen.index.to_numpy(),
                             **{c: seen[c].to_numpy() for c in seen if c != "used"}, "status": status})

    def _colors(self) -> tuple[str, str]:
        """Colour map and the suffix of the coloured columns (``prediction``/``observed`` + suffix) of the scale."""
        if self._scale_name() == "anomaly":
            return maps.DIFFERENCE_CMAP, "_anomaly"
        if self._scale_name() in EXCEEDANCE_SCALES:
            return EXCEEDANCE_CMAP, "_exceed"
        return maps.TEMPERATURE_CMAP, ""

    def _on_tap(self, x: float | None, y: float | None) -> None:
        self.state.pick_reach(x, y)

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout


class _Maps:
    """The day map's two Bokeh figures (predicted lines and observed dots; predicted − observed dots) with their data
    sources, built once per session and updated in place (:mod:`dashboard.views.figures`). Pan and zoom are linked."""

    def __init__(self, resources: Resources, on_tap: Callable[[float | None, float | None], None]) -> None:
        whole = resources.bounds
        self.left = figures.map_figure(whole, SIDE_WIDTH, SIDE_MAX_HEIGHT)
        self.right = figures.map_figure(whole, SIDE_WIDTH, SIDE_MAX_HEIGHT)
        self.right.update(x_range=self.left.x_range, y_range=self.left.y_range)
        for fig in (self.left, self.right):
            figures.add_outline(fig, resources)
        self._pieces: dict[str, np.ndarray] = {}
        self.lines = figures.data_source()
        self.dots = ColumnDataSource({"x": [], "y": [], "difference": []})
        self.mapper = figures.color_mapper(maps.TEMPERATURE_CMAP, (0.0, 30.0))
        self._lines = figures.line_layer(self.left, self.lines, line_width=3,
                                         line_color={"field": "prediction", "transform": self.mapper})
        self._observed = self.left.scatter("x", "y", source=self.dots, size=11, line_color="black", line_width=1.2,
                                           fill_color={"field": "observed", "transform": self.mapper})
        self._bar = figures.add_color_bar(self.left, self.mapper, SCALE_LABELS["day"])
        self._line_hover = figures.add_hover(self.left, [self._lines], "", one_per="reach")
        self._dot_hover = figures.add_hover(self.left, [self._observed], [])
        self.grey = figures.data_source()
        figures.line_layer(self.right, self.grey, line_color=maps.NAN_COLOR, line_width=1.5)
        limit = maps.DIFFERENCE_LIMIT
        difference = figures.color_mapper(maps.DIFFERENCE_CMAP, (-limit, limit))
        dots = self.right.scatter("x", "y", source=self.dots, size=12, line_color="black", line_width=1.2,
                                  fill_color={"field": "difference", "transform": difference})
        figures.add_color_bar(self.right, difference, "predicted − observed (°C)")
        figures.add_hover(self.right, [dots], [("reach", "@{reach}"), ("predicted − observed", "@{difference}{+0.00} °C"),
                                               ("observed", "@{observed}{0.0} °C"), ("observation", "@{status}")])
        self.selected = figures.data_source()
        for fig in (self.left, self.right):
            figures.line_layer(fig, self.selected, line_color="#ff00ff", line_width=7, line_alpha=0.8)
            figures.on_tap(fig, on_tap)

    def show_domain(self, pieces: pd.DataFrame, bounds: Bounds, size: tuple[int, int]) -> None:
        """Show the reach ``pieces`` of a run's domain (their values come with :meth:`show_day`) within ``bounds``,
        each map at most ``size`` (width, height) pixels."""
        for fig in (self.left, self.right):
            figures.set_extent(fig, bounds, *size)
        self._pieces = {c: pieces[c].to_numpy() for c in pieces}
        self.grey.data = {c: self._pieces[c] for c in PIECE_COLUMNS}

    def show_day(self, values: dict[str, np.ndarray], points: pd.DataFrame, rescaled: bool, suffix: str, cmap: str,
                 clim: tuple[float, float], label: str, hover: str, dot_tips: list[tuple[str, str]]) -> None:
        """One day: per-piece ``values`` (``prediction`` and the coloured ``prediction{suffix}``, °C or 0–1), the
        observed ``points``, and the colour range ``clim``; when ``rescaled`` (another colour scale, or a new domain)
        also the colour map, colour-bar ``label`` and tooltips. Only the changed columns go to the browser."""
        if rescaled:
            self.lines.data = {**self._pieces, **values}
            self._lines.glyph.line_color = {"field": f"prediction{suffix}", "transform": self.mapper}
            self._observed.glyph.fill_color = {"field": f"observed{suffix}", "transform": self.mapper}
            self.mapper.palette = list(figures.palette(cmap))
            self._bar.title = label
            self._line_hover.tooltips, self._dot_hover.tooltips = hover, dot_tips
        else:
            self.lines.data.update(values)
        self.dots.data = {c: points[c].to_numpy() for c in points}
        self.mapper.update(low=clim[0], high=clim[1])
