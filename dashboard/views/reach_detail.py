"""One reach of the current run: hydrograph (predicted vs observed, periods shaded, masked observations marked),
predicted-vs-observed scatter and test error by month (°C)."""

from __future__ import annotations

import calendar

import numpy as np
import pandas as pd
import panel as pn
import param
from bokeh.models import ColumnDataSource, FactorRange, GlyphRenderer, HoverTool, Range1d, Span
from bokeh.plotting import figure
from panel.viewable import Viewer

from dashboard.results import ENSEMBLE_QUANTILES, RunResults
from dashboard.state import AppState
from dashboard.views import figures, maps
from msgl_core import MIN_GROUP_OBS, PARENT_SEGMENT, SPLIT_NAMES, SPLITS

#: Shading of each split (msgl_core.SPLITS) on the hydrograph.
SPLIT_COLORS = dict(zip(SPLITS, ("#2ca02c", "#ff7f0e", "#d62728"), strict=True))
#: Observation classes on the hydrograph: (label, colour, marker).
OBS_CLASSES = {
    "used": ("observed, used for training/validation", "#1f77b4", "circle"),
    "masked": ("observed, withheld by the sparsity mask", "#ff7f0e", "x"),
    "held out": ("observed, withheld: hold-out reach", "#9467bd", "x"),
    "test": (f"observed, {SPLIT_NAMES['test']}", "#111111", "circle"),
    "other": (f"observed, {SPLIT_NAMES['']}", "#999999", "circle"),
}
TEMPERATURE = "water temperature (°C)"
#: After a run is loaded in an open page, its (hidden) reach plots are made this much later, ms: once the day map
#: is drawn, before a reach is likely to be clicked.
PREPARE_AFTER_MS = 1500


def split_spans(time: pd.DatetimeIndex, split: np.ndarray, name: str) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Contiguous runs of days labelled ``name`` as (first day, day after the last) pairs."""
    inside = np.concatenate([[False], split == name, [False]])
    starts = np.flatnonzero(~inside[:-1] & inside[1:])
    stops = np.flatnonzero(inside[:-1] & ~inside[1:])
    return [(time[a], time[b - 1] + pd.Timedelta(days=1)) for a, b in zip(starts, stops, strict=True)]


def observation_class(series: pd.DataFrame, held_out: bool = False) -> pd.Series:
    """For each observed day of a reach's :meth:`~dashboard.results.RunResults.reach_series`: 'used',
    'masked' (withheld by the sparsity mask), 'held out' (a hold-out reach's training and validation
    days), 'test' or 'other' (outside the splits)."""
    observed = series[np.isfinite(series["observed"].to_numpy())]
    fit = observed["split"].isin(["train", "val"]).to_numpy()
    used = observed["used"].to_numpy()
    withheld = "held out" if held_out else "masked"
    labels = np.where(fit & used, "used", np.where(fit, withheld, np.where(observed["split"] == "test", "test", "other")))
    return pd.Series(labels, index=observed.index)


class ReachDetail(Viewer):
    """Hydrograph, scatter and monthly errors of the selected reach; also lets the user pick a reach by id.

    The three Bokeh figures are built once per session, on the first chosen reach (:class:`ReachPlots`);
    choosing another reach then only sends its data to the browser.
    """

    state = param.ClassSelector(class_=AppState, doc="Session state shared by all views.")

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._title = pn.pane.Markdown("Click a reach on the day map or the error map to see its hydrograph.",
                                       sizing_mode="stretch_width")
        self._chooser = pn.widgets.AutocompleteInput(label="…or type a reach id", options=[], restrict=True,
                                                     min_characters=1, case_sensitive=False, width=220,
                                                     placeholder="e.g. 1781_1")
        self._plots = maps.box(pn.Column(sizing_mode="stretch_width"), visible=False, sizing_mode="stretch_width")
        self.figures: ReachPlots | None = None
        self._memo: tuple[tuple[int, str] | None, pd.DataFrame] = (None, pd.DataFrame())
        self._chooser.param.watch(lambda event: self.state.select_reach(event.new), "value")
        self.state.param.watch(self._results_changed, "results")
        self.state.param.watch(self._reach_changed, "reach")
        self._results_changed()

    @staticmethod
    def _legend_html() -> str:
        swatches = " ".join(f'<span style="background:{c};opacity:0.35;padding:0 10px;margin-left:8px"></span> '
                            f"{SPLIT_NAMES[s]}" for s, c in SPLIT_COLORS.items())
        return f'<span style="font-size:0.85em">Shaded periods: {swatches}</span>'

    def _results_changed(self, *events: object) -> None:
        results = self.state.results
        if results is None:
            self._chooser.options = []
        else:
            gauged = list(results.per_reach.index.intersection(results.reaches))
            self._chooser.options = gauged + [r for r in results.reaches if r not in set(gauged)]
            document = pn.state.curdoc
            if self.figures is None and document is not None and document.session_context is not None and pn.state.loaded:
                # A run loaded in an open page: make the (hidden) plots once its maps are drawn, so that the first
                # reach clicked only sends its data (a page opened on a shared link makes them on its first reach).
                pn.state.add_periodic_callback(self._prepare, period=PREPARE_AFTER_MS, count=1)
        self._reach_changed()

    def _prepare(self) -> None:
        results = self.state.results
        if results is not None:
            self._figures().show_run(results)

    def _shown(self) -> bool:
        results, reach = self.state.results, self.state.reach
        return results is not None and reach is not None and reach in results.reaches

    def _reach_changed(self, *events: object) -> None:
        shown = self._shown()
        self._plots.visible = shown
        if not shown:
            self._title.object = ("Click a reach on the day map or the error map to see its hydrograph."
                                  if self.state.results is not None else "Load or train a run, then click a reach.")
            return
        results, reach = self.state.results, self.state.reach
        assert results is not None and reach is not None
        series = self._series(reach)
        held_out = results.is_held_out(reach)
        classes = observation_class(series, held_out)
        self._figures().show(results, reach, series, classes, self.month_errors(reach), self.state.date)
        info = self.state.resources.reaches.loc[reach]
        metrics = results.per_reach.loc[reach] if reach in results.per_reach.index else None
        score = (f"no test score (fewer than {MIN_GROUP_OBS} test observations)"
                 if metrics is None or not np.isfinite(metrics["rmse"]) else
                 f"test RMSE **{metrics['rmse']:.2f} °C**, bias {metrics['bias']:+.2f} °C, n = {int(metrics['n_obs'])}")
        withheld = (f"hold-out reach: {int((classes == 'held out').sum()):,} training/validation observations withheld"
                    if held_out else f"{int((classes == 'masked').sum()):,} observations withheld by the sparsity mask")
        self._title.object = (f"### {maps.run_title(results.run, f'Reach {reach}')}\nParent segment "
                              f"{info[PARENT_SEGMENT]} · {info['length_m'] / 1000:.2f} km · "
                              f"{int(np.isfinite(series['observed']).sum()):,} observed days · {score} · {withheld}")

    def _figures(self) -> ReachPlots:
        """The panel's figures, made on first use (not with the page)."""
        if self.figures is None:
            self.figures = ReachPlots()
            self._plots[0].objects = [pn.pane.HTML(self._legend_html(), margin=(0, 10)),
                                      pn.pane.Bokeh(self.figures.hydrograph, sizing_mode="stretch_width"),
                                      pn.Row(pn.pane.Bokeh(self.figures.scatter), pn.pane.Bokeh(self.figures.months))]
        return self.figures

    def _series(self, reach: str) -> pd.DataFrame:
        """The reach's daily series (read once per reach for the title and the three plots)."""
        results = self.state.results
        assert results is not None
        key = (id(results), reach)
        if self._memo[0] != key:
            self._memo = (key, results.reach_series(reach))
        return self._memo[1]

    def month_errors(self, reach: str | None) -> pd.DataFrame:
        """Test error of ``reach`` by month (``month`` as Jan…Dec, Scores fields, °C); empty rows without a reach."""
        results = self.state.results
        if results is None or reach is None or reach not in results.reaches:
            return pd.DataFrame({"month": list(calendar.month_abbr[1:]), "rmse": np.nan, "bias": np.nan, "n_obs": 0})
        errors = results.monthly_errors(reach)
        return errors.assign(month=[calendar.month_abbr[int(m)] for m in errors["month"]])

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(pn.Row(self._title, self._chooser, sizing_mode="stretch_width"), self._plots,
                         sizing_mode="stretch_width")


class ReachPlots:
    """The reach panel's Bokeh figures (hydrograph, predicted vs observed, test error by month) and their data.

    Attributes:
        hydrograph: daily predicted temperature (°C; for an ensemble run the mean with 5–95 % and 25–75 % member
            bands) with the observations by class (:data:`OBS_CLASSES`) and the periods shaded; it shows the year
            either side of the chosen day (or of the nearest observations).
        scatter: predicted against observed temperature (°C) by split, with the 1:1 line.
        months: test RMSE (bars) and bias (diamonds) by calendar month, °C.
    """

    def __init__(self) -> None:
        tools = "pan,wheel_zoom,box_zoom,reset,save"
        hydrograph = figure(x_axis_type="datetime", height=360, sizing_mode="stretch_width", tools=tools,
                            active_scroll="wheel_zoom", x_range=Range1d(), x_axis_label="date", y_axis_label=TEMPERATURE)
        self._run: RunResults | None = None
        self._spans = {name: ColumnDataSource({"x0": [], "x1": []}) for name in SPLIT_COLORS}
        for name, color in SPLIT_COLORS.items():
            hydrograph.vstrip(x0="x0", x1="x1", source=self._spans[name], fill_color=color, fill_alpha=0.12, line_alpha=0)
        self._series = ColumnDataSource({"date": [], **{c: [] for c in ("prediction", *ENSEMBLE_QUANTILES)}})
        self._bands = [hydrograph.varea(x="date", y1=low, y2=high, source=self._series, fill_color="#3b7dd8",
                                        fill_alpha=alpha, legend_label=label, visible=False)
                       for low, high, label, alpha in (("prediction_q05", "prediction_q95", "5–95 % of members", 0.25),
                                                       ("prediction_q25", "prediction_q75", "25–75 % of members", 0.45))]
        self._curve = hydrograph.line("date", "prediction", source=self._series, color="#444444", line_width=1.3,
                                      legend_label="predicted")
        self._observed = {key: ColumnDataSource({"date": [], "observed": []}) for key in OBS_CLASSES}
        points = [hydrograph.scatter("date", "observed", source=self._observed[key], color=color, marker=marker,
                                     size=5 if marker == "circle" else 7, legend_label=label)
                  for key, (label, color, marker) in OBS_CLASSES.items()]
        hydrograph.add_tools(HoverTool(renderers=[self._curve], tooltips=[("date", "@date{%F}"), ("predicted",
                                       "@prediction{0.00} °C")], formatters={"@date": "datetime"}, mode="vline"),
                             HoverTool(renderers=points, tooltips=[("date", "@date{%F}"), ("observed",
                                       "@observed{0.00} °C")], formatters={"@date": "datetime"}))
        _legend_above(hydrograph, columns=5)
        self._items = list(hydrograph.legend[0].items)
        (self._curve_item,) = [item for item in self._items if item.renderers == [self._curve]]
        self.hydrograph = hydrograph

        scatter = figure(width=380, height=340, title="Predicted vs observed", x_axis_label="observed (°C)",
                         y_axis_label="predicted (°C)", x_range=Range1d(0, 30), y_range=Range1d(0, 30), tools=tools)
        self._diagonal = ColumnDataSource({"x": [0.0, 30.0]})
        scatter.line("x", "x", source=self._diagonal, color="#888888", line_dash="dashed", legend_label="1:1")
        self._by_split = {split: ColumnDataSource({"observed": [], "prediction": []}) for split in SPLITS}
        for split, color in zip(SPLITS, ("#1f77b4", "#ff7f0e", "#111111"), strict=True):
            scatter.scatter("observed", "prediction", source=self._by_split[split], color=color, size=4, alpha=0.6,
                            legend_label=SPLIT_NAMES[split])
        scatter.legend.update(location="top_left", background_fill_alpha=0.6, label_text_font_size="11px")
        self._scatter_items = list(scatter.legend[0].items)
        self.scatter = scatter

        months = figure(width=520, height=340, x_range=FactorRange(*calendar.month_abbr[1:]), tools="save",
                        y_axis_label="test error (°C)",
                        title=f"Test error by month\n(empty: fewer than {MIN_GROUP_OBS} observations)")
        self._months = ColumnDataSource({"month": [], "rmse": [], "bias": [], "n_obs": []})
        bars = months.vbar(x="month", top="rmse", width=0.8, source=self._months, color="#d62728", alpha=0.8,
                           legend_label="RMSE")
        bias = months.scatter("month", "bias", source=self._months, color="#1f77b4", marker="diamond", size=11,
                              legend_label="bias (predicted − observed)")
        months.add_layout(Span(location=0, dimension="width", line_color="#888888", line_width=1))
        months.add_tools(HoverTool(renderers=[bars], tooltips=[("RMSE", "@rmse{0.00} °C"), ("n", "@n_obs")]),
                         HoverTool(renderers=[bias], tooltips=[("bias", "@bias{+0.00} °C"), ("n", "@n_obs")]))
        _legend_above(months, columns=2)
        self.months = months
        for fig in (hydrograph, scatter, months):
            fig.toolbar.logo = None

    def show(self, results: RunResults, reach: str, series: pd.DataFrame, classes: pd.Series, month_errors: pd.DataFrame,
             date: object) -> None:
        """Show ``reach`` of run ``results``: its daily ``series`` (:meth:`RunResults.reach_series`), the class of
        each observed day (:func:`observation_class`) and its test errors by month; the hydrograph centres on
        ``date``."""
        with figures.hold(self.hydrograph, self.scatter, self.months):
            self.show_run(results)
            columns = ["prediction", *(ENSEMBLE_QUANTILES if results.is_ensemble else ())]
            self._series.data.update({c: series[c].to_numpy(dtype=np.float32) for c in columns})
            for band in self._bands:
                band.visible = results.is_ensemble
            self._curve_item.label = {"value": "ensemble mean" if results.is_ensemble else "predicted"}
            for key, source in self._observed.items():
                days = classes.index[classes == key]
                source.data = {"date": days.to_numpy(), "observed": series.loc[days, "observed"].to_numpy()}
            self.hydrograph.legend[0].items = [item for item in self._items if self._listed(item.renderers[0], results)]
            time = results.time
            center = pd.Timestamp(date) if date is not None else time[len(time) // 2]
            year = pd.Timedelta(days=365)
            if len(classes) and not ((classes.index > center - year) & (classes.index < center + year)).any():
                center = classes.index[np.abs(classes.index - center).argmin()]  # show the nearest observations
            self.hydrograph.x_range.update(start=max(center - year, time[0]), end=min(center + year, time[-1]))
            self.hydrograph.title.text = maps.run_title(results.run, f"Daily water temperature, reach {reach}")
            observed = series[np.isfinite(series["observed"].to_numpy(dtype=float))]
            values = observed[["observed", "prediction"]].to_numpy(dtype=float)
            finite = values[np.isfinite(values)]
            low, high = (float(finite.min()) - 1, float(finite.max()) + 1) if finite.size else (0.0, 30.0)
            self._diagonal.data = {"x": [low, high]}
            self.scatter.x_range.update(start=low, end=high)
            self.scatter.y_range.update(start=low, end=high)
            for split, source in self._by_split.items():
                chunk = observed[observed["split"] == split]
                source.data = {"observed": chunk["observed"].to_numpy(), "prediction": chunk["prediction"].to_numpy()}
            self.scatter.legend[0].items = [item for item in self._scatter_items if _has_data(item.renderers[0])]
            self._months.data = {c: month_errors[c].to_numpy() for c in ("month", "rmse", "bias", "n_obs")}

    def _listed(self, renderer: GlyphRenderer, results: RunResults) -> bool:
        """Whether the hydrograph's legend names ``renderer``: what this reach shows (the bands of an ensemble run,
        the prediction, and the observation classes it has)."""
        if renderer in self._bands:
            return results.is_ensemble
        return renderer is self._curve or _has_data(renderer)

    def show_run(self, results: RunResults) -> None:
        """The run's days and shaded periods (the same for every reach: sent once per run)."""
        if self._run is results:
            return
        self._run = results
        for name, source in self._spans.items():
            spans = split_spans(results.time, results.split, name)
            source.data = {"x0": np.array([a for a, _ in spans], dtype="datetime64[ns]"),
                           "x1": np.array([b for _, b in spans], dtype="datetime64[ns]")}
        missing = np.full(len(results.time), np.nan, dtype=np.float32)  # the bands' columns stay empty on other runs
        self._series.data = {"date": results.time.to_numpy(), **dict.fromkeys(["prediction", *ENSEMBLE_QUANTILES],
                                                                                missing)}


def _has_data(renderer: GlyphRenderer) -> bool:
    """Whether ``renderer`` has anything to draw (its legend entry is then shown)."""
    return any(len(column) for column in renderer.data_source.data.values())


def _legend_above(fig: figure, columns: int) -> None:
    """Move ``fig``'s legend above the plot, in ``columns`` columns."""
    legend = fig.legend[0]
    fig.center.remove(legend)
    legend.update(orientation="horizontal", ncols=columns, label_text_font_size="11px", spacing=8, margin=0,
                  border_line_alpha=0)
    fig.add_layout(legend, "above")
