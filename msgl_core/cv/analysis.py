"""From the table of cross-validation runs (``cv_results.parquet``) to ``variance_components.json``.

Per variant, three analyses of :mod:`msgl_core.cv.variance`:

* ``fold``: per-run test RMSE e_rks (°C) on partitions p = (repeat, fold) × seeds; its σ²_P includes
  test-fold difficulty (some folds are harder);
* ``fold_log``: the same on log RMSE (relative variation; RMSE variance grows with its level);
* ``repeat``: the pooled out-of-fold RMSE E_rs of each (repeat, seed) over all folds, on repeats × seeds
  (R >= 2): the test set is then every observed reach, so σ²_P is only how the grouping of reaches into
  training sets moves the CV estimate (Bengio & Grandvalet 2004).

Every pair of variants is compared on the fold-level cells they share (paired differences cancel test-fold
difficulty). A grid with failed cells stops here with the cells' names unless unbalanced grids are allowed;
then REML replaces the ANOVA and a warning says so.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, fields, is_dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from msgl_core.cv.variance import (
    DESIGNS,
    BootstrapIntervals,
    Components,
    Decomposition,
    Interval,
    PairedComparison,
    anova_decomposition,
    nadeau_bengio_interval,
    paired_comparison,
    pigeonhole_bootstrap,
    reml_decomposition,
    reml_paired_comparison,
)
from msgl_core.runs import write_atomic

VARIANCE_FILE = "variance_components.json"
VARIANCE_FORMAT = 1
OK, FAILED = "ok", "failed"
#: Fewest partitions (R·K) for informative pigeonhole-bootstrap intervals; below it the analysis warns. With P
#: partitions a replicate is one of C(2P − 1, P) multisets: 3 for P = 2, two of them a single partition twice.
MIN_BOOTSTRAP_PARTITIONS = 4
#: Written beside every interval of ``variance_components.json``.
CAVEAT = ("Intervals are conditional on this dataset (the DRB observations and these partitions): they say how "
          "stable the procedure is here, not how it would do on another basin (Bengio & Grandvalet 2004). "
          "Fold-level partition variance includes test-fold difficulty; compare variants by paired differences.")


@dataclass(frozen=True)
class AnalysisOptions:
    """How the table is analysed.

    Attributes:
        design: ``crossed`` or ``nested`` (see :mod:`msgl_core.cv.variance`).
        n_folds: K (for the Nadeau–Bengio interval).
        allow_unbalanced: analyse a grid with failed cells by REML instead of stopping.
        replicates, bootstrap_seed: the pigeonhole bootstrap's size and seed.

    Raises ValueError for an unknown design, K < 2 or fewer than 2 replicates.
    """

    design: str = "crossed"
    n_folds: int = 5
    allow_unbalanced: bool = False
    replicates: int = 2000
    bootstrap_seed: int = 0

    def __post_init__(self) -> None:
        if self.design not in DESIGNS:
            raise ValueError(f"unknown design {self.design!r}; expected one of {', '.join(DESIGNS)}")
        if self.n_folds < 2:
            raise ValueError(f"folds must be >= 2, got {self.n_folds}")
        if self.replicates < 2:
            raise ValueError(f"bootstrap replicates must be >= 2, got {self.replicates}")


@dataclass(frozen=True)
class VariantAnalysis:
    """One variant's decompositions (``fold``, ``fold_log``, ``repeat``: None with one repeat), the
    pigeonhole-bootstrap intervals of the fold-level components and the Nadeau–Bengio interval of its mean
    (both None on an unbalanced grid)."""

    variant: str
    fold: Decomposition
    fold_log: Decomposition
    repeat: Decomposition | None
    bootstrap: BootstrapIntervals | None
    nadeau_bengio: Interval | None


@dataclass(frozen=True)
class CVAnalysis:
    """The analysis of a cross-validation table: per variant, paired comparisons of every pair (A before B
    in the variants' order), the failed cells left out (``"variant repeat r fold k seed s"``) and warnings."""

    options: AnalysisOptions
    variants: tuple[VariantAnalysis, ...]
    paired: tuple[PairedComparison, ...]
    missing_cells: tuple[str, ...]
    warnings: tuple[str, ...]


def analyse(results: pd.DataFrame, options: AnalysisOptions = AnalysisOptions()) -> CVAnalysis:
    """Decompose the test RMSE of every variant in ``results`` (``cv_results.parquet``'s columns ``variant``,
    ``repeat``, ``fold``, ``seed``, ``rmse`` °C, ``n_obs_test``, ``status``).

    Raises ValueError when a column is missing, a variant has fewer than 2 seeds, seeds are not crossed with
    partitions (a crossed design needs every seed in every partition), or cells failed and
    ``options.allow_unbalanced`` is False (naming the failed cells).
    """
    needed = {"variant", "repeat", "fold", "seed", "rmse", "n_obs_test", "status"}
    if needed - set(results.columns):
        raise ValueError(f"cv results miss column(s) {', '.join(sorted(needed - set(results.columns)))}")
    table = results.assign(partition=results["repeat"].astype(str) + "/" + results["fold"].astype(str))
    failed = table[table["status"] != OK]
    missing = tuple(f"{r.variant} repeat {r.repeat} fold {r.fold} seed {r.seed}" for r in failed.itertuples())
    if missing and not options.allow_unbalanced:
        raise ValueError(f"{len(missing)} of {len(table)} cross-validation runs failed, so the grid is unbalanced: "
                         f"{'; '.join(missing)}; train them again or pass --allow-unbalanced (REML)")
    table.loc[table["status"] != OK, "rmse"] = np.nan
    variants = list(dict.fromkeys(table["variant"]))
    for variant in variants:
        _check_crossed(table[table["variant"] == variant], variant, options.design)
    notes = [f"{len(missing)} failed cells: variance components by REML instead of ANOVA"] if missing else []
    n_partitions = table["partition"].nunique()
    if n_partitions < MIN_BOOTSTRAP_PARTITIONS:
        notes.append(f"only {n_partitions} partitions: a pigeonhole-bootstrap replicate draws them with replacement, "
                     "so most replicates repeat one partition and the bootstrap intervals of components and ratios "
                     "are not informative; read the point estimates and the per-run table")
    analyses = tuple(_variant(table[table["variant"] == v], v, options) for v in variants)
    paired = tuple(_paired(table, a, b, options) for a, b in combinations(variants, 2))
    for analysis in analyses:
        notes += [f"{analysis.variant}: {w}" for w in analysis.fold.warnings]
    return CVAnalysis(options, analyses, paired, missing, tuple(notes))


def _check_crossed(rows: pd.DataFrame, variant: str, design: str) -> None:
    seeds = rows.groupby("partition")["seed"].apply(lambda s: tuple(sorted(set(s))))
    if min(len(s) for s in seeds) < 2:
        raise ValueError(f"{variant}: the variance decomposition needs at least 2 seeds per partition")
    if design == "crossed" and seeds.nunique() > 1:
        first, other = seeds.iloc[0], seeds[seeds != seeds.iloc[0]]
        raise ValueError(f"{variant}: seeds are not crossed with partitions (partition {seeds.index[0]} has seeds "
                         f"{list(first)}, partition {other.index[0]} has {list(other.iloc[0])}); run every seed in "
                         "every partition or use design 'nested'")


def _grid(rows: pd.DataFrame) -> pd.DataFrame:
    """Long table (partition, seed, value = RMSE °C) of ``rows``."""
    return rows[["partition", "seed", "rmse"]].rename(columns={"rmse": "value"}).reset_index(drop=True)


def _matrix(frame: pd.DataFrame, value: str = "value") -> np.ndarray:
    """(partitions, seeds) array of a long table; NaN for a missing cell."""
    return frame.pivot(index="partition", columns="seed", values=value).to_numpy(float)


def _decompose(frame: pd.DataFrame, options: AnalysisOptions) -> Decomposition:
    if options.design == "nested":  # seeds are replicates within a partition: number them 0..S-1
        frame = frame.assign(seed=frame.groupby("partition").cumcount())
    matrix = _matrix(frame)
    if np.isfinite(matrix).all():
        return anova_decomposition(matrix, options.design)
    return reml_decomposition(frame, options.design)


def _variant(rows: pd.DataFrame, variant: str, options: AnalysisOptions) -> VariantAnalysis:
    fold = _grid(rows)
    pooled = _pooled(rows)
    repeat = _decompose(pooled, options) if pooled["partition"].nunique() >= 2 else None
    matrix = _matrix(fold)
    complete = bool(np.isfinite(matrix).all())
    return VariantAnalysis(
        variant, _decompose(fold, options), _decompose(fold.assign(value=np.log(fold["value"])), options), repeat,
        pigeonhole_bootstrap(matrix, options.design, options.replicates, options.bootstrap_seed) if complete else None,
        nadeau_bengio_interval(matrix, options.n_folds) if complete else None)


def _pooled(rows: pd.DataFrame) -> pd.DataFrame:
    """Pooled out-of-fold RMSE E_rs = sqrt(Σ_k n_k e²_rks / Σ_k n_k) per (repeat, seed); NaN if a fold failed."""
    squared = rows.assign(sse=rows["rmse"] ** 2 * rows["n_obs_test"])
    grouped = squared.groupby(["repeat", "seed"])
    pooled = (grouped["sse"].sum(min_count=1) / grouped["n_obs_test"].sum()).pow(0.5)
    pooled[grouped["rmse"].apply(lambda r: bool(r.isna().any()))] = np.nan
    return pooled.rename("value").reset_index().rename(columns={"repeat": "partition"})


def _paired(table: pd.DataFrame, a: str, b: str, options: AnalysisOptions) -> PairedComparison:
    frame_a, frame_b = (_grid(table[table["variant"] == v]) for v in (a, b))
    merged = frame_a.merge(frame_b, on=["partition", "seed"], suffixes=("_a", "_b"))
    y = {s: _matrix(merged, f"value_{s}") for s in ("a", "b")}
    if np.isfinite(y["a"]).all() and np.isfinite(y["b"]).all():
        return paired_comparison(a, y["a"], b, y["b"], options.design, options.replicates, options.bootstrap_seed)
    return reml_paired_comparison(a, frame_a, b, frame_b, options.design)


def to_json_values(value: Any) -> Any:
    """Plain JSON values of a result: dataclasses as mappings (components with their ``training``, ``total``
    and ``shares``), tuples as lists, NaN and infinities as null."""
    if is_dataclass(value) and not isinstance(value, type):
        out = {f.name: to_json_values(getattr(value, f.name)) for f in fields(value)}
        if isinstance(value, Components):
            out |= {"training": value.training, "total": value.total, "shares": to_json_values(value.shares)}
            out = {k: to_json_values(v) for k, v in out.items()}
        return out
    if isinstance(value, dict):
        return {str(k): to_json_values(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json_values(v) for v in value]
    if isinstance(value, float | np.floating):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_analysis(path: str | Path, analysis: CVAnalysis, settings: dict[str, Any]) -> Path:
    """Write ``variance_components.json`` atomically: the format, units, :data:`CAVEAT`, ``settings`` (basin,
    sparsity, scheme, design, folds, repeats, seeds, buffer, mask resampling), and ``analysis`` by variant.

    Raises OSError if it cannot be written.
    """
    path = Path(path)
    values = {"format": VARIANCE_FORMAT, "units": {"rmse": "degC", "variance": "degC2", "log_rmse": "1"},
              "caveat": CAVEAT, "settings": to_json_values(settings),
              "variants": {a.variant: to_json_values(a) for a in analysis.variants},
              "paired": to_json_values(analysis.paired), "options": to_json_values(analysis.options),
              "missing_cells": list(analysis.missing_cells), "warnings": list(analysis.warnings)}
    write_atomic(path, lambda tmp: tmp.write_text(json.dumps(values, indent=2, allow_nan=False)))
    return path


def format_analysis(analysis: CVAnalysis) -> str:
    """Markdown summary: per variant the fold-level mean RMSE with its 95 % interval and the components as
    standard deviations (°C) with the data-partition share; then each paired difference with the ratio of
    partition variances and its 90 % interval; then the warnings and the caveat."""
    lines = ["| variant | mean RMSE (°C) [95 % CI] | σ_P (°C) | σ_S (°C) | σ_E (°C) | partition share | method |",
             "|---|---|---|---|---|---|---|"]
    for a in analysis.variants:
        d, c = a.fold, a.fold.components
        sd = [f"{math.sqrt(v):.3f}" if math.isfinite(v) else "–" for v in (c.partition, c.seed, c.residual)]
        share = f"{c.shares.partition:.0%}" if math.isfinite(c.shares.partition) else "–"
        lines.append(f"| {a.variant} | {d.mean:.3f} {_bounds(d.mean_interval, '.3f')} | "
                     + " | ".join(sd) + f" | {share} | {d.design} {d.method} |")
    for p in analysis.paired:
        d = p.difference
        ratio = (f"; σ²_P({p.a})/σ²_P({p.b}) {p.partition_ratio:.2f}"
                 + (f" {_bounds(p.partition_ratio_interval, '.2f')} (90 %)" if p.partition_ratio_interval else "")
                 if math.isfinite(p.partition_ratio) else "")
        lines.append(f"{p.a} − {p.b}: Δ RMSE {d.mean:+.3f} °C {_bounds(d.mean_interval, '+.3f')},"
                     f" {p.a} better in {p.fraction_a_better:.0%} of cells{ratio}")
    return "\n".join(lines + [f"warning: {w}" for w in analysis.warnings] + ["", CAVEAT])


def _bounds(interval: Interval, spec: str) -> str:
    """``[low, high]`` formatted with ``spec``, or ``[no interval]`` when a bound is NaN."""
    if not (math.isfinite(interval.low) and math.isfinite(interval.high)):
        return "[no interval]"
    return f"[{interval.low:{spec}}, {interval.high:{spec}}]"
