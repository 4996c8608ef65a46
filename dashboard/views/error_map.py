"""Per-reach test-period errors of the current run (RMSE, bias or MAE, °C): map and sortable table."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

from dashboard.geometry import PIECE_COLUMNS, Bounds
from dashboard.resources import Resources
from dashboard.views import maps
from dashboard.views.tab_view import TabView
from msgl_core import MIN_GROUP_OBS, Scores

WIDTH, MAX_HEIGHT = 560, 640
#: Scores shown in the hover and the table (labels and units: :attr:`msgl_core.Scores.LABELS`).
SHOWN = ("rmse", "bias", "mae", "nse", "n_obs")
#: Height of the table's header with wrapped score labels, px.
HEADER_PX = 110
#: Plain names of the sections of :meth:`msgl_core.RunMetrics.sections`.
SECTION_NAMES = {"fine": "gauged reaches", "holdout": "hold-out reaches", "coarse": "coarse segments"}
#: Hover number format of each shown score (Bokeh).
HOVER_FORMAT = {"rmse": "{0.00}", "bias": "{+0.00}", "mae": "{0.00}", "nse": "{0.00}", "n_obs": ""}


def metric_options(metrics: list[str]) -> dict[str, str]:
    """Buttons choosing a per-reach score: its label (:attr:`msgl_core.Scores.LABELS`) → name."""
    return {Scores.LABELS[m]: m for m in metrics}


def error_overlay(resources: Resources, reaches: pd.Index, metrics: pd.DataFrame, metric: str,
                  clim: tuple[float, float], cmap: str, title: str) -> hv.Overlay:
    """Reaches of a domain in grey, gauged reaches coloured by ``metric`` (°C) as thick lines and dots."""
    pieces = resources.reach_pieces[resources.reach_pieces["reach"].isin(reaches)]
    gauged = metrics.index.intersection(reaches)
    values = metrics.loc[gauged]
    colored = pieces[pieces["reach"].isin(gauged)]
    colored = colored.assign(value=values[metric].reindex(colored["reach"]).to_numpy())
    label = Scores.LABELS[metric]
    dots = pd.DataFrame({"x": resources.reaches.loc[gauged, "x"].to_numpy(),
                         "y": resources.reaches.loc[gauged, "y"].to_numpy(), "reach": gauged.to_numpy(),
                         **{c: values[c].to_numpy() for c in SHOWN}, "value": values[metric].to_numpy()})
    tooltips = [("reach", "@reach"), *((Scores.LABELS[c], f"@{c}{HOVER_FORMAT[c]}") for c in SHOWN)]
    lines = maps.segments(colored[[*PIECE_COLUMNS, "value", "reach"]], ["value", "reach"]).opts(
        color="value", cmap=cmap, clim=clim, line_width=4, tools=[], clipping_colors={"NaN": maps.NAN_COLOR})
    points = maps.points(dots, ["value", "reach", *SHOWN]).opts(
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
            self.state.param.error_metric, options=metric_options(self.state.param.error_metric.objects),
            label="Metric")
        self._plot = pn.pane.HoloViews(linked_axes=False)
        self._summary = pn.pane.Markdown(sizing_mode="stretch_width")
        # Long score labels (Scores.LABELS) wrap in narrow columns instead of widening the table.
        self._table = pn.widgets.Tabulator(pd.DataFrame(), height=560, width=470, disabled=True, selectable=1,
                                           show_index=True, pagination=None, sizing_mode="fixed",
                                           widths={Scores.LABELS[c]: 96 if c == "n_obs" else 72 for c in SHOWN},
                                           configuration={"columnDefaults": {"headerWordWrap": True}})
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
        values = results.per_reach[metric].to_numpy(dtype=float)
        clim, cmap = maps.error_limits(metric, values)
        bounds = Bounds.of(r.reaches.loc[results.reaches])
        overlay = maps.basemap(r, self.state.basemap) * error_overlay(
            r, results.reaches, results.per_reach, metric, clim, cmap,
            f"Test-period {Scores.LABELS[metric]} per gauged reach")
        overlay = overlay.opts(**maps.map_options(bounds, WIDTH, MAX_HEIGHT))
        hv.streams.Tap(source=overlay, x=None, y=None).add_subscriber(self._on_tap)
        self._plot.object = overlay
        metrics = results.run.metrics
        gauged = int(np.isfinite(values).sum())
        sections = "; ".join(f"{SECTION_NAMES.get(name, name)}: {_overall(scores)}" for name, scores in metrics.sections().items())
        self._summary.object = (
            f"**{results.run.label()}**  \nTest periods: {', '.join(f'{a} to {b}' for a, b in metrics.test_periods)}. "
            f"Overall ({sections}); {gauged} of {len(results.reaches)} reaches have at least {MIN_GROUP_OBS} "
            f"test observations for a score (grey: fewer). Click a reach or a row for its hydrograph.")
        shown = [*SHOWN, "holdout"] if results.per_reach["holdout"].any() else list(SHOWN)
        table = results.per_reach[shown].sort_values(metric, ascending=False, key=np.abs if metric == "bias" else None)
        table = table.rename(columns=Scores.LABELS)
        self._table.param.update(value=table.round(3), visible=True, height=min(560, HEADER_PX + 26 * len(table)),
                                 formatters={Scores.LABELS[c]: {"type": "money", "precision": 2, "symbol": ""}
                                             for c in SHOWN if c != "n_obs"})
        self._plot.visible = True

    def _on_tap(self, x: float | None, y: float | None) -> None:
        self.state.pick_reach(x, y)

    def _clicked_row(self, event: object) -> None:
        row = getattr(event, "row", None)
        if row is not None and 0 <= row < len(self._table.value):
            self.state.select_reach(str(self._table.value.index[row]))

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self._metric, self._summary, pn.Row(self._plot, self._table), sizing_mode="stretch_width")


def _overall(scores: Scores) -> str:
    """One section's overall test scores, e.g. ``RMSE 1.52 °C, MAE 1.20 °C, bias +0.10 °C, NSE 0.91, 120 observations``."""
    return (f"RMSE {_fmt(scores.rmse)} °C, MAE {_fmt(scores.mae)} °C, bias {_fmt(scores.bias, '+.2f')} °C, "
            f"NSE {_fmt(scores.nse)}, {scores.n_obs:,} observations")


def _fmt(value: float, spec: str = ".2f") -> str:
    return format(value, spec) if np.isfinite(value) else "n/a"
