"""Calibration of an ensemble run: does the members' spread match its errors on the test days?

Everything shown is the run's own record (``metrics.json``, written by :func:`msgl_core.evaluate.ensemble
.evaluate_ensemble`) and the records of the cached runs that saw the same data (:func:`msgl_core.setup_difference`):
nothing is sampled or scored here. From top to bottom: the overall scores with what the ensemble was learned from;
the rank histogram of the test observations among the members (flat when calibrated, U-shaped when the spread is
too narrow, a slope when biased); the reliability diagram of P(T > 20 °C) and P(T > 25 °C) (on the diagonal when
a forecast probability p comes true a fraction p of the time); and the scores beside the run's base run and its
baselines (a deterministic run's CRPS is its MAE).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import panel as pn
from bokeh.models import ColumnDataSource, HoverTool, NumberFormatter, Span
from bokeh.palettes import Category10
from bokeh.plotting import figure

from dashboard.views.tab_view import TabView
from msgl_core import Run, prior_learned_from, run_outcome, setup_difference

#: Columns of the table of comparable runs (from :func:`msgl_core.run_outcome`) and their headers.
SCORES = {"test_rmse": "RMSE of mean °C", "crps": "CRPS °C", "crpss": "CRPSS", "ssr": "SSR",
          "coverage_90": "coverage 5–95 %", "brier_20": "Brier 20 °C", "brier_25": "Brier 25 °C"}
FIGURE_WIDTH, FIGURE_HEIGHT = 430, 320


def comparable_runs(run: Run, cached: list[Run]) -> pd.DataFrame:
    """The scores of ``run`` and of every cached run that saw the same data (same split, masks, seed and hold-out:
    :func:`msgl_core.setup_difference`), best CRPS first: columns ``run``, ``variant`` and :data:`SCORES`."""
    same = [other for other in cached if setup_difference(run.config, other.config) is None]
    if not any(other.path == run.path for other in same):
        same.append(run)
    rows = [{"run": other.path.name, **vars(run_outcome(other))} for other in same]  # ``run`` at least
    table = pd.DataFrame(rows, columns=["run", "variant", *SCORES])
    return table.sort_values("crps", na_position="last").reset_index(drop=True)


def rank_figure(counts: tuple[int, ...]) -> figure:
    """Bars of the rank-histogram ``counts`` (rank 1 = observation below every member) with the flat expectation."""
    ranks = np.arange(1, len(counts) + 1)
    fig = figure(width=FIGURE_WIDTH, height=FIGURE_HEIGHT, tools="save", toolbar_location="right",
                 title="Rank histogram", x_axis_label="rank of the observation among the members (1: below all)",
                 y_axis_label="test observations")
    bars = fig.vbar(x="rank", top="count", width=0.8, source=ColumnDataSource({"rank": ranks, "count": list(counts)}),
                    color="#3b7dd8", alpha=0.8)
    fig.add_layout(Span(location=sum(counts) / max(len(counts), 1), dimension="width", line_color="#444444",
                        line_dash="dashed", line_width=1.5))
    fig.add_tools(HoverTool(renderers=[bars], tooltips=[("rank", "@rank"), ("observations", "@count")]))
    fig.toolbar.logo = None
    return fig


def reliability_figure(bins: tuple) -> figure:
    """Observed frequency against forecast probability per bin (:class:`msgl_core.evaluate.probabilistic
    .ReliabilityBins`) for each threshold, with the diagonal of perfect reliability; empty bins are left out."""
    fig = figure(width=FIGURE_WIDTH, height=FIGURE_HEIGHT, tools="save", toolbar_location="right",
                 x_range=(0, 1), y_range=(0, 1), title="Reliability of P(T > 20 / 25 °C)",
                 x_axis_label="forecast probability (members above)", y_axis_label="observed frequency")
    fig.line([0, 1], [0, 1], color="#888888", line_dash="dashed")
    renderers = []
    for item, color in zip(bins, Category10[10], strict=False):
        keep = np.array(item.count) > 0
        source = ColumnDataSource({"forecast": np.array(item.forecast)[keep], "observed": np.array(item.observed)[keep],
                                   "count": np.array(item.count)[keep]})
        label = f"T > {item.threshold:g} °C"
        fig.line("forecast", "observed", source=source, color=color, line_width=2, legend_label=label)
        renderers.append(fig.scatter("forecast", "observed", source=source, color=color, size=7, legend_label=label))
    fig.add_tools(HoverTool(renderers=renderers, tooltips=[("forecast", "@forecast{0.00}"),
                                                           ("observed", "@observed{0.00}"), ("pairs", "@count")]))
    fig.legend.location = "top_left"
    fig.toolbar.logo = None
    return fig


class Calibration(TabView):
    """The calibration of the current ensemble run (rank histogram, reliability, scores beside its baselines)."""

    tab = "calibration"

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._summary = pn.pane.Markdown(sizing_mode="stretch_width")
        self._plots = pn.Row()
        self._table_note = pn.pane.Markdown(sizing_mode="stretch_width")
        self._table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, pagination=None,
                                           visible=False, sizing_mode="stretch_width",
                                           formatters={label: NumberFormatter(format="0.000", nan_format="–")
                                                       for label in SCORES.values()})
        self.state.param.watch(self.refresh, ["results", "cached_runs"])
        self.refresh()

    def draw(self) -> None:
        """Show the current run's calibration, or say why there is none."""
        results = self.state.results
        record = None if results is None else results.run.metrics.probabilistic
        if results is None or record is None:
            self._summary.object = (
                "Calibration is shown for ensemble runs (`ot_diffusion`, `ot_broadcast`, `msgl_gaussian`, `msgl_seeds`): load one, "
                "or train one with `msgl train --variant ot_diffusion`. A deterministic run has one value per "
                "reach-day, so it has no spread to calibrate.")
            self._plots.objects, self._table.visible, self._table_note.object = [], False, ""
            return
        run, section = results.run, record.fine
        scores = section.overall
        try:
            learned = prior_learned_from(run.path)
        except ValueError as error:
            learned = str(error)
        self._summary.object = (
            f"**{run.label()}** · {record.n_members} members · test periods, {scores.n_obs:,} observations of the "
            f"gauged reaches: CRPS **{_fmt(scores.crps)} °C**, CRPSS {_fmt(scores.crpss)} against the base run, "
            f"spread–skill ratio {_fmt(scores.ssr)} (1: the spread matches the error; below 1: too narrow), "
            f"{_fmt(scores.coverage_90)} of the observations inside the 5–95 % member interval (0.90 expected), "
            f"Brier {_fmt(scores.brier_20)} (20 °C) and {_fmt(scores.brier_25)} (25 °C).  \n"
            f"*Learned from: {learned}.*")
        self._plots.objects = [pn.pane.Bokeh(rank_figure(section.rank_histogram)),
                               pn.pane.Bokeh(reliability_figure(section.reliability))]
        table = comparable_runs(run, list(self.state.cached_runs))
        self._table_note.object = (
            f"**Against the runs that saw the same data** ({run.config.basin}, ρ {run.config.sparsity * 100:g} %, "
            f"seed {run.config.seed}) in the run cache: a deterministic run's CRPS is its MAE. "
            + ("Only this run is cached: `msgl compare --variants msgl,msgl_gaussian,msgl_seeds,ot_broadcast,ot_diffusion "
               "--members 3` trains its baselines." if len(table) == 1 else ""))
        self._table.param.update(value=table.drop(columns="run").rename(columns=SCORES), visible=True)

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self._summary, self._plots, self._table_note, self._table, sizing_mode="stretch_width")


def _fmt(value: float) -> str:
    return f"{value:.2f}" if np.isfinite(value) else "n/a"
