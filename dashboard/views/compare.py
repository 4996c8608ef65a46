"""Compare runs: test RMSE by variant and sparsity, and two runs' per-reach errors side by side with their difference.

For a basin with ``msgl compare`` outputs (``comparisons/<basin>/``, :func:`msgl_core.comparisons_root`) the
tab shows what the command wrote (:func:`msgl_core.read_comparison`): its table, its figure and its runs,
so the page and the CLI always agree. Otherwise it summarises the cached runs with the command's own
statistics (:func:`msgl_core.summarise`, :func:`msgl_core.format_table`): each cached run is one grid cell
(:class:`msgl_core.RunOutcome`), and runs are compared only with runs that differ from them in the grid's
axes alone (variant, sparsity, seed). Unreliable runs (:func:`msgl_core.reliability`) are marked in the
tables, the run lists and the map titles. Runs are named by folder only: no server path reaches the browser.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn

from dashboard.design import CHOICE_BUTTONS
from dashboard.geometry import Bounds
from dashboard.resources import Resources
from dashboard.views import maps
from dashboard.views.error_map import MISSING_NOTE, ColourScale, error_overlay, metric_options, score_formatters
from dashboard.views.run_picker import UNRELIABLE, option_label, verdict_markdown
from dashboard.views.tab_view import TabView
from msgl_core import (
    ComparisonOutputs,
    Reliability,
    Run,
    RunConfig,
    RunOutcome,
    Scores,
    format_table,
    read_comparison,
    run_outcome,
    summarise,
)

ALL = "all domains"
MAP_WIDTH, MAP_HEIGHT = 360, 460
#: The settings a ``msgl compare`` grid varies over one base config (see :func:`msgl_core.grid`).
GRID_AXES = ("variant", "sparsity", "seed")
#: Largest possible sparsity ρ (all fine observations kept): the right end of the RMSE-vs-sparsity axis.
MAX_SPARSITY = 1.0
#: Percentile of each run's per-reach values (of |values| for bias) that bounds the shared colour scale.
SCALE_PERCENTILE = 95
#: The scale's smallest half-range and its rounding step, °C.
SCALE_FLOOR, SCALE_STEP = 0.5, 0.5
#: Column of the run tables that says whether a run is reliable.
RELIABILITY = "reliability"


def outcome(run: Run) -> RunOutcome:
    """A cached run as ``msgl compare`` reports a cached grid cell."""
    return run_outcome(run, cached=True)


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
        return format_table(self.table)


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


def verdicts(runs: Sequence[Run], resources: Resources) -> dict[str, Reliability]:
    """:func:`msgl_core.reliability` of each run, by run folder name."""
    return {run.path.name: resources.reliability(run) for run in runs}


def verdict_cell(verdict: Reliability | None) -> str:
    """A run table's :data:`RELIABILITY` cell: "reliable", or :data:`UNRELIABLE` and why."""
    if verdict is None:
        return "unknown: not in the run cache"
    return "reliable" if verdict.ok else f"{UNRELIABLE}: {'; '.join(verdict.reasons)}"


def outputs_runs_table(outputs: ComparisonOutputs, known: dict[str, Reliability]) -> pd.DataFrame:
    """``runs.csv`` of ``msgl compare`` outputs for the page: run folder names instead of server paths, and the
    :data:`RELIABILITY` of each run found in the run cache (``known``, by folder name)."""
    failed = outputs.runs["error"] != ""
    runs = outputs.runs.assign(run=["" if bad else Path(p).name for p, bad in zip(outputs.runs["path"], failed,
                                                                                     strict=True)])
    runs[RELIABILITY] = [("failed: " + error) if bad else verdict_cell(known.get(name))
                         for name, bad, error in zip(runs["run"], failed, runs["error"], strict=True)]
    return runs.drop(columns=["path", "error"])


def two_lines(title: str) -> str:
    """A map title on two lines, what and then where (its first " · " becomes a line break), to fit a narrow map."""
    return title.replace(" · ", "\n", 1)


def shared_scale(metric: str, per_run: Sequence[np.ndarray]) -> ColourScale:
    """One colour scale for the per-reach ``metric`` (°C) maps of several runs, robust to one bad run.

    Each run's own :data:`SCALE_PERCENTILE` th percentile (of |values| for bias) bounds most of its values;
    the scale ends at the smallest of these, at least :data:`SCALE_FLOOR`, rounded up to :data:`SCALE_STEP`.
    A run with large errors therefore cannot stretch the scale and wash out the others: its values beyond
    the scale are drawn in the clip colour (see :class:`ColourScale`). Sequential from 0 for RMSE and MAE,
    diverging and symmetric about 0 for bias.

    Shapes: each array of ``per_run`` (reaches,) °C, NaN where a reach has no score.
    """
    tops = []
    for values in per_run:
        finite = np.asarray(values, dtype=float)
        finite = finite[np.isfinite(finite)]
        if finite.size:
            tops.append(float(np.percentile(np.abs(finite), SCALE_PERCENTILE)))
    top = math.ceil(max(min(tops, default=1.0), SCALE_FLOOR) / SCALE_STEP) * SCALE_STEP
    if metric == "bias":
        return ColourScale((-top, top), maps.DIFFERENCE_CMAP, Scores.LABELS[metric])
    return ColourScale((0.0, top), maps.ERROR_CMAP, Scores.LABELS[metric])


def difference(first: pd.DataFrame, second: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per-reach ``metric`` of two runs on the reaches both scored (finite in both), and A − B.

    Args:
        first, second: per-reach scores (:meth:`msgl_core.RunMetrics.per_reach_frame`) of runs A and B.
        metric: a score (°C for rmse, mae, bias).

    Returns: (reaches both scored) × ``a``, ``b``, ``difference`` (A − B, °C), indexed by reach id.
    """
    both = pd.DataFrame({"a": first[metric], "b": second[metric]}).dropna()
    return both.assign(difference=both["a"] - both["b"])


def difference_scale(metric: str, values: np.ndarray) -> ColourScale:
    """Colour scale of an A − B map (°C): diverging, colour-blind-safe (ColorBrewer RdBu), centred on 0, half-range
    from :func:`dashboard.views.maps.symmetric_limit` (95th percentile of |A − B|)."""
    limit = maps.symmetric_limit(values)
    return ColourScale((-limit, limit), maps.DIFFERENCE_CMAP, f"A − B, {Scores.LABELS[metric]}")


class CompareRuns(TabView):
    """Comparisons of one domain (``msgl compare`` outputs, else the cached runs), and the error maps of two runs."""

    tab = "compare"

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._domain = pn.widgets.Select(label="Domain", width=220)
        self._table = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, height=260, sizing_mode="stretch_width",
                                           show_index=False, pagination=None, selectable=False)
        self._summary = pn.pane.Markdown(sizing_mode="stretch_width")
        self._chart = pn.pane.HoloViews(linked_axes=False)
        self._chart_box = maps.box(self._chart, sizing_mode="stretch_width")
        self._figure = pn.pane.PNG(None, width=700, visible=False)
        self._first = pn.widgets.Select(label="Run A", sizing_mode="stretch_width")
        self._second = pn.widgets.Select(label="Run B", sizing_mode="stretch_width")
        self._metric = pn.widgets.RadioButtonGroup.from_param(
            self.state.param.error_metric, options=metric_options(self.state.param.error_metric.objects), **CHOICE_BUTTONS)
        # One pane per map (A, B, A − B) with linked axes: zooming one zooms all three.
        self._maps = pn.Row()
        self._maps_note = pn.pane.Markdown(sizing_mode="stretch_width")
        self._note = pn.pane.Markdown()
        self._verdicts: dict[str, Reliability] = {}
        self._updating = False
        self._domain.param.watch(self._draw_summary, "value")
        for widget in (self._first, self._second):
            widget.param.watch(self._draw_maps, "value")
        self.state.param.watch(self.refresh, ["cached_runs", "results", "error_metric", "basemap", "comparisons_dir"])
        self.refresh()

    def draw(self) -> None:
        """Redraw the domain list, table, chart and maps."""
        self._verdicts = verdicts(self.state.cached_runs, self.state.resources)
        self._runs_changed()

    def _runs(self) -> list[Run]:
        runs = self.state.cached_runs
        return runs if self._domain.value in (None, ALL) else [r for r in runs if r.config.basin == self._domain.value]

    def _runs_changed(self, *events: object) -> None:
        root = self.state.comparisons_folder()
        compared = {p.name for p in root.iterdir() if p.is_dir()} if root is not None and root.is_dir() else set()
        basins = sorted({r.config.basin for r in self.state.cached_runs} | compared)
        current = self.state.results.run.config.basin if self.state.results is not None else None
        value = current if current in basins else (self._domain.value if self._domain.value in basins else ALL)
        self._updating = True
        try:
            self._domain.param.update(options=[ALL, *basins], value=value)
        finally:
            self._updating = False
        self._draw_summary()

    def _outputs(self) -> tuple[ComparisonOutputs | None, str]:
        """The chosen domain's ``msgl compare`` outputs, if any, and a note on why they are not shown."""
        root = self.state.comparisons_folder()
        if root is None:
            return None, "The comparisons folder is a file; showing the cached runs instead."
        if self._domain.value in (None, ALL):
            return None, ""
        try:
            return read_comparison(root / self._domain.value), ""
        except FileNotFoundError:
            return None, ""
        except (OSError, ValueError) as error:
            return None, f"The `msgl compare` outputs cannot be read ({error}); showing the cached runs instead."

    def _draw_summary(self, *events: object) -> None:
        if self._updating:
            return
        runs = self._runs()
        outputs, problem = self._outputs()
        if outputs is not None:
            self._show_outputs(outputs)
        else:
            self._show_cached(runs, problem)
        options = {option_label(r, self._verdicts[r.path.name]): r.path.name for r in runs}
        values = list(options.values())
        current = self.state.results.name if self.state.results is not None else None
        first = current if current in values else (values[0] if values else None)
        second = next((v for v in values if v != first), first)
        self._updating = True
        try:
            self._first.param.update(options=options, value=first)
            self._second.param.update(options=options, value=second)
        finally:
            self._updating = False
        self._draw_maps()

    def _show_outputs(self, outputs: ComparisonOutputs) -> None:
        """The table, runs and figure that ``msgl compare`` wrote for this domain."""
        table = outputs_runs_table(outputs, self._verdicts)
        table["sparsity"] = table["sparsity"] * 100
        self._show_table(table.rename(columns={"sparsity": "ρ %", "test_rmse": Scores.LABELS["rmse"],
                                               "seconds": "train s"}), ["rmse"])
        flagged = table[table[RELIABILITY] != "reliable"]
        self._summary.object = "\n\n".join(
            [f"#### {outputs.title}", f"As `msgl compare` wrote it to `{outputs.folder.name}/`: test RMSE (°C), "
             "mean ± std over seeds; in parentheses an MSGL variant's change against the best single-scale "
             "(fine-only) baseline at the same sparsity (negative = better).", format_table(outputs.table),
             *([f"Not shown as reliable: {len(flagged)} of the {len(table)} runs behind this table "
                f"({', '.join(flagged['run'])}); see the reliability column."] if len(flagged) else [])])
        self._figure.param.update(object=None if outputs.figure is None else outputs.figure.read_bytes(),
                                  visible=outputs.figure is not None)
        self._chart_box.visible = False
        self._note.object = f"{len(table)} run(s) in this comparison. {MISSING_NOTE}"

    def _show_cached(self, runs: list[Run], problem: str) -> None:
        """The cached runs of the domain, summarised as ``msgl compare`` would."""
        self._figure.param.update(object=None, visible=False)
        table = runs_table(runs)
        if table.empty:
            self._note.object = f"No cached runs yet: train one, or run `msgl compare`. {problem}"
            self._table.value, self._chart.object, self._summary.object = table, None, ""
            return
        groups = comparisons(runs)
        shown = table.assign(**{RELIABILITY: [verdict_cell(self._verdicts.get(name)) for name in table["run"]]})
        shown = shown.sort_values(["basin", "variant", "sparsity", "seed"])
        shown["sparsity"] = shown["sparsity"] * 100
        self._show_table(shown.rename(columns={"sparsity": "ρ %", "train_s": "train s", **Scores.LABELS}),
                         ["rmse", "mae", "bias", "nse", "kge"])
        self._summary.object = self._summary_text(groups, [r for r in runs if not self._verdicts[r.path.name].ok])
        self._chart.object = self._chart_plot(groups)
        self._chart_box.visible = True
        self._note.object = (f"{problem} {len(table)} cached run(s), no `msgl compare` outputs for this domain. "
                             f"Points: one per run; lines: mean ± std over seeds. {MISSING_NOTE}").strip()

    def _show_table(self, table: pd.DataFrame, scores: list[str]) -> None:
        """One row per run, its folder name and reliability first; missing scores print as a dash."""
        first = ["run", RELIABILITY]
        self._table.param.update(value=table[first + [c for c in table if c not in first]].round(3),
                                 formatters=score_formatters(scores), height=min(260, 45 + 30 * len(table)))

    @staticmethod
    def _summary_text(groups: list[Comparison], unreliable: list[Run]) -> str:
        parts = ["#### Test RMSE (°C), mean ± std over seeds, as `msgl compare` reports it",
                 "In parentheses: an MSGL variant's change against the best single-scale (fine-only) baseline at the "
                 "same sparsity (negative = better)."]
        for group in groups:
            parts += ([f"**{group.label}**"] if group.label else []) + [group.markdown()]
        if unreliable:
            parts.append(f"{UNRELIABLE}: {len(unreliable)} of these runs ({', '.join(r.path.name for r in unreliable)});"
                         " see the table's reliability column.")
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
        low = float(sparsities.min())
        return hv.Overlay(layers).opts(
            hv.opts.Curve(logx=True), hv.opts.Scatter(logx=True),
            hv.opts.Overlay(height=300, responsive=True, logx=True, xlim=(min(low, MAX_SPARSITY) / 1.5, MAX_SPARSITY),
                            xlabel="kept share of fine observations ρ", ylabel="test RMSE (°C)",
                            title="Test RMSE vs sparsity", legend_position="right", show_grid=True))

    def _draw_maps(self, *events: object) -> None:
        if self._updating:
            return
        runs = {r.path.name: r for r in self.state.cached_runs}
        chosen = [runs[name] for name in (self._first.value, self._second.value) if name in runs]
        self._maps.objects, self._maps_note.object = [], ""
        if len(chosen) != 2:
            return
        r = self.state.resources
        domains = []
        for run in chosen:
            try:
                domains.append(r.domain_reaches(run.config.basin).index)
            except ValueError:
                domains.append(pd.Index([]))
        if any(len(d) == 0 for d in domains):
            self._maps_note.object = "A chosen run's domain is not in this dataset."
            return
        overlays, self._maps_note.object = self._error_maps(chosen, domains)
        self._maps.objects = [pn.pane.HoloViews(overlay, linked_axes=True) for overlay in overlays]

    def _error_maps(self, chosen: list[Run], domains: list[pd.Index]) -> tuple[list[hv.Overlay], str]:
        """Maps of A and B on one shared robust scale and of A − B, and a note on the scales."""
        r, metric = self.state.resources, self.state.error_metric
        label = Scores.LABELS[metric]
        tables = [run.metrics.per_reach_frame() for run in chosen]
        scale = shared_scale(metric, [t[metric].to_numpy(dtype=float) for t in tables])
        change = difference(tables[0], tables[1], metric)
        change_scale = difference_scale(metric, change["difference"].to_numpy())
        reaches = domains[0].union(domains[1])
        bounds = Bounds.of(r.reaches.loc[reaches])
        panels = []
        for name, run, table, domain in zip("AB", chosen, tables, domains, strict=True):
            flag = "" if self._verdicts[run.path.name].ok else f" {UNRELIABLE}"
            title = two_lines(maps.run_title(run, f"{name}{flag}: test-period {label}"))
            overlay = maps.basemap(r, self.state.basemap) * error_overlay(r, domain, table, metric, scale)
            panels.append(overlay.opts(**maps.map_options(bounds, MAP_WIDTH, MAP_HEIGHT, title)))
        hover = {"difference": (f"A − B {label}", "{+0.00}"), "a": (f"A {label}", "{0.00}"), "b": (f"B {label}", "{0.00}")}
        overlay = maps.basemap(r, self.state.basemap) * error_overlay(r, reaches, change, "difference", change_scale,
                                                                      hover)
        basins = " / ".join(dict.fromkeys(run.config.basin for run in chosen))
        title = f"A − B: test-period {label}\non the {len(change)} reach(es) both scored · {basins}"
        panels.append(overlay.opts(**maps.map_options(bounds, MAP_WIDTH, MAP_HEIGHT, title)))
        clipped = ", ".join(f"{name} {scale.clipped(t[metric].to_numpy(dtype=float))} of "
                            f"{int(t[metric].notna().sum())}" for name, t in zip("AB", tables, strict=True))
        better = "blue: A's is smaller" if metric != "bias" else "blue: A's bias is lower (more negative)"
        notes = [f"A and B share one colour scale, {scale.clim[0]:g} to {scale.clim[1]:g} °C: the smaller of the two "
                 f"runs' {SCALE_PERCENTILE}th percentiles, so one bad run cannot stretch it. Reaches beyond it are "
                 f"drawn black (above) or purple (below): {clipped} scored reaches. The A − B map ({better}) runs "
                 f"from {change_scale.clim[0]:g} to {change_scale.clim[1]:g} °C; hover a reach for its values.",
                 *(f"{name}: {verdict_markdown(self._verdicts[run.path.name])}"
                   for name, run in zip("AB", chosen, strict=True) if not self._verdicts[run.path.name].ok)]
        return panels, "  \n".join(notes)

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.Row(self._domain, self._note), self._summary, self._figure, self._chart_box, self._table,
            pn.pane.Markdown("#### Per-reach test error of two runs, and their difference"),
            pn.Row(self._first, self._second, sizing_mode="stretch_width"), self._metric, self._maps,
            self._maps_note, sizing_mode="stretch_width")
