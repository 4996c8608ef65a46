"""Per-reach test-period errors of the current run (RMSE, bias or MAE, °C): map and sortable table."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

from dashboard.geometry import PIECE_COLUMNS, Bounds
from dashboard.resources import Resources
from dashboard.results import METRIC_LABELS
from dashboard.views import maps
from dashboard.views.tab_view import TabView

WIDTH, MAX_HEIGHT = 560, 640


def error_overlay(resources: Resources, reaches: pd.Index, metrics: pd.DataFrame, metric: str,
                  clim: tuple[float, float], cmap: str, title: str) -> hv.Overlay:
    """Reaches of a domain in grey, gauged reaches coloured by ``metric`` (°C) as thick lines and dots."""
    pieces = resources.reach_pieces[resources.reach_pieces["reach"].isin(reaches)]
    gauged = metrics.index.intersection(reaches)
    values = metrics.loc[gauged]
    colored = pieces[pieces["reach"].isin(gauged)]
    colored = colored.assign(value=values[metric].reindex(colored["reach"]).to_numpy())
    label = METRIC_LABELS[metric]
    dots = pd.DataFrame({"x": resources.reaches.loc[gauged, "x"].to_numpy(),
                         "y": resources.reaches.loc[gauged, "y"].to_numpy(), "reach": gauged.to_numpy(),
                         **{c: values[c].to_numpy() for c in ("rmse", "bias", "mae", "nse", "n_obs")},
                         "value": values[metric].to_numpy()})
    tooltips = [("reach", "@reach"), ("RMSE", "@rmse{0.00} °C"), ("bias", "@bias{+0.00} °C"), ("MAE", "@mae{0.00} °C"),
                ("NSE", "@nse{0.00}"), ("test observations", "@n_obs")]
    lines = maps.segments(colored[[*PIECE_COLUMNS, "value", "reach"]], ["value", "reach"]).opts(
        color="value", cmap=cmap, clim=clim, line_width=4, tools=[], clipping_colors={"NaN": maps.NAN_COLOR})
    points = maps.points(dots, ["value", "reach", "rmse", "bias", "mae", "nse", "n_obs"]).opts(
        color="value", cmap=cmap, clim=clim, size=10, line_color="black", line_width=1, colorbar=True,
        clabel=label, clipping_colors={"NaN": maps.NAN_COLOR}, tools=["hover"],
        hover_tooltips=tooltips)
    return (maps.grey_lines(pieces, 1.5) * lines * points).opts(title=title)


class ErrorMap(TabView):
    """The test-period error of every gauged reach on a map (click selects the reach) and in a table."""

    tab = "errors"

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._metric = pn.widgets.RadioButtonGroup.from_param(
            self.state.param.error_metric, options={"RMSE (°C)": "rmse", "bias (°C)": "bias", "MAE (°C)": "mae"},
            label="Metric")
        self._plot = pn.pane.HoloViews(linked_axes=False)
        self._summary = pn.pane.Markdown(sizing_mode="stretch_width")
        self._table = pn.widgets.Tabulator(pd.DataFrame(), height=560, width=470, disabled=True, selectable=1,
                                           show_index=True, pagination=None, sizing_mode="fixed")
        self._table.on_click(self._clicked_row)
        self.state.param.watch(self.refresh, ["results", "error_metric", "basemap"])
        self.refresh()

    def draw(self) -> None:
        """Redraw the map and table of the current run and metric."""
        results = self.state.results
        if results is None:
            self._summary.object = "Load or train a run to map its per-reach test errors."
            self._plot.visible = self._table.visible = False
            return
        r, metric = self.state.resources, self.state.error_metric
        values = results.metrics[metric].to_numpy(dtype=float)
        clim, cmap = maps.error_limits(metric, values)
        bounds = Bounds.of(r.reaches.loc[results.reaches])
        overlay = maps.basemap(r, self.state.basemap) * error_overlay(
            r, results.reaches, results.metrics, metric, clim, cmap,
            f"Test-period {METRIC_LABELS[metric]} per gauged reach")
        overlay = overlay.opts(**maps.map_options(bounds, WIDTH, MAX_HEIGHT))
        hv.streams.Tap(source=overlay, x=None, y=None).add_subscriber(self._on_tap)
        self._plot.object = overlay
        overall = results.run.metrics["fine"]["overall"]
        gauged = int(np.isfinite(values).sum())
        self._summary.object = (
            f"**{results.describe()}**  \nTest periods: {', '.join(f'{a} to {b}' for a, b in results.run.config.test_periods)}. "
            f"Overall: RMSE {_fmt(overall.get('rmse'))} °C, MAE {_fmt(overall.get('mae'))} °C, "
            f"bias {_fmt(overall.get('bias'), '+.2f')} °C, NSE {_fmt(overall.get('nse'))}, "
            f"{overall.get('n_obs', 0):,} observations; {gauged} of {len(results.reaches)} reaches have enough "
            f"test observations for a score (grey: none). Click a reach or a row for its hydrograph.")
        table = results.metrics.drop(columns=["holdout", "kge"]).sort_values(metric, ascending=False,
                                                                      key=np.abs if metric == "bias" else None)
        table = table[["rmse", "bias", "mae", "nse", "n_obs"]].rename(
            columns={"rmse": "RMSE °C", "mae": "MAE °C", "bias": "bias °C", "nse": "NSE", "n_obs": "n"})
        self._table.param.update(value=table.round(3), visible=True, height=min(560, 40 + 26 * len(table)),
                                 formatters={c: {"type": "money", "precision": 2, "symbol": ""}
                                             for c in ("RMSE °C", "MAE °C", "bias °C", "NSE")})
        self._plot.visible = True

    def _on_tap(self, x: float | None, y: float | None) -> None:
        self.state.pick_reach(x, y)

    def _clicked_row(self, event: object) -> None:
        row = getattr(event, "row", None)
        if row is not None and 0 <= row < len(self._table.value):
            self.state.select_reach(str(self._table.value.index[row]))

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self._metric, self._summary, pn.Row(self._plot, self._table), sizing_mode="stretch_width")


def _fmt(value: object, spec: str = ".2f") -> str:
    return "n/a" if value is None else format(float(value), spec)  # type: ignore[arg-type]
