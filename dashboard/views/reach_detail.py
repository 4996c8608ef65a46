"""One reach of the current run: hydrograph (predicted vs observed, periods shaded, masked observations marked),
predicted-vs-observed scatter and test error by month (°C)."""

from __future__ import annotations

import calendar

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from dashboard.state import AppState
from dashboard.views import maps
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

    The three plots are built once per run as DynamicMaps on :attr:`AppState.reach` (every element is
    always there, empty where a reach has nothing to show), so choosing another reach only sends its data
    to the browser instead of building new plots.
    """

    state = param.ClassSelector(class_=AppState, doc="Session state shared by all views.")

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._title = pn.pane.Markdown("Click a reach on the day map or the error map to see its hydrograph.",
                                       sizing_mode="stretch_width")
        self._chooser = pn.widgets.AutocompleteInput(label="…or type a reach id", options=[], restrict=True,
                                                     min_characters=1, case_sensitive=False, width=220,
                                                     placeholder="e.g. 1781_1")
        self._legend = pn.pane.HTML(self._legend_html(), margin=(0, 10))
        self._hydrograph = pn.pane.HoloViews(linked_axes=False, sizing_mode="stretch_width")
        self._scatter = pn.pane.HoloViews(linked_axes=False)
        self._months = pn.pane.HoloViews(linked_axes=False)
        self._plots = maps.box(pn.Column(self._legend, self._hydrograph, pn.Row(self._scatter, self._months),
                                         sizing_mode="stretch_width"), visible=False, sizing_mode="stretch_width")
        self._memo: tuple[tuple[int, str] | None, pd.DataFrame] = (None, pd.DataFrame())
        self._built_for: object = None
        self._spans: list[hv.VSpans] = []
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
        self._built_for = None  # the plots are built when the run's first reach is chosen, not on loading
        self._reach_changed()

    def _build_plots(self) -> None:
        """The run's three plots as DynamicMaps on the selected reach (once per run)."""
        if self._built_for is self.state.results:
            return
        results = self.state.results
        assert results is not None
        # The shaded periods are the run's, the same for every reach: built once (0.4 s per reach otherwise).
        self._spans = [hv.VSpans(split_spans(results.time, results.split, name), kdims=["date", TEMPERATURE]).opts(
            color=color, alpha=0.12) for name, color in SPLIT_COLORS.items()]
        reach = hv.streams.Params(self.state, ["reach"])
        self._hydrograph.object = hv.DynamicMap(self._hydrograph_plot, streams=[reach])
        self._scatter.object = hv.DynamicMap(self._scatter_plot, streams=[reach])
        self._months.object = hv.DynamicMap(self._month_plot, streams=[reach])
        self._built_for = self.state.results

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
        self._build_plots()
        results, reach = self.state.results, self.state.reach
        assert results is not None and reach is not None
        series = self._series(reach)
        info = self.state.resources.reaches.loc[reach]
        metrics = results.per_reach.loc[reach] if reach in results.per_reach.index else None
        score = (f"no test score (fewer than {MIN_GROUP_OBS} test observations)"
                 if metrics is None or not np.isfinite(metrics["rmse"]) else
                 f"test RMSE **{metrics['rmse']:.2f} °C**, bias {metrics['bias']:+.2f} °C, n = {int(metrics['n_obs'])}")
        held_out = results.is_held_out(reach)
        classes = observation_class(series, held_out)
        withheld = (f"hold-out reach: {int((classes == 'held out').sum()):,} training/validation observations withheld"
                    if held_out else f"{int((classes == 'masked').sum()):,} observations withheld by the sparsity mask")
        self._title.object = (f"### {maps.run_title(results.run, f'Reach {reach}')}\nParent segment "
                              f"{info[PARENT_SEGMENT]} · {info['length_m'] / 1000:.2f} km · "
                              f"{int(np.isfinite(series['observed']).sum()):,} observed days · {score} · {withheld}")

    def _series(self, reach: str | None) -> pd.DataFrame:
        """The reach's daily series (read once per reach for the title and the three plots), or an empty one
        (same columns) when no reach of the run is selected."""
        results = self.state.results
        assert results is not None
        if reach is None or reach not in results.reaches:
            return pd.DataFrame({"prediction": np.array([], float), "observed": np.array([], float),
                                 "used": np.array([], bool), "split": np.array([], str)}, index=pd.DatetimeIndex([]))
        key = (id(results), reach)
        if self._memo[0] != key:
            self._memo = (key, results.reach_series(reach))
        return self._memo[1]

    def _hydrograph_plot(self, reach: str | None) -> hv.Overlay:
        results = self.state.results
        assert results is not None
        series, time = self._series(reach), results.time
        held_out = reach is not None and reach in results.reaches and results.is_held_out(reach)
        classes = observation_class(series, held_out)
        layers: list[hv.Element] = list(self._spans)
        if results.is_ensemble and "prediction_q05" in series:
            for low, high, label, alpha in (("prediction_q05", "prediction_q95", "5–95 % of members", 0.25),
                                            ("prediction_q25", "prediction_q75", "25–75 % of members", 0.45)):
                layers.append(hv.Area((series.index, series[low], series[high]), "date", [TEMPERATURE, "upper"],
                                      label=label).opts(color="#3b7dd8", alpha=alpha, line_width=0))
        label = "ensemble mean" if results.is_ensemble else "predicted"
        layers.append(hv.Curve((series.index, series["prediction"]), "date", TEMPERATURE, label=label).opts(
            color="#444444", line_width=1.3, tools=["hover"]))
        for key, (label, color, marker) in OBS_CLASSES.items():
            days = classes.index[classes == key]
            layers.append(hv.Scatter((days, series.loc[days, "observed"]), "date", TEMPERATURE, label=label).opts(
                color=color, marker=marker, size=5 if marker == "circle" else 7, tools=["hover"]))
        center = pd.Timestamp(self.state.date) if self.state.date is not None else time[len(time) // 2]
        if len(classes) and not ((classes.index > center - pd.Timedelta(days=365))
                                 & (classes.index < center + pd.Timedelta(days=365))).any():
            center = classes.index[np.abs(classes.index - center).argmin()]  # show the nearest observations
        xlim = (max(center - pd.Timedelta(days=365), time[0]), min(center + pd.Timedelta(days=365), time[-1]))
        title = maps.run_title(results.run, f"Daily water temperature, reach {reach}") if reach else ""
        return hv.Overlay(layers).opts(
            height=360, responsive=True, xlim=xlim, legend_position="top", legend_cols=5, show_grid=True,
            active_tools=["wheel_zoom"], title=title, xlabel="date", ylabel=TEMPERATURE, framewise=True)

    def _scatter_plot(self, reach: str | None) -> hv.Overlay:
        series = self._series(reach)
        observed = series[np.isfinite(series["observed"].to_numpy(dtype=float))]
        values = observed[["observed", "prediction"]].to_numpy(dtype=float)
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()) - 1, float(finite.max()) + 1) if finite.size else (0.0, 30.0)
        layers = [hv.Curve([(low, low), (high, high)], "observed (°C)", "predicted (°C)", label="1:1").opts(
            color="#888888", line_dash="dashed")]
        for split, color in zip(SPLITS, ("#1f77b4", "#ff7f0e", "#111111"), strict=True):
            chunk = observed[observed["split"] == split]
            layers.append(hv.Scatter((chunk["observed"], chunk["prediction"]), "observed (°C)", "predicted (°C)",
                                     label=SPLIT_NAMES[split]).opts(color=color, size=4, alpha=0.6))
        return hv.Overlay(layers).opts(width=380, height=340, xlim=(low, high), ylim=(low, high), framewise=True,
                                       legend_position="top_left", title="Predicted vs observed", show_grid=True)

    def month_errors(self, reach: str | None) -> pd.DataFrame:
        """Test error of ``reach`` by month (``month`` as Jan…Dec, Scores fields, °C); empty rows without a reach."""
        results = self.state.results
        if results is None or reach is None or reach not in results.reaches:
            return pd.DataFrame({"month": list(calendar.month_abbr[1:]), "rmse": np.nan, "bias": np.nan, "n_obs": 0})
        errors = results.monthly_errors(reach)
        return errors.assign(month=[calendar.month_abbr[int(m)] for m in errors["month"]])

    def _month_plot(self, reach: str | None) -> hv.Overlay:
        table = self.month_errors(reach)
        rmse = hv.Bars(table, "month", ["rmse", "n_obs"], label="RMSE").opts(
            color="#d62728", alpha=0.8, tools=["hover"], hover_tooltips=[("RMSE", "@rmse{0.00} °C"), ("n", "@n_obs")])
        bias = hv.Scatter(table, "month", ["bias", "n_obs"], label="bias (predicted − observed)").opts(
            color="#1f77b4", marker="diamond", size=11, tools=["hover"],
            hover_tooltips=[("bias", "@bias{+0.00} °C"), ("n", "@n_obs")])
        zero = hv.HLine(0).opts(color="#888888", line_width=1)
        return (rmse * bias * zero).opts(
            width=520, height=340, show_grid=True, ylabel="test error (°C)", xlabel="", legend_position="top",
            framewise=True, title=f"Test error by month (empty: fewer than {MIN_GROUP_OBS} observations)")

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(pn.Row(self._title, self._chooser, sizing_mode="stretch_width"), self._plots,
                         sizing_mode="stretch_width")
