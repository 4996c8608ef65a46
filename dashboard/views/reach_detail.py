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

SPLIT_COLORS = {"train": "#2ca02c", "val": "#ff7f0e", "test": "#d62728"}
SPLIT_NAMES = {"train": "training", "val": "validation", "test": "test"}
#: Observation classes on the hydrograph: (label, colour, marker).
OBS_CLASSES = {
    "used": ("observed, used for training/validation", "#1f77b4", "circle"),
    "masked": ("observed, withheld by the sparsity mask", "#ff7f0e", "x"),
    "test": ("observed, test period", "#111111", "circle"),
    "other": ("observed, outside the splits", "#999999", "circle"),
}
TEMPERATURE = "water temperature (°C)"


def split_spans(time: pd.DatetimeIndex, split: np.ndarray, name: str) -> list[tuple[pd.Timestamp, pd.Timestamp]]:
    """Contiguous runs of days labelled ``name`` as (first day, day after the last) pairs."""
    inside = np.concatenate([[False], split == name, [False]])
    starts = np.flatnonzero(~inside[:-1] & inside[1:])
    stops = np.flatnonzero(inside[:-1] & ~inside[1:])
    return [(time[a], time[b - 1] + pd.Timedelta(days=1)) for a, b in zip(starts, stops, strict=True)]


def observation_class(series: pd.DataFrame) -> pd.Series:
    """For each observed day: 'used', 'masked' (withheld by the sparsity mask), 'test' or 'other'."""
    observed = series[np.isfinite(series["observed"].to_numpy())]
    fit = observed["split"].isin(["train", "val"]).to_numpy()
    used = observed["used"].to_numpy()
    labels = np.where(fit & used, "used", np.where(fit, "masked", np.where(observed["split"] == "test", "test", "other")))
    return pd.Series(labels, index=observed.index)


class ReachDetail(Viewer):
    """Hydrograph, scatter and monthly errors of the selected reach; also lets the user pick a reach by id."""

    state = param.ClassSelector(class_=AppState, doc="Session state shared by all views.")

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._title = pn.pane.Markdown("Click a reach on the day map or the error map to see its hydrograph.",
                                       sizing_mode="stretch_width")
        self._chooser = pn.widgets.AutocompleteInput(label="…or type a reach id", options=[], restrict=True,
                                                     min_characters=1, case_sensitive=False, width=220,
                                                     placeholder="e.g. 1781_1")
        self._legend = pn.pane.HTML(self._legend_html(), margin=(0, 10), visible=False)
        self._hydrograph = pn.pane.HoloViews(linked_axes=False, sizing_mode="stretch_width", visible=False)
        self._scatter = pn.pane.HoloViews(linked_axes=False, visible=False)
        self._months = pn.pane.HoloViews(linked_axes=False, visible=False)
        self._chooser.param.watch(lambda event: self.state.select_reach(event.new), "value")
        self.state.param.watch(self._options, "results")
        self.state.param.watch(self._draw, ["results", "reach"])
        self._options()
        self._draw()

    @staticmethod
    def _legend_html() -> str:
        swatches = " ".join(f'<span style="background:{c};opacity:0.35;padding:0 10px;margin-left:8px"></span> '
                            f"{SPLIT_NAMES[s]}" for s, c in SPLIT_COLORS.items())
        return f'<span style="font-size:0.85em">Shaded periods: {swatches}</span>'

    def _options(self, *events: object) -> None:
        results = self.state.results
        if results is None:
            self._chooser.options = []
            return
        gauged = list(results.metrics.index.intersection(results.reaches))
        self._chooser.options = gauged + [r for r in results.reaches if r not in set(gauged)]

    def _draw(self, *events: object) -> None:
        results, reach = self.state.results, self.state.reach
        shown = results is not None and reach is not None and reach in results.reaches
        for pane in (self._hydrograph, self._scatter, self._months, self._legend):
            pane.visible = shown
        if not shown:
            self._title.object = ("Click a reach on the day map or the error map to see its hydrograph."
                                  if results is not None else "Load or train a run, then click a reach.")
            return
        assert results is not None and reach is not None
        series = results.reach_series(reach)
        info = self.state.resources.reaches.loc[reach]
        metrics = results.metrics.loc[reach] if reach in results.metrics.index else None
        score = ("no test score (too few test observations)" if metrics is None or not np.isfinite(metrics["rmse"]) else
                 f"test RMSE **{metrics['rmse']:.2f} °C**, bias {metrics['bias']:+.2f} °C, n = {int(metrics['n_obs'])}")
        n_masked = int((observation_class(series) == "masked").sum())
        self._title.object = (f"### Reach {reach}\nParent segment {info['segment']} · {info['length_m'] / 1000:.2f} km · "
                              f"{int(np.isfinite(series['observed']).sum()):,} observed days · {score} · "
                              f"{n_masked:,} observations withheld by the sparsity mask")
        self._hydrograph.object = self._hydrograph_plot(series, results.time)
        self._scatter.object = self._scatter_plot(series)
        self._months.object = self._month_plot(results.monthly_errors(reach))

    def _hydrograph_plot(self, series: pd.DataFrame, time: pd.DatetimeIndex) -> hv.Overlay:
        split = series["split"].to_numpy()
        layers: list[hv.Element] = [
            hv.VSpans(split_spans(time, split, name), kdims=["date", TEMPERATURE]).opts(color=color, alpha=0.12)
            for name, color in SPLIT_COLORS.items() if (split == name).any()]
        layers.append(hv.Curve((series.index, series["prediction"]), "date", TEMPERATURE, label="predicted").opts(
            color="#444444", line_width=1.3, tools=["hover"]))
        classes = observation_class(series)
        for key, (label, color, marker) in OBS_CLASSES.items():
            days = classes.index[classes == key]
            if len(days):
                layers.append(hv.Scatter((days, series.loc[days, "observed"]), "date", TEMPERATURE, label=label).opts(
                    color=color, marker=marker, size=5 if marker == "circle" else 7, tools=["hover"]))
        center = pd.Timestamp(self.state.date) if self.state.date is not None else time[len(time) // 2]
        if len(classes) and not ((classes.index > center - pd.Timedelta(days=365))
                                 & (classes.index < center + pd.Timedelta(days=365))).any():
            center = classes.index[np.abs(classes.index - center).argmin()]  # show the nearest observations
        xlim = (max(center - pd.Timedelta(days=365), time[0]), min(center + pd.Timedelta(days=365), time[-1]))
        return hv.Overlay(layers).opts(
            height=360, responsive=True, xlim=xlim, legend_position="top", legend_cols=5, show_grid=True,
            active_tools=["wheel_zoom"], title="Daily water temperature (zoom or pan for other years)")

    @staticmethod
    def _scatter_plot(series: pd.DataFrame) -> hv.Overlay:
        observed = series[np.isfinite(series["observed"].to_numpy())]
        values = observed[["observed", "prediction"]].to_numpy()
        finite = values[np.isfinite(values)]
        low, high = (float(finite.min()) - 1, float(finite.max()) + 1) if finite.size else (0.0, 30.0)
        layers = [hv.Curve([(low, low), (high, high)], "observed (°C)", "predicted (°C)", label="1:1").opts(
            color="#888888", line_dash="dashed")]
        for split, label, color in (("train", "training", "#1f77b4"), ("val", "validation", "#ff7f0e"),
                                    ("test", "test", "#111111")):
            chunk = observed[observed["split"] == split]
            if len(chunk):
                layers.append(hv.Scatter((chunk["observed"], chunk["prediction"]), "observed (°C)", "predicted (°C)",
                                         label=label).opts(color=color, size=4, alpha=0.6))
        return hv.Overlay(layers).opts(width=380, height=340, xlim=(low, high), ylim=(low, high),
                                       legend_position="top_left", title="Predicted vs observed", show_grid=True)

    @staticmethod
    def _month_plot(errors: pd.DataFrame) -> hv.Overlay:
        table = errors.assign(month=[calendar.month_abbr[int(m)] for m in errors["month"]])
        rmse = hv.Bars(table, "month", ["rmse", "n_obs"], label="RMSE").opts(
            color="#d62728", alpha=0.8, tools=["hover"], hover_tooltips=[("RMSE", "@rmse{0.00} °C"), ("n", "@n_obs")])
        bias = hv.Scatter(table, "month", ["bias", "n_obs"], label="bias (predicted − observed)").opts(
            color="#1f77b4", marker="diamond", size=11, tools=["hover"],
            hover_tooltips=[("bias", "@bias{+0.00} °C"), ("n", "@n_obs")])
        zero = hv.HLine(0).opts(color="#888888", line_width=1)
        return (rmse * bias * zero).opts(
            width=520, height=340, show_grid=True, ylabel="test error (°C)", xlabel="", legend_position="top",
            title="Test error by month (empty: fewer than 3 observations)")

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(pn.Row(self._title, self._chooser, sizing_mode="stretch_width"), self._legend,
                         self._hydrograph, pn.Row(self._scatter, self._months), sizing_mode="stretch_width")
