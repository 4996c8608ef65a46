"""The cross-validation tab: what ``msgl cv`` wrote (``comparisons/<basin>/cv_rho<ρ>/``), never recomputed.

For the chosen grid (:func:`msgl_core.cv.outputs.read_cv`): the settings and the caveat of the analysis,
the variance components per variant as stacked bars (data partition σ²_P, seed σ²_S, residual σ²_E, °C²),
the mean RMSE with its 95 % interval and the paired differences between variants (°C), a map of the
spatial blocks (each segment's fold in the first repeat) and a map of each reach's out-of-fold test RMSE
for a chosen variant (hover: the range over that variant's runs). docs/cv.md explains every number.
"""

from __future__ import annotations

import holoviews as hv
import numpy as np
import pandas as pd
import panel as pn
from bokeh.models import FixedTicker
from bokeh.palettes import Category10_10

from dashboard.geometry import PIECE_COLUMNS, Bounds
from dashboard.views import maps
from dashboard.views.compare import shared_scale
from dashboard.views.error_map import error_overlay
from dashboard.views.tab_view import TabView
from msgl_core import PARENT_SEGMENT
from msgl_core.cv.analysis import OK
from msgl_core.cv.outputs import (
    CVOutputs,
    cv_grids,
    paired_table,
    reach_skill,
    read_cv,
    segment_folds,
    variance_table,
)

MAP_WIDTH, MAP_HEIGHT = 420, 460
#: Stacked components: JSON field, legend label, colour.
COMPONENTS = (("partition", "data partition σ²_P", "#d62728"), ("seed", "seed σ²_S", "#1f77b4"),
              ("residual", "residual σ²_E", "#aaaaaa"))


def variance_bars(table: pd.DataFrame) -> hv.Bars:
    """Stacked bars of the fold-level components per variant (°C²); ``table`` from :func:`variance_table`."""
    rows = [(row.variant, label, float(getattr(row, field))) for row in table.itertuples()
            for field, label, _ in COMPONENTS]
    data = pd.DataFrame(rows, columns=["variant", "component", "variance"]).fillna({"variance": 0.0})
    return hv.Bars(data, ["variant", "component"], "variance").opts(
        stacked=True, cmap=[c for _, _, c in COMPONENTS], height=320, width=520, xrotation=30, tools=["hover"],
        ylabel="variance of fold RMSE (°C²)", xlabel="", legend_position="right", show_legend=True,
        title="Where the spread of fold RMSE comes from", hover_tooltips=[
            ("variant", "@variant"), ("component", "@component"), ("variance", "@variance{0.000} °C²")])


def fold_map_values(outputs: CVOutputs, reaches: pd.DataFrame) -> pd.DataFrame:
    """Each reach of ``reaches`` (indexed by reach id, with :data:`PARENT_SEGMENT`) with the fold of its
    segment in the first repeat (``fold``: 1…K, NaN for a segment in no fold; :func:`segment_folds`)."""
    folds = segment_folds(outputs, reaches[PARENT_SEGMENT].to_numpy()).astype(float) + 1
    return pd.DataFrame({"fold": np.where(folds > 0, folds, np.nan)}, index=reaches.index)


class CrossValidation(TabView):
    """``msgl cv`` outputs of one grid: variance bars, tables of means and paired differences, fold and skill maps."""

    tab = "cv"

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._domain = pn.widgets.Select(label="Grid (basin/folder)", width=220)
        self._variant = pn.widgets.Select(label="Skill map of", width=220)
        self._note = pn.pane.Markdown(sizing_mode="stretch_width")
        self._bars = pn.Column(margin=0)
        self._means = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, pagination=None,
                                           selectable=False, sizing_mode="stretch_width")
        self._paired = pn.widgets.Tabulator(pd.DataFrame(), disabled=True, show_index=False, pagination=None,
                                            selectable=False, sizing_mode="stretch_width")
        self._maps = pn.Row()
        self._outputs: CVOutputs | None = None
        self._domain.param.watch(self._draw_domain, "value")
        self._variant.param.watch(self._draw_maps, "value")
        self.state.param.watch(self.refresh, ["comparisons_dir", "basemap"])
        self.refresh()

    def draw(self) -> None:
        """Redraw the list of grids and the chosen grid's outputs."""
        domains = cv_grids(self.state.comparisons_folder())
        value = self._domain.value if self._domain.value in domains else (domains[0] if domains else None)
        self._domain.param.update(options=domains, value=value)
        self._draw_domain()

    def _draw_domain(self, *events: object) -> None:
        root, domain = self.state.comparisons_folder(), self._domain.value
        self._outputs = None
        self._bars.objects, self._maps.objects = [], []
        self._means.value, self._paired.value = pd.DataFrame(), pd.DataFrame()
        if root is None or domain is None:
            self._note.object = ("No cross-validation outputs yet. Run `msgl cv --basin B --sparsity ρ …`; it "
                                 f"writes `{root or 'comparisons'}/B/cv_rhoρ/`, which this tab reads.")
            return
        try:
            self._outputs = outputs = read_cv(root / domain)
        except (OSError, ValueError) as error:
            self._note.object = f"The `msgl cv` outputs of {domain} cannot be read: {error}"
            return
        self._note.object = self._summary(outputs)
        table = variance_table(outputs)
        if len(table):
            self._bars.objects = [pn.pane.HoloViews(variance_bars(table), linked_axes=False)]
            self._means.value = table[["variant", "mean_rmse", "mean_low", "mean_high", "partition", "seed",
                                       "residual", "training_share", "n_partitions", "n_seeds"]].rename(columns={
                "mean_rmse": "mean RMSE (°C)", "mean_low": "95 % low", "mean_high": "95 % high",
                "partition": "σ²_P (°C²)", "seed": "σ²_S (°C²)", "residual": "σ²_E (°C²)",
                "training_share": "training share", "n_partitions": "partitions", "n_seeds": "seeds"}).round(3)
        paired = paired_table(outputs)
        if len(paired):
            self._paired.value = paired.rename(columns={
                "difference": "A − B RMSE (°C)", "low": "95 % low", "high": "95 % high",
                "fraction_a_better": "share A better", "partition_ratio": "σ²_P(A)/σ²_P(B)",
                "ratio_low": "90 % low", "ratio_high": "90 % high"}).round(3)
        variants = list(dict.fromkeys(outputs.results["variant"]))
        self._variant.param.update(options=variants, value=self._variant.value if self._variant.value in variants
                                   else (variants[0] if variants else None))
        self._draw_maps()

    @staticmethod
    def _summary(outputs: CVOutputs) -> str:
        results, analysis = outputs.results, outputs.analysis
        failed = int((results["status"] != OK).sum())
        settings = (analysis or {}).get("settings", {})
        lines = [f"**{len(results)} runs** of {', '.join(dict.fromkeys(results['variant']))} · "
                 f"{outputs.folds[0].n_folds if outputs.folds else '?'} folds × {len(outputs.folds)} repeat(s) × "
                 f"{results['seed'].nunique()} seed(s) · scheme {settings.get('scheme', results['scheme'].iloc[0])} · "
                 f"ρ {float(results['sparsity'].iloc[0]) * 100:g} %" + (f" · **{failed} failed**" if failed else "")]
        if analysis is None:
            lines.append("No variance analysis was written (the grid is unbalanced: rerun with "
                         "`--allow-unbalanced`, or fill the missing cells).")
        else:
            lines.append(f"*{analysis.get('caveat', '')}*")
            lines += [f"⚠ {w}" for w in analysis.get("warnings", [])]
        return "  \n".join(lines)

    def _draw_maps(self, *events: object) -> None:
        outputs, variant = self._outputs, self._variant.value
        self._maps.objects = []
        if outputs is None or variant is None:
            return
        r = self.state.resources
        try:
            reaches = r.domain_reaches(str(outputs.results["basin"].iloc[0]))
        except ValueError:
            return
        bounds = Bounds.of(r.reaches.loc[reaches.index])
        folds = fold_map_values(outputs, reaches)
        pieces = r.reach_pieces[r.reach_pieces["reach"].isin(reaches.index)]
        pieces = pieces.assign(fold=folds["fold"].reindex(pieces["reach"]).to_numpy())
        k = outputs.folds[0].n_folds if outputs.folds else 1
        fold_lines = maps.segments(pieces[[*PIECE_COLUMNS, "fold", "reach"]], ["fold", "reach"]).opts(
            color="fold", cmap=list(Category10_10[:k]), color_levels=k, clim=(0.5, k + 0.5), line_width=3,
            colorbar=True, colorbar_opts={"ticker": FixedTicker(ticks=list(range(1, k + 1)))},
            clabel="test fold (repeat 1)", tools=["hover"], hover_tooltips=[("reach", "@reach"), ("fold", "@fold")])
        fold_map = (maps.basemap(r, self.state.basemap) * fold_lines).opts(
            **maps.map_options(bounds, MAP_WIDTH, MAP_HEIGHT, f"Spatial blocks: the {k} test folds of repeat 1"))
        skill = reach_skill(outputs)
        skill = skill[skill["variant"] == variant].set_index("reach_id")
        scale = shared_scale("rmse", [skill["rmse"].to_numpy(dtype=float)])
        hover = {"rmse": ("out-of-fold RMSE, mean (°C)", "{0.00}"),
                 "rmse_p05": ("5 % over runs (°C)", "{0.00}"), "rmse_p95": ("95 % over runs (°C)", "{0.00}"),
                 "rmse_pooled": ("pooled RMSE (°C)", "{0.00}"),
                 "rmse_wy_low": ("95 % over water years, low (°C)", "{0.00}"),
                 "rmse_wy_high": ("95 % over water years, high (°C)", "{0.00}"),
                 "n_runs": ("runs", "{0}"), "n_obs": ("test observations", "{0}")}
        skill_map = (maps.basemap(r, self.state.basemap) * error_overlay(r, reaches.index, skill, "rmse", scale, hover)
                     ).opts(**maps.map_options(bounds, MAP_WIDTH, MAP_HEIGHT,
                                                f"{variant}: out-of-fold test RMSE per reach\n(mean over its runs)"))
        self._maps.objects = [pn.pane.HoloViews(fold_map, linked_axes=True),
                              pn.pane.HoloViews(skill_map, linked_axes=True)]

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(
            pn.Row(self._domain, self._variant), self._note, self._bars,
            pn.pane.Markdown("#### Mean RMSE over the grid, with its 95 % interval, and the variance components"),
            self._means, pn.pane.Markdown("#### Paired differences (same folds and seeds; negative: A better)"),
            self._paired, self._maps, sizing_mode="stretch_width")
