"""Compare cached runs: test RMSE by variant and sparsity (table and chart), and two runs' per-reach errors side by side."""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

from dashboard.geometry import Bounds
from dashboard.results import METRIC_LABELS, per_reach_metrics
from dashboard.state import run_label, runs_table
from dashboard.views import maps
from dashboard.views.error_map import error_overlay
from dashboard.views.tab_view import TabView
from msgl_core.runs import Run

ALL = "all domains"
MAP_WIDTH, MAP_HEIGHT = 440, 520


def rmse_by_sparsity(table: pd.DataFrame) -> pd.DataFrame:
    """Mean, min and max test RMSE (°C) over seeds for each (variant, sparsity), sorted."""
    grouped = table.groupby(["variant", "sparsity"])["rmse"]
    return grouped.agg(["mean", "min", "max", "count"]).reset_index().sort_values(["variant", "sparsity"])


class CompareRuns(TabView):
    """Every cached run (of one domain, or all) by variant and sparsity, plus a side-by-side error map of two runs."""

    tab = "compare"

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._domain = pn.widgets.Select(label="Domain", width=220)
        self._table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, height=260, sizing_mode="stretch_width",
                                           show_index=False, pagination=None, selectable=False)
        self._chart = pn.pane.HoloViews(linked_axes=False)
        self._first = pn.widgets.Select(label="Run A", sizing_mode="stretch_width")
        self._second = pn.widgets.Select(label="Run B", sizing_mode="stretch_width")
        self._metric = pn.widgets.RadioButtonGroup.from_param(
            self.state.param.error_metric, options={"RMSE (°C)": "rmse", "bias (°C)": "bias", "MAE (°C)": "mae"})
        self._maps = pn.pane.HoloViews(linked_axes=False)
        self._note = pn.pane.Markdown()
        self._updating = False
        self._domain.param.watch(self._draw_summary, "value")
        for widget in (self._first, self._second):
            widget.param.watch(self._draw_maps, "value")
        self.state.param.watch(self.refresh, ["cached_runs", "results", "error_metric", "basemap"])
        self.refresh()

    def draw(self) -> None:
        """Redraw the domain list, table, chart and maps."""
        self._runs_changed()

    def _runs(self) -> list[Run]:
        runs = self.state.cached_runs
        return runs if self._domain.value in (None, ALL) else [r for r in runs if r.config.basin == self._domain.value]

    def _runs_changed(self, *events: object) -> None:
        basins = sorted({r.config.basin for r in self.state.cached_runs})
        current = self.state.results.run.config.basin if self.state.results is not None else None
        value = current if current in basins else (self._domain.value if self._domain.value in basins else ALL)
        self._updating = True
        try:
            self._domain.param.update(options=[ALL, *basins], value=value)
        finally:
            self._updating = False
        self._draw_summary()

    def _draw_summary(self, *events: object) -> None:
        if self._updating:
            return
        runs = self._runs()
        table = runs_table(runs)
        if table.empty:
            self._note.object = "No cached runs yet: train one, or run `msgl compare`."
            self._table.value, self._chart.object = table, None
        else:
            shown = table.drop(columns=["path"]).reset_index().sort_values(["basin", "variant", "sparsity", "seed"])
            shown["sparsity"] = shown["sparsity"] * 100
            shown = shown.rename(columns={"sparsity": "ρ %", "rmse": "RMSE °C", "mae": "MAE °C", "bias": "bias °C",
                                          "nse": "NSE", "n_obs": "n", "train_s": "train s"})
            self._table.value = shown.round(3)
            self._chart.object = self._chart_plot(table)
            self._note.object = f"{len(table)} run(s). Points: one per seed; lines: mean over seeds."
        options = {run_label(r): str(r.path) for r in runs}
        values = list(options.values())
        current = str(self.state.results.run.path) if self.state.results is not None else None
        first = current if current in values else (values[0] if values else None)
        second = next((v for v in values if v != first), first)
        self._updating = True
        try:
            self._first.param.update(options=options, value=first)
            self._second.param.update(options=options, value=second)
        finally:
            self._updating = False
        self._draw_maps()

    @staticmethod
    def _chart_plot(table: pd.DataFrame) -> hv.Overlay:
        summary = rmse_by_sparsity(table.dropna(subset=["rmse"]))
        layers = []
        for variant, chunk in summary.groupby("variant"):
            layers.append(hv.Curve(chunk, "sparsity", "mean", label=str(variant)).opts(line_width=2))
            points = table[table["variant"] == variant]
            layers.append(hv.Scatter(points.reset_index(), "sparsity", ["rmse", "run", "seed", "basin"],
                                     label=str(variant)).opts(size=7, tools=["hover"]))
        low, high = float(table["sparsity"].min()), float(table["sparsity"].max())
        return hv.Overlay(layers).opts(
            hv.opts.Curve(logx=True), hv.opts.Scatter(logx=True),
            hv.opts.Overlay(height=300, responsive=True, logx=True, xlim=(low / 1.5, min(high * 1.5, 1.5)), xlabel="kept share of fine observations ρ",
                            ylabel="test RMSE (°C)", title="Test RMSE vs sparsity", legend_position="right",
                            show_grid=True))

    def _draw_maps(self, *events: object) -> None:
        if self._updating:
            return
        paths = [w.value for w in (self._first, self._second)]
        if not all(paths):
            self._maps.object = None
            return
        runs = {str(r.path): r for r in self.state.cached_runs}
        chosen = [runs[p] for p in paths if p in runs]
        if len(chosen) != 2:
            self._maps.object = None
            return
        r, metric = self.state.resources, self.state.error_metric
        tables = [per_reach_metrics(run) for run in chosen]
        domains = []
        for run in chosen:
            try:
                domains.append(r.domain_reaches(run.config.basin).index)
            except ValueError:
                domains.append(pd.Index([]))
        if any(len(d) == 0 for d in domains):
            self._maps.object = None
            self._note.object = "A chosen run's domain is not in this dataset."
            return
        values = np.concatenate([t[metric].to_numpy(dtype=float) for t in tables])
        clim, cmap = maps.error_limits(metric, values)
        bounds = Bounds.of(r.reaches.loc[domains[0].union(domains[1])])
        panels = []
        for name, run, table, domain in zip("AB", chosen, tables, domains, strict=True):
            title = f"{name}: {run.config.variant}, ρ {run.config.sparsity * 100:g} %, seed {run.config.seed} — RMSE {run.test_rmse:.2f} °C"
            overlay = maps.basemap(r, self.state.basemap) * error_overlay(r, domain, table, metric, clim, cmap, title)
            panels.append(overlay.opts(**maps.map_options(bounds, MAP_WIDTH, MAP_HEIGHT)))
        self._maps.object = (panels[0] + panels[1]).opts(shared_axes=True)

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.Row(self._domain, self._note), self._table, self._chart,
            pn.pane.Markdown(f"#### Per-reach test error of two runs ({', '.join(METRIC_LABELS[m] for m in ('rmse', 'bias'))})"),
            pn.Row(self._first, self._second, sizing_mode="stretch_width"), self._metric, self._maps,
            sizing_mode="stretch_width")
