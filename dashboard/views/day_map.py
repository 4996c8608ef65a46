"""Maps of one day: predicted temperature on every reach, observed temperature where it exists, and their difference (°C)."""

from __future__ import annotations

import datetime as dt

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param

from dashboard.geometry import PIECE_COLUMNS, Bounds
from dashboard.results import RunResults
from dashboard.views import maps
from dashboard.views.tab_view import TabView
from msgl_core import PARENT_SEGMENT, SPLIT_NAMES

#: Map frame sizes (px): side by side for tall domains, stacked for wide ones.
SIDE_WIDTH, SIDE_MAX_HEIGHT = 390, 640
STACKED_WIDTH, STACKED_MAX_HEIGHT = 820, 480
#: Interval between frames when playing, ms.
PLAY_MS = 700
STEPS = {"1 day": 1, "1 week": 7, "1 month": 30, "1 year": 365}


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
        self._plot = pn.pane.HoloViews(linked_axes=False)
        self._empty = pn.pane.Markdown("Load or train a run to map its predictions.")
        self._header = pn.pane.Markdown(sizing_mode="stretch_width", margin=(0, 10))
        self._layout = pn.Column(
            pn.Row(self._back, self._forward, self._play, self._step, self._slider, sizing_mode="stretch_width"),
            self._header, self._empty, self._plot, sizing_mode="stretch_width")
        self._pieces = pd.DataFrame()
        self._reach_index = np.array([], dtype=int)
        self._player: pn.io.callbacks.PeriodicCallback | None = None
        self._memo: dict = {}
        self._back.on_click(lambda event: self.step(-1))
        self._forward.on_click(lambda event: self.step(+1))
        self._play.param.watch(self._toggle_play, "value")
        self._slider.param.watch(self._slid, "value_throttled")
        self.state.param.watch(self._results_changed, "results")
        self.state.param.watch(self.refresh, "basemap")
        self.state.param.watch(self._date_changed, "date")
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
            self._plot.visible, self._empty.visible, self._slider.disabled = False, True, True
            self._play.value = False
        else:
            self._slider.param.update(start=results.time[0].date(), end=results.time[-1].date(), disabled=False,
                                      value=pd.Timestamp(self.state.date or results.time[0]).date())
        self._date_changed()
        self.refresh()

    def draw(self) -> None:
        """Rebuild both maps for the current run (the date then only updates their data)."""
        results = self.state.results
        if results is None:
            return
        r = self.state.resources
        pieces = r.reach_pieces[r.reach_pieces["reach"].isin(results.reaches)]
        self._pieces = pieces[[*PIECE_COLUMNS, "reach", PARENT_SEGMENT]].reset_index(drop=True)
        self._reach_index = results.reaches.get_indexer(self._pieces["reach"])
        domain = r.reaches.loc[results.reaches]
        bounds = Bounds.of(domain)
        date = hv.streams.Params(self.state, ["date"])
        selected = hv.streams.Params(self.state, ["reach"])
        context = maps.basemap(r, self.state.basemap)
        lines = hv.DynamicMap(self._prediction_layer, streams=[date])
        observed = hv.DynamicMap(self._observed_layer, streams=[date])
        difference = hv.DynamicMap(self._difference_layer, streams=[date])
        # Taps go on DynamicMaps that return one element: HoloViews drops a Tap whose source is an
        # overlay of DynamicMaps, or a DynamicMap returning an overlay.
        for source in (lines, difference):
            hv.streams.Tap(source=source, x=None, y=None).add_subscriber(self._on_tap)
        left = context * lines * observed * hv.DynamicMap(self._selected_layer, streams=[selected])
        right = (context * maps.grey_lines(self._pieces, 1.5) * difference
                 * hv.DynamicMap(self._selected_layer, streams=[selected]))
        stacked = (bounds.top - bounds.bottom) < 0.9 * (bounds.right - bounds.left)
        size = (STACKED_WIDTH, STACKED_MAX_HEIGHT) if stacked else (SIDE_WIDTH, SIDE_MAX_HEIGHT)
        left = left.opts(**maps.map_options(bounds, *size, "Predicted (lines), observed (dots)"))
        right = right.opts(**maps.map_options(bounds, *size, "Predicted − observed"))
        layout = (left + right).opts(shared_axes=True).cols(1 if stacked else 2)
        self._plot.object = layout
        self._plot.visible, self._empty.visible = True, False

    def _day(self, date: object) -> tuple[RunResults, pd.DataFrame]:
        """The current run's values on ``date``, computed once per date for the three layers and the header."""
        results = self.state.results
        assert results is not None
        key = (id(results), str(date))
        if self._memo.get("key") != key:
            day = results.day(date if date is not None else results.time[0])
            self._memo = {"key": key, "day": day, "points": self._observed_points(results, day, date)}
        return results, self._memo["day"]

    def _points(self, date: object) -> pd.DataFrame:
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
                             "observed": seen["observed"].to_numpy(), "prediction": seen["prediction"].to_numpy(),
                             "difference": seen["difference"].to_numpy(), "status": status})

    def _prediction_layer(self, date: object) -> hv.Segments:
        results, day = self._day(date)
        pieces = self._pieces.assign(prediction=day["prediction"].to_numpy()[self._reach_index])
        return maps.segments(pieces, ["prediction", "reach", PARENT_SEGMENT]).opts(
            color="prediction", cmap=maps.TEMPERATURE_CMAP, clim=results.clim, line_width=3, colorbar=True,
            clabel="water temperature (°C)", clipping_colors={"NaN": maps.NAN_COLOR}, tools=["hover"],
            hover_tooltips=maps.one_line("reach <b>@reach</b> · predicted @prediction{0.0} °C"))

    def _observed_layer(self, date: object) -> hv.Points:
        results, day = self._day(date)
        return maps.points(self._points(date), ["observed", "prediction", "reach", "status"]).opts(
            color="observed", cmap=maps.TEMPERATURE_CMAP, clim=results.clim, size=11, line_color="black",
            line_width=1.2, tools=["hover"],
            hover_tooltips=[("reach", "@reach"), ("observed", "@observed{0.0} °C"), ("predicted", "@prediction{0.0} °C"),
                            ("observation", "@status")])

    def _difference_layer(self, date: object) -> hv.Points:
        seen = self._points(date)
        limit = maps.DIFFERENCE_LIMIT
        return maps.points(seen, ["difference", "observed", "prediction", "reach", "status"]).opts(
            color="difference", cmap=maps.DIFFERENCE_CMAP, clim=(-limit, limit), size=12, line_color="black",
            line_width=1.2, colorbar=True, clabel="predicted − observed (°C)", tools=["hover"],
            hover_tooltips=[("reach", "@reach"), ("predicted − observed", "@difference{+0.00} °C"),
                            ("observed", "@observed{0.0} °C"), ("observation", "@status")])

    def _selected_layer(self, reach: str | None) -> hv.Segments:
        pieces = self._pieces[self._pieces["reach"] == reach] if reach else self._pieces.iloc[:0]
        return maps.segments(pieces[PIECE_COLUMNS], []).opts(color="#ff00ff", line_width=7, alpha=0.8, tools=[])

    def _on_tap(self, x: float | None, y: float | None) -> None:
        self.state.pick_reach(x, y)

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout
