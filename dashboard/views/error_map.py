"""Per-reach test-period errors of the current run (RMSE, bias or MAE, °C): map and sortable table."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
from bokeh.models import NumberFormatter

from dashboard.design import CHOICE_BUTTONS
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
#: Colours of values beyond a map's colour scale (clipped): above its top, below its bottom.
CLIP_HIGH, CLIP_LOW = "#000000", "#7b3294"
#: What the tables print for a missing score, and why a score is missing.
MISSING = "–"
MISSING_NOTE = (f"{MISSING}: no score (fewer than {MIN_GROUP_OBS} test observations; NSE also when the observations "
                "are constant).")


@dataclass(frozen=True)
class ColourScale:
    """A map's colour scale.

    Attributes:
        clim: (low, high) limits in the values' units (°C for the errors); values beyond them are drawn in
            :data:`CLIP_LOW` / :data:`CLIP_HIGH`, so clipped extremes stay visible as such.
        cmap: colour map name.
        label: colour-bar label (with units).
    """

    clim: tuple[float, float]
    cmap: str
    label: str

    @classmethod
    def of_errors(cls, metric: str, values: np.ndarray) -> ColourScale:
        """The scale of :func:`dashboard.views.maps.error_limits` for per-reach ``metric`` values (°C)."""
        clim, cmap = maps.error_limits(metric, values)
        return cls(clim, cmap, Scores.LABELS[metric])

    def clipped(self, values: np.ndarray) -> int:
        """How many of ``values`` lie beyond :attr:`clim` (NaN excluded)."""
        finite = values[np.isfinite(values)]
        return int(((finite < self.clim[0]) | (finite > self.clim[1])).sum())


def metric_options(metrics: list[str]) -> dict[str, str]:
    """Buttons choosing a per-reach score: its label (:attr:`msgl_core.Scores.LABELS`) → name."""
    return {Scores.LABELS[m]: m for m in metrics}


def error_overlay(resources: Resources, reaches: pd.Index, values: pd.DataFrame, column: str, scale: ColourScale,
                  hover: Mapping[str, tuple[str, str]] | None = None) -> hv.Overlay:
    """Reaches of a domain in grey, reaches with a row in ``values`` coloured by ``values[column]`` as thick lines
    and dots (values beyond the scale in the clip colours).

    ``values`` is indexed by reach id; ``hover`` maps its columns to (label, Bokeh number format) shown on hover
    (default: the scores :data:`SHOWN`, which ``values`` then needs).
    """
    hover = hover or {c: (Scores.LABELS[c], HOVER_FORMAT[c]) for c in SHOWN}
    pieces = resources.reach_pieces[resources.reach_pieces["reach"].isin(reaches)]
    gauged = values.index.intersection(reaches)
    shown = values.loc[gauged]
    colored = pieces[pieces["reach"].isin(gauged)]
    colored = colored.assign(value=shown[column].reindex(colored["reach"]).to_numpy())
    dots = pd.DataFrame({"x": resources.reaches.loc[gauged, "x"].to_numpy(),
                         "y": resources.reaches.loc[gauged, "y"].to_numpy(), "reach": gauged.to_numpy(),
                         **{c: shown[c].to_numpy() for c in hover}, "value": shown[column].to_numpy()})
    tooltips = [("reach", "@reach"), *((label, f"@{{{c}}}{fmt}") for c, (label, fmt) in hover.items())]
    colours = {"color": "value", "cmap": scale.cmap, "clim": scale.clim,
               "clipping_colors": {"NaN": maps.NAN_COLOR, "min": CLIP_LOW, "max": CLIP_HIGH}}
    lines = maps.segments(colored[[*PIECE_COLUMNS, "value", "reach"]], ["value", "reach"]).opts(
        line_width=4, tools=[], **colours)
    points = maps.points(dots, ["value", "reach", *hover]).opts(
        size=10, line_color="black", line_width=1, colorbar=True, clabel=scale.label, tools=["hover"],
        hover_tooltips=tooltips, **colours)
    return maps.grey_lines(pieces, 1.5) * lines * points


class ErrorMap(TabView):
    """The test-period error of every gauged reach on a map (click selects the reach) and in a table."""

    tab = "errors"

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._metric = pn.widgets.RadioButtonGroup.from_param(
            self.state.param.error_metric, options=metric_options(self.state.param.error_metric.objects),
            label="Metric", **CHOICE_BUTTONS)
        self._plot = pn.pane.HoloViews(linked_axes=False)
        self._plot_box = maps.box(self._plot)
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
            self._plot_box.visible = self._table.visible = False
            return
        r, metric = self.state.resources, self.state.error_metric
        values = results.per_reach[metric].to_numpy(dtype=float)
        scale = ColourScale.of_errors(metric, values)
        bounds = Bounds.of(r.reaches.loc[results.reaches])
        overlay = maps.basemap(r, self.state.basemap) * error_overlay(r, results.reaches, results.per_reach, metric, scale)
        title = maps.run_title(results.run, f"Test-period {Scores.LABELS[metric]} per gauged reach")
        overlay = overlay.opts(**maps.map_options(bounds, WIDTH, MAX_HEIGHT, title))
        hv.streams.Tap(source=overlay, x=None, y=None).add_subscriber(self._on_tap)
        self._plot.object = overlay
        metrics = results.run.metrics
        gauged = int(np.isfinite(values).sum())
        sections = "; ".join(f"{SECTION_NAMES.get(name, name)}: {_overall(scores)}" for name, scores in metrics.sections().items())
        self._summary.object = (
            f"**{results.run.label()}**  \nTest periods: {', '.join(f'{a} to {b}' for a, b in metrics.test_periods)}. "
            f"Overall ({sections}); {gauged} of {len(results.reaches)} reaches have at least {MIN_GROUP_OBS} "
            f"test observations for a score (grey: fewer); beyond the colour scale: black above, purple below. "
            f"Click a reach or a row for its hydrograph.  \n{MISSING_NOTE}")
        shown = [*SHOWN, "holdout"] if results.per_reach["holdout"].any() else list(SHOWN)
        table = results.per_reach[shown].sort_values(metric, ascending=False, key=np.abs if metric == "bias" else None)
        table = table.rename(columns=Scores.LABELS)
        self._table.param.update(value=table.round(3), visible=True, height=min(560, HEADER_PX + 26 * len(table)),
                                 formatters=score_formatters([c for c in SHOWN if c != "n_obs"]))
        self._plot_box.visible = True

    def _on_tap(self, x: float | None, y: float | None) -> None:
        self.state.pick_reach(x, y)

    def _clicked_row(self, event: object) -> None:
        row = getattr(event, "row", None)
        if row is not None and 0 <= row < len(self._table.value):
            self.state.select_reach(str(self._table.value.index[row]))

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self._metric, self._summary, pn.FlexBox(self._plot_box, self._table), sizing_mode="stretch_width")


def score_formatters(scores: list[str]) -> dict[str, NumberFormatter]:
    """Table formatters of the ``scores`` columns (named by :attr:`msgl_core.Scores.LABELS`): two decimals, and
    :data:`MISSING` (not "NaN") where a score is missing."""
    return {Scores.LABELS[c]: NumberFormatter(format="0.00", nan_format=MISSING, null_format=MISSING) for c in scores}


def _overall(scores: Scores) -> str:
    """One section's overall test scores, e.g. ``RMSE 1.52 °C, MAE 1.20 °C, bias +0.10 °C, NSE 0.91, 120 observations``."""
    return (f"RMSE {_fmt(scores.rmse)} °C, MAE {_fmt(scores.mae)} °C, bias {_fmt(scores.bias, '+.2f')} °C, "
            f"NSE {_fmt(scores.nse)}, {scores.n_obs:,} observations")


def _fmt(value: float, spec: str = ".2f") -> str:
    return format(value, spec) if np.isfinite(value) else "n/a"
