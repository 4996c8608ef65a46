"""Compare cached runs: test RMSE by variant and sparsity (table and chart), and two runs' per-reach errors side by side.

The statistics are ``msgl compare``'s own (:func:`msgl_core.summarise`, :func:`msgl_core.format_table`):
each cached run is one grid cell (:class:`msgl_core.RunOutcome`), and runs are compared only with runs
that differ from them in the grid's axes alone (variant, sparsity, seed).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

from dashboard.geometry import Bounds
from dashboard.views import maps
from dashboard.views.error_map import error_overlay, metric_options
from dashboard.views.tab_view import TabView
from msgl_core import Run, RunConfig, RunOutcome, Scores, format_table, summarise

ALL = "all domains"
MAP_WIDTH, MAP_HEIGHT = 440, 520
#: The settings a ``msgl compare`` grid varies over one base config (see :func:`msgl_core.grid`).
GRID_AXES = ("variant", "sparsity", "seed")


def outcome(run: Run) -> RunOutcome:
    """A cached run as ``msgl compare`` reports a cached grid cell."""
    training = run.metrics.training
    seconds = training.seconds if training is not None else math.nan
    return RunOutcome(run.config.variant, run.config.sparsity, run.config.seed, run.test_rmse, seconds,
                      str(run.path), cached=True)


@dataclass(frozen=True)
class Comparison:
    """Cached runs of one base config (they differ only in :data:`GRID_AXES`) and their
    :func:`msgl_core.summarise` table (test RMSE mean ± std over seeds, °C, per variant and sparsity).

    Attributes:
        label: the base settings that tell this comparison apart from the others ("" when alone).
        runs: its runs.
        table: ``summarise`` of their outcomes.
    """

    label: str
    runs: list[Run]
    table: pd.DataFrame

    def markdown(self) -> str:
        """The table as ``msgl compare`` prints it (:func:`msgl_core.format_table`)."""
        return format_table(self.table) if len(self.table) else "(no run with a test RMSE)"


def _base(cfg: RunConfig) -> tuple[tuple[str, str], ...]:
    """The settings of ``cfg`` that a comparison holds fixed (all but the grid axes and runtime-only ones)."""
    fixed = (*GRID_AXES, *RunConfig.RUNTIME_ONLY)
    return tuple(sorted((k, json.dumps(v)) for k, v in cfg.to_dict().items() if k not in fixed))


def comparisons(runs: Sequence[Run]) -> list[Comparison]:
    """Group ``runs`` by base config (as ``msgl compare`` would have run them) and summarise each group."""
    groups: dict[tuple, list[Run]] = {}
    for run in runs:
        groups.setdefault(_base(run.config), []).append(run)
    keys = list(groups)
    differing = sorted({k for k, v in keys[0] if any(dict(other)[k] != v for other in keys[1:])}) if keys else []
    out = []
    for key in keys:
        values = dict(key)
        label = ", ".join(f"{k} {_text(json.loads(values[k]))}" for k in differing)
        out.append(Comparison(label, groups[key], summarise([outcome(r) for r in groups[key]])))
    return sorted(out, key=lambda c: c.label)


def _text(value: object) -> str:
    """A config value as short text: lists (periods, hold-out segments) joined by commas."""
    if isinstance(value, list):
        return "[" + ", ".join(_text(v) for v in value) + "]" if value else "none"
    return str(value)


def runs_table(runs: Sequence[Run]) -> pd.DataFrame:
    """One row per run: :meth:`msgl_core.Run.summary` (settings, test scores, training seconds)."""
    return pd.DataFrame([run.summary() for run in runs])


class CompareRuns(TabView):
    """Every cached run (of one domain, or all) by variant and sparsity, plus a side-by-side error map of two runs."""

    tab = "compare"

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._domain = pn.widgets.Select(label="Domain", width=220)
        self._table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, height=260, sizing_mode="stretch_width",
                                           show_index=False, pagination=None, selectable=False)
        self._summary = pn.pane.Markdown(sizing_mode="stretch_width")
        self._chart = pn.pane.HoloViews(linked_axes=False)
        self._first = pn.widgets.Select(label="Run A", sizing_mode="stretch_width")
        self._second = pn.widgets.Select(label="Run B", sizing_mode="stretch_width")
        self._metric = pn.widgets.RadioButtonGroup.from_param(
            self.state.param.error_metric, options=metric_options(self.state.param.error_metric.objects))
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
            self._table.value, self._chart.object, self._summary.object = table, None, ""
        else:
            groups = comparisons(runs)
            shown = table.sort_values(["basin", "variant", "sparsity", "seed"])
            shown["sparsity"] = shown["sparsity"] * 100
            shown = shown.rename(columns={"sparsity": "ρ %", "train_s": "train s", **Scores.LABELS})
            self._table.value = shown.round(3)
            self._summary.object = self._summary_text(groups)
            self._chart.object = self._chart_plot(groups)
            self._note.object = f"{len(table)} run(s). Points: one per run; lines: mean ± std over seeds."
        options = {r.label(): str(r.path) for r in runs}
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
    def _summary_text(groups: list[Comparison]) -> str:
        parts = ["#### Test RMSE (°C), mean ± std over seeds, as `msgl compare` reports it",
                 "In parentheses: an MSGL variant's change against the best single-scale (fine-only) baseline at the "
                 "same sparsity (negative = better)."]
        for group in groups:
            parts += ([f"**{group.label}**"] if group.label else []) + [group.markdown()]
        return "\n\n".join(parts)

    @staticmethod
    def _chart_plot(groups: list[Comparison]) -> hv.Overlay:
        layers: list[hv.Element] = []
        for group in groups:
            table = runs_table(group.runs)
            for variant, chunk in group.table.groupby("variant", sort=False):
                label = f"{variant} ({group.label})" if group.label else str(variant)
                layers.append(hv.Curve(chunk, "sparsity", "rmse_mean", label=label).opts(line_width=2))
                layers.append(hv.ErrorBars(chunk.fillna({"rmse_std": 0.0}), "sparsity", ["rmse_mean", "rmse_std"],
                                           label=label).opts(show_legend=False))
                points = table[table["variant"] == variant]
                layers.append(hv.Scatter(points, "sparsity", ["rmse", "run", "seed", "basin"],
                                         label=label).opts(size=7, tools=["hover"]))
        sparsities = np.concatenate([runs_table(g.runs)["sparsity"].to_numpy(dtype=float) for g in groups])
        low, high = float(sparsities.min()), float(sparsities.max())
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
        tables = [run.metrics.per_reach_frame() for run in chosen]
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
            pn.Row(self._domain, self._note), self._table, self._summary, self._chart,
            pn.pane.Markdown("#### Per-reach test error of two runs"),
            pn.Row(self._first, self._second, sizing_mode="stretch_width"), self._metric, self._maps,
            sizing_mode="stretch_width")
