"""``msgl cv``: repeated spatial K-fold cross-validation × seeds for any registry variants.

Every (variant, repeat, fold, seed) cell is a :class:`~msgl_core.config.RunConfig` whose
``holdout_segments`` are the test fold's segments (plus the run's own hold-out) and whose
``buffer_segments`` are the fold's buffer, so the usual hold-out masking withholds their observations at
both scales from training and validation. With ``resample_mask`` the sparsity mask seed is the base seed +
repeat, so a repeat's data partition is its folds *and* its kept observations. The cells go through
:func:`msgl_core.compare.run_grid` (train or load, run cache, one run per Dask task). Outputs, each written
atomically in the output folder:

* ``folds.json``: every repeat's assignment (:mod:`msgl_core.cv.folds`);
* ``cv_results.parquet``: one row per run (:data:`RESULT_COLUMNS`; scores of the test fold's reaches over
  the test periods, °C), and ``cv_results.partial.parquet`` every 10 finished runs while the grid runs;
* ``cv_reach_results.parquet``: one row per run and test reach (:data:`REACH_COLUMNS`);
* ``cv_reach_years.parquet``: one row per run, test reach and water year (:data:`YEAR_COLUMNS`: the summed
  squared errors that the water-year block bootstrap resamples);
* ``variance_components.json``: :func:`msgl_core.cv.analysis.analyse` (not written when the analysis stops).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from msgl_core.compare import RunOutcome, check_domains, run_grid
from msgl_core.config import RunConfig
from msgl_core.cv.analysis import FAILED, OK, VARIANCE_FILE, AnalysisOptions, CVAnalysis, analyse, write_analysis
from msgl_core.cv.folds import FOLDS_FILE, FoldRules, Folds, check_scheme, make_folds, segment_tree, write_folds
from msgl_core.data.build import MultiscaleData
from msgl_core.dims import PARENT_SEGMENT, REACH
from msgl_core.evaluate.report import evaluate, holdout_water_years
from msgl_core.registry import get_variant
from msgl_core.runs import load_run, run_path, runs_root, write_atomic

RESULTS_FILE, REACH_RESULTS_FILE = "cv_results.parquet", "cv_reach_results.parquet"
REACH_YEARS_FILE = "cv_reach_years.parquet"
PARTIAL_FILE = "cv_results.partial.parquet"
PARTIAL_EVERY = 10
RESULT_COLUMNS = ("variant", "basin", "sparsity", "scheme", "design", "repeat", "fold", "seed", "partition_id",
                  "n_obs_test", "n_reaches_test", "rmse", "mae", "bias", "nse", "kge", "run_dir", "wall_s", "cached",
                  "status", "error")
REACH_COLUMNS = ("variant", "repeat", "fold", "seed", "reach_id", "seg_id_nat", "n_obs", "rmse", "bias")
YEAR_COLUMNS = ("variant", "repeat", "fold", "seed", "reach_id", "water_year", "n_obs", "sse")


@dataclass(frozen=True)
class CVPlan:
    """What ``msgl cv`` runs.

    Attributes:
        base: config every cell starts from (basin, sparsity, epochs, periods, the run's own hold-out, ...).
        variants: registry names; seeds: model seeds, crossed with every partition.
        scheme, n_folds, repeats, buffer_hops: the folds (:func:`~msgl_core.cv.folds.make_folds`; buffer
            None: the scheme's default).
        resample_mask: mask seed = ``base.mask_seed`` + repeat (else one mask for all repeats).
        rules: fold validity; analysis: how the table is analysed (its ``n_folds`` is set from this plan).

    Raises ValueError for an unknown variant (did-you-mean) or scheme, duplicate or fewer than 2 seeds,
    fewer than 2 folds, fewer than 1 repeat or a negative buffer.
    """

    base: RunConfig
    variants: tuple[str, ...]
    seeds: tuple[int, ...]
    scheme: str = "subbasin"
    n_folds: int = 5
    repeats: int = 3
    buffer_hops: int | None = None
    resample_mask: bool = True
    rules: FoldRules = field(default_factory=FoldRules)
    analysis: AnalysisOptions = field(default_factory=AnalysisOptions)

    def __post_init__(self) -> None:
        if not self.variants:
            raise ValueError("variants must name at least one registry variant")
        for name in self.variants:
            get_variant(name)
        if len(set(self.variants)) != len(self.variants):
            raise ValueError(f"variants must not repeat, got {list(self.variants)}")
        if len(self.seeds) < 2 or len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"seeds must list at least 2 different seeds (training variance), got {list(self.seeds)}")
        check_scheme(self.scheme, self.n_folds)
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")
        if self.buffer_hops is not None and self.buffer_hops < 0:
            raise ValueError(f"buffer_hops must be >= 0, got {self.buffer_hops}")
        object.__setattr__(self, "analysis", AnalysisOptions(self.analysis.design, self.n_folds,
                                                             self.analysis.allow_unbalanced, self.analysis.replicates,
                                                             self.analysis.bootstrap_seed))

    def settings(self) -> dict[str, object]:
        """The plan as plain values (written into ``variance_components.json``)."""
        return {"basin": self.base.basin, "sparsity": self.base.sparsity, "epochs": self.base.epochs,
                "variants": list(self.variants), "seeds": list(self.seeds), "scheme": self.scheme,
                "folds": self.n_folds, "repeats": self.repeats, "buffer_hops": self.buffer_hops,
                "mask_resampled": self.resample_mask, "design": self.analysis.design,
                "holdout_segments": list(self.base.holdout_segments)}


@dataclass(frozen=True)
class CVCell:
    """One run of the grid: variant, repeat r (0-based), fold k (0-based), seed, its config and the test
    fold's segments (``seg_id_nat``)."""

    variant: str
    repeat: int
    fold: int
    seed: int
    config: RunConfig
    test_segments: tuple[int, ...]


@dataclass(frozen=True, eq=False)
class CVResult:
    """What :func:`run_cv` produced: the folds per repeat, the run, per-reach and per-reach-year tables (columns
    :data:`RESULT_COLUMNS`, :data:`REACH_COLUMNS`, :data:`YEAR_COLUMNS`), the analysis (None when it stopped:
    ``analysis_error`` says why) and the files written."""

    folds: list[Folds]
    results: pd.DataFrame
    reach_results: pd.DataFrame
    reach_years: pd.DataFrame
    analysis: CVAnalysis | None
    analysis_error: str
    paths: list[Path]


def plan_folds(plan: CVPlan, data: MultiscaleData) -> list[Folds]:
    """The folds of every repeat. Raises ValueError as :func:`~msgl_core.cv.folds.make_folds`, for an
    unknown basin or hold-out segments outside it, and when two repeats give the same partition (fold labels
    aside) while their sparsity masks are the same too (``resample_mask`` off, or sparsity 1): their runs
    would repeat each other and the decomposition would count one partition twice."""
    check_domains([plan.base], data)
    tree = segment_tree(data, plan.base)
    folds = [make_folds(tree, plan.base.basin, plan.scheme, plan.n_folds, r, plan.base.holdout_segments,
                        plan.buffer_hops, plan.rules) for r in range(plan.repeats)]
    if not plan.resample_mask or plan.base.sparsity == 1.0:
        seen: dict[frozenset, int] = {}
        for assignment in folds:
            partition = frozenset(frozenset(fold.segments) for fold in assignment.folds)
            if partition in seen:
                raise ValueError(
                    f"repeats {seen[partition] + 1} and {assignment.repeat + 1} of basin {plan.base.basin!r} give the "
                    f"same partition into {plan.n_folds} folds ({plan.scheme} scheme, {len(assignment.blocks)} "
                    "blocks) with the same sparsity mask, so their runs would repeat each other; lower --repeats "
                    "or --folds, or use another scheme")
            seen[partition] = assignment.repeat
    return folds


def cv_cells(plan: CVPlan, folds: list[Folds]) -> list[CVCell]:
    """Every (variant, repeat, fold, seed) cell, in that nesting order."""
    base = plan.base
    cells: list[CVCell] = []
    for variant in plan.variants:
        for assignment in folds:
            mask_seed = base.mask_seed + assignment.repeat if plan.resample_mask else base.mask_seed
            for k, fold in enumerate(assignment.folds):
                cfg = base.with_overrides(variant=variant, mask_seed=mask_seed,
                                          holdout_segments=list(base.holdout_segments + fold.segments),
                                          buffer_segments=list(fold.buffer))
                cells.extend(CVCell(variant, assignment.repeat, k, seed, cfg.with_overrides(seed=seed), fold.segments)
                             for seed in plan.seeds)
    return cells


def run_cv(plan: CVPlan, data: MultiscaleData, out: str | Path, runs_dir: str | Path | None = None,
           scheduler: str | None = None, workers: int | None = None,
           on_result: Callable[[RunOutcome], None] | None = None) -> CVResult:
    """Build the folds, train or load every cell, tabulate and analyse (see the module docstring).

    Args:
        plan: the grid.
        data: the processed dataset.
        out: output folder (created).
        runs_dir, scheduler, workers, on_result: as :func:`msgl_core.compare.run_grid`.

    Raises ValueError before anything is written for bad folds (see :func:`plan_folds`); OSError if a file
    cannot be written. A failed run does not stop the grid; a failed analysis (failed cells without
    ``allow_unbalanced``) leaves ``analysis`` None and no ``variance_components.json``.
    """
    folds = plan_folds(plan, data)
    cells = cv_cells(plan, folds)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = [write_folds(out / FOLDS_FILE, folds, plan.rules)]
    root = runs_root(runs_dir).resolve()
    by_path: dict[str, list[int]] = {}
    for index, cell in enumerate(cells):
        by_path.setdefault(str(run_path(cell.config, data.path.name, root)), []).append(index)
    rows: dict[int, tuple[dict, list[dict], pd.DataFrame]] = {}

    def collect(outcome: RunOutcome) -> None:
        if not outcome.error:
            for index in by_path.get(outcome.path, []):
                rows[index] = _rows(cells[index], plan, outcome)
            if len(rows) // PARTIAL_EVERY > (len(rows) - 1) // PARTIAL_EVERY:
                _write_table(out / PARTIAL_FILE, [r[0] for r in rows.values()], RESULT_COLUMNS)
        if on_result:
            on_result(outcome)

    outcomes = run_grid([c.config for c in cells], data, root, scheduler, workers, collect)
    for index, (cell, outcome) in enumerate(zip(cells, outcomes)):
        if index not in rows:
            rows[index] = _rows(cell, plan, outcome)
    ordered = [rows[i] for i in range(len(cells))]
    results = _write_table(out / RESULTS_FILE, [r[0] for r in ordered], RESULT_COLUMNS)
    reach_results = _write_table(out / REACH_RESULTS_FILE, [row for r in ordered for row in r[1]], REACH_COLUMNS)
    years = pd.concat([r[2] for r in ordered if len(r[2])] or [pd.DataFrame(columns=list(YEAR_COLUMNS))],
                      ignore_index=True)
    write_atomic(out / REACH_YEARS_FILE, lambda tmp: years.to_parquet(tmp, index=False))
    (out / PARTIAL_FILE).unlink(missing_ok=True)
    paths += [out / RESULTS_FILE, out / REACH_RESULTS_FILE, out / REACH_YEARS_FILE]
    try:
        analysis = analyse(results, plan.analysis)
    except ValueError as error:
        (out / VARIANCE_FILE).unlink(missing_ok=True)  # a file from an earlier grid would not match these runs
        return CVResult(folds, results, reach_results, years, None, str(error), paths)
    paths.append(write_analysis(out / VARIANCE_FILE, analysis, plan.settings()))
    return CVResult(folds, results, reach_results, years, analysis, "", paths)


def _rows(cell: CVCell, plan: CVPlan, outcome: RunOutcome) -> tuple[dict, list[dict], pd.DataFrame]:
    """The run's row (scores of the test fold's reaches over the test periods), its per-reach rows and its
    per-reach water-year error sums."""
    cfg = cell.config
    row: dict = {"variant": cell.variant, "basin": cfg.basin, "sparsity": cfg.sparsity, "scheme": plan.scheme,
                 "design": plan.analysis.design, "repeat": cell.repeat, "fold": cell.fold, "seed": cell.seed,
                 "partition_id": cell.repeat * plan.n_folds + cell.fold, "run_dir": outcome.path,
                 "wall_s": outcome.seconds, "cached": outcome.cached}
    if outcome.error:
        return row | {"n_obs_test": 0, "n_reaches_test": 0, "rmse": np.nan, "mae": np.nan, "bias": np.nan,
                      "nse": np.nan, "kge": np.nan, "status": FAILED, "error": outcome.error}, [], \
            pd.DataFrame(columns=list(YEAR_COLUMNS))
    run = load_run(outcome.path)
    with run.predictions() as predictions:
        scored = run.config.with_overrides(holdout_segments=list(cell.test_segments), buffer_segments=[])
        section = evaluate(predictions, scored).holdout
        years = holdout_water_years(predictions, scored).assign(variant=cell.variant, repeat=cell.repeat,
                                                                fold=cell.fold, seed=cell.seed)
        parent = dict(zip(predictions[REACH].values.astype(str), predictions[PARENT_SEGMENT].values.astype(int)))
    assert section is not None  # every test segment has reaches
    overall = section.overall
    reaches = [{"variant": cell.variant, "repeat": cell.repeat, "fold": cell.fold, "seed": cell.seed,
                "reach_id": reach, "seg_id_nat": parent[reach], "n_obs": s.n_obs, "rmse": s.rmse, "bias": s.bias}
               for reach, s in section.per_node.items()]
    return row | {"n_obs_test": overall.n_obs, "n_reaches_test": len(section.per_node), "rmse": overall.rmse,
                  "mae": overall.mae, "bias": overall.bias, "nse": overall.nse, "kge": overall.kge, "status": OK,
                  "error": ""}, reaches, years[list(YEAR_COLUMNS)]


def _write_table(path: Path, rows: list[dict], columns: tuple[str, ...]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=list(columns))
    write_atomic(path, lambda tmp: table.to_parquet(tmp, index=False))
    return table
