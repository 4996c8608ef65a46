"""Compare variants over a grid of sparsities and seeds: train or load every run, tabulate test RMSE.

One run per Dask task (a :class:`distributed.LocalCluster` unless a scheduler address is given; its
workers must see the same data, cache and run folders). Runs already in the cache are loaded without
starting a cluster, so repeating a comparison is instant. Outputs (``write_outputs``):

* ``runs.csv``: one row per run (variant, sparsity, seed, test RMSE °C, seconds, folder, error);
* ``comparison.csv`` / ``comparison.json``: test RMSE mean ± std (°C) over seeds per variant and
  sparsity, and for MSGL variants the change against the best single-scale (fine-only) baseline;
* ``rmse_vs_sparsity.png``: test RMSE against sparsity, one line per variant.

The default output folder is ``comparisons_root() / basin`` (:func:`comparisons_root`);
:func:`read_comparison` reads a folder back, so the dashboard shows what the command wrote.
"""

from __future__ import annotations

import json
import math
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd

from msgl_core.config import RunConfig
from msgl_core.data.basins import check_domain
from msgl_core.data.build import MultiscaleData, load_dataset
from msgl_core.evaluate.record import ENSEMBLE_SCORES
from msgl_core.registry import get_variant
from msgl_core.runs import Run, is_complete, load_run, run_path, runs_root, train_or_load
from msgl_core.train.runtime import threads_per_process

MSGL_VARIANTS = ("msgl", "async_msgl")
NOT_CACHED = "not in the run cache"
RUNS_CSV, TABLE_CSV, TABLE_JSON, FIGURE = "runs.csv", "comparison.csv", "comparison.json", "rmse_vs_sparsity.png"
COMPARISONS_DIR_ENV = "MSGL_COMPARISONS_DIR"
NO_SCORES = "(no run with a test RMSE)"
#: Columns of :func:`summarise`'s table (``comparison.csv``, the records of ``comparison.json``).
TABLE_COLUMNS = ("variant", "sparsity", "rmse_mean", "rmse_std", "n_seeds", "change_vs_best_single_scale_pct")
#: The ensemble-score columns that follow (optional when reading: comparisons written before them lack them).
ENSEMBLE_COLUMNS = tuple(f"{c}_mean" for c in ENSEMBLE_SCORES)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class RunOutcome:
    """One grid cell's result: test RMSE (°C, NaN on failure), training seconds (from the run's metrics,
    also for a cached run), folder, whether it came from the cache, error text, and the overall ensemble
    scores of :meth:`~msgl_core.evaluate.record.RunMetrics.ensemble_scores` (a deterministic run's CRPS is its
    MAE; the others are NaN for it)."""

    variant: str
    sparsity: float
    seed: int
    test_rmse: float
    seconds: float
    path: str
    cached: bool
    error: str = ""
    crps: float = math.nan
    crpss: float = math.nan
    ssr: float = math.nan
    coverage_90: float = math.nan
    brier_20: float = math.nan
    brier_25: float = math.nan


def comparisons_root(path: str | Path | None = None) -> Path:
    """Folder of ``msgl compare`` outputs, one subfolder per basin: ``path``, else ``$MSGL_COMPARISONS_DIR``,
    else ``comparisons/`` here.

    Raises ValueError if it exists and is not a folder.
    """
    root = Path(path or os.environ.get(COMPARISONS_DIR_ENV) or "comparisons")
    if root.exists() and not root.is_dir():
        raise ValueError(f"comparisons folder {root} is a file; expected a folder")
    return root


def grid(base: RunConfig, variants: Sequence[str], sparsities: Sequence[float], seeds: Sequence[int]) -> list[RunConfig]:
    """Every (variant, sparsity, seed) config from ``base``. Raises ValueError for an unknown variant
    (with did-you-mean), a sparsity outside (0, 1] or an empty axis."""
    if not (variants and sparsities and seeds):
        raise ValueError("variants, sparsities and seeds must each name at least one value")
    for name in variants:
        get_variant(name)
    return [base.with_overrides(variant=v, sparsity=float(r), seed=int(s))
            for v in variants for r in sparsities for s in seeds]


def check_domains(configs: Sequence[RunConfig], data: MultiscaleData) -> None:
    """Raise ValueError if a config's basin or hold-out segments do not exist in ``data``."""
    for basin, holdout in {(cfg.basin, cfg.holdout_segments) for cfg in configs}:
        check_domain(data.network, basin, holdout)


def run_grid(configs: Sequence[RunConfig], data: MultiscaleData, runs_dir: str | Path | None = None,
             scheduler: str | None = None, workers: int | None = None,
             on_result: Callable[[RunOutcome], None] | None = None, train: bool = True) -> list[RunOutcome]:
    """Train or load every config; cached runs are loaded here, the rest run one per Dask task.

    Args:
        configs: the grid (see :func:`grid`).
        data: the processed dataset (its bundle and cache folders are reopened by the workers).
        runs_dir: run cache (see :func:`msgl_core.runs.runs_root`).
        scheduler: address of a running Dask scheduler; None starts a LocalCluster of ``workers``
            processes (default: one per CPU, at most one per run), each run with the config's ``threads``
            or, when unset, the CPUs split evenly (:func:`~msgl_core.train.runtime.threads_per_process`).
            ``workers=0`` trains in this process, one run after another, without Dask.
        on_result: called as each run finishes (progress).
        train: False only loads cached runs; the others get the error :data:`NOT_CACHED`.

    Returns outcomes in the order of ``configs``; a failed run has NaN RMSE and its error text.
    Raises ValueError before any run when a config's basin or hold-out does not exist in ``data``.
    """
    check_domains(configs, data)
    root = runs_root(runs_dir).resolve()
    fingerprint = data.path.name
    outcomes: dict[int, RunOutcome] = {}
    pending: list[int] = []
    for index, cfg in enumerate(configs):
        path = run_path(cfg, fingerprint, root)
        if is_complete(path):
            outcomes[index] = run_outcome(load_run(path), cached=True)
            if on_result:
                on_result(outcomes[index])
        elif train:
            pending.append(index)
        else:
            outcomes[index] = _outcome(cfg, float("nan"), 0.0, path, cached=False, error=NOT_CACHED)
            if on_result:
                on_result(outcomes[index])
    for index, outcome in _execute([configs[i] for i in pending], pending, data, root, scheduler, workers):
        outcomes[index] = outcome
        if on_result:
            on_result(outcome)
    return [outcomes[i] for i in range(len(configs))]


def _execute(configs: list[RunConfig], indices: list[int], data: MultiscaleData, root: Path,
             scheduler: str | None, workers: int | None) -> Iterator[tuple[int, RunOutcome]]:
    """Run ``configs`` (serially, or on Dask) and yield ``(index, outcome)`` as each finishes."""
    if not configs:
        return
    if workers == 0 and scheduler is None:
        for index, cfg in zip(indices, configs):
            yield index, _train(cfg, data, str(root))
        return
    from distributed import Client, LocalCluster, as_completed

    location = (str(data.bundle_dir), str(data.path.parent))

    cluster = None
    if scheduler is None:
        n = workers or max(1, min(len(configs), os.cpu_count() or 1))
        threads = threads_per_process(n)
        configs = [cfg if cfg.threads is not None else cfg.with_overrides(threads=threads) for cfg in configs]
        # Loopback only: neither the scheduler nor its diagnostics dashboard is reachable from other machines.
        cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True, host="127.0.0.1",
                               dashboard_address="127.0.0.1:0")
    try:
        with Client(scheduler or cluster) as client:
            futures = {client.submit(train_task, cfg.to_dict(), location, str(root), pure=False): index
                       for index, cfg in zip(indices, configs)}
            for future in as_completed(futures):
                yield futures[future], future.result()
    finally:
        if cluster is not None:
            cluster.close()


def train_task(values: dict, location: tuple[str, str], root: str) -> RunOutcome:
    """One Dask task: train or load the run of ``values`` (a :meth:`RunConfig.to_dict`) on the dataset at
    ``location`` (bundle folder, cache folder), opened once per worker process."""
    return _train(RunConfig.from_dict(values), _dataset(*location), root)


def _train(cfg: RunConfig, data: MultiscaleData, root: str) -> RunOutcome:
    """Train or load one run. Errors are returned in the outcome, not raised, so one bad run does not
    stop the grid."""
    start = time.perf_counter()
    try:
        run = train_or_load(cfg, data, runs_dir=root, progress=False)
    except (ValueError, RuntimeError, FileNotFoundError, MemoryError) as error:
        return _outcome(cfg, float("nan"), time.perf_counter() - start, Path(root), cached=False,
                        error=f"{type(error).__name__}: {error}")
    return run_outcome(run, cached=False)


def run_outcome(run: Run, cached: bool = True) -> RunOutcome:
    """A complete run as a grid cell of ``msgl compare`` (its test RMSE, training seconds and ensemble scores)."""
    cfg = run.config
    seconds = run.metrics.training.seconds if run.metrics.training is not None else float("nan")
    scores = run.metrics.ensemble_scores()
    return replace(_outcome(cfg, run.test_rmse, seconds, run.path, cached), crps=scores["crps"],
                   crpss=scores["crpss"], ssr=scores["ssr"], coverage_90=scores["coverage_90"],
                   brier_20=scores["brier_20"], brier_25=scores["brier_25"])


@lru_cache(maxsize=1)
def _dataset(bundle_dir: str, cache_dir: str) -> MultiscaleData:
    """The processed dataset, opened once per worker process."""
    return load_dataset(bundle_dir, cache_dir)


def _outcome(cfg: RunConfig, rmse: float, seconds: float, path: Path, cached: bool, error: str = "") -> RunOutcome:
    return RunOutcome(cfg.variant, cfg.sparsity, cfg.seed, rmse, round(seconds, 1), str(path), cached, error)


def summarise(outcomes: Sequence[RunOutcome]) -> pd.DataFrame:
    """Test RMSE (°C) mean, std (ddof 1; NaN for one seed) and seed count per variant and sparsity,
    in the order variants first appear; MSGL variants get ``change_vs_best_single_scale_pct``, their
    mean RMSE change against the best fine-only baseline at the same sparsity (negative = better). The seed
    means of the ensemble scores follow as ``crps_mean`` … ``brier_25_mean`` (:data:`ENSEMBLE_SCORES`)."""
    columns = list(TABLE_COLUMNS + ENSEMBLE_COLUMNS)
    runs = pd.DataFrame([vars(o) for o in outcomes])
    ok = runs[runs["error"] == ""] if len(runs) else runs
    if ok.empty:
        return pd.DataFrame(columns=columns)
    order = list(dict.fromkeys(runs["variant"]))
    table = (ok.groupby(["variant", "sparsity"])["test_rmse"].agg(rmse_mean="mean", rmse_std="std", n_seeds="count")
             .reset_index())
    means = ok.groupby(["variant", "sparsity"])[list(ENSEMBLE_SCORES)].mean().add_suffix("_mean").reset_index()
    table = table.merge(means, on=["variant", "sparsity"])
    table["variant"] = pd.Categorical(table["variant"], categories=order, ordered=True)
    table = table.sort_values(["variant", "sparsity"]).reset_index(drop=True)
    table["variant"] = table["variant"].astype(str)
    single = table[[_single_scale(v) for v in table["variant"]]]
    best = single.groupby("sparsity")["rmse_mean"].min()
    change = 100 * (table["rmse_mean"] / table["sparsity"].map(best) - 1)
    table["change_vs_best_single_scale_pct"] = np.where(table["variant"].isin(MSGL_VARIANTS), change, np.nan)
    return table[columns]


def _single_scale(name: str) -> bool:
    variant = get_variant(name)
    return variant.uses_fine_obs and not (variant.uses_coarse_obs or variant.uses_simulation)


def format_table(table: pd.DataFrame) -> str:
    """Markdown table: one row per variant, one column per sparsity, ``mean ± std`` °C; for an empty
    table (no run with a test RMSE) a sentence saying so."""
    if table.empty:
        return NO_SCORES
    sparsities = sorted(table["sparsity"].unique())
    lines = ["| variant | " + " | ".join(f"ρ = {100 * r:g} %" for r in sparsities) + " |",
             "|---|" + "---|" * len(sparsities)]
    for variant, rows in table.groupby("variant", sort=False):
        cells = []
        for r in sparsities:
            row = rows[rows["sparsity"] == r]
            if row.empty:
                cells.append("")
                continue
            mean, std, change = (float(row[c].iloc[0]) for c in ("rmse_mean", "rmse_std", "change_vs_best_single_scale_pct"))
            cell = f"{mean:.2f}" + (f" ± {std:.2f}" if np.isfinite(std) else "")
            cells.append(cell + (f" ({change:+.0f} %)" if np.isfinite(change) else ""))
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def format_ensemble_table(table: pd.DataFrame) -> str | None:
    """Markdown table of the ensemble scores (seed means), one row per variant and sparsity, when the table
    holds a probabilistic run (a finite ``crpss_mean``); else None. A deterministic row's CRPS is its MAE."""
    if table.empty or "crpss_mean" not in table or not np.isfinite(table["crpss_mean"]).any():
        return None
    names = {"crps": "CRPS °C", "crpss": "CRPSS", "ssr": "SSR", "coverage_90": "coverage-90", "brier_20": "Brier 20",
             "brier_25": "Brier 25"}
    lines = ["| variant | ρ | RMSE of mean °C | " + " | ".join(names[c] for c in ENSEMBLE_SCORES) + " |",
             "|---|---|---|" + "---|" * len(ENSEMBLE_SCORES)]
    for row in table.to_dict("records"):
        cells = [f"{float(row[c + '_mean']):.3f}" if np.isfinite(float(row[c + "_mean"])) else "–"
                 for c in ENSEMBLE_SCORES]
        lines.append(f"| {row['variant']} | {100 * float(row['sparsity']):g} % | {float(row['rmse_mean']):.2f} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines)


def write_outputs(outcomes: Sequence[RunOutcome], table: pd.DataFrame, out: str | Path, title: str) -> list[Path]:
    """Write ``runs.csv``, ``comparison.csv``, ``comparison.json`` and ``rmse_vs_sparsity.png`` to
    ``out`` (each via a temporary file and a rename). Returns the paths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    runs = pd.DataFrame([vars(o) for o in outcomes])
    records = json.loads(table.to_json(orient="records"))
    writers = {
        RUNS_CSV: lambda p: runs.to_csv(p, index=False),
        TABLE_CSV: lambda p: table.to_csv(p, index=False),
        TABLE_JSON: lambda p: p.write_text(json.dumps({"title": title, "units": "degC", "table": records}, indent=2)),
        FIGURE: lambda p: _plot(table, title, p),
    }
    paths = []
    for name, write in writers.items():
        tmp = out / f".{name}.tmp"
        write(tmp)
        os.replace(tmp, out / name)
        paths.append(out / name)
    return paths


def _plot(table: pd.DataFrame, title: str, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for variant, rows in table.groupby("variant", sort=False):
        style = "-o" if variant in MSGL_VARIANTS else "--s"
        ax.errorbar(100 * rows["sparsity"], rows["rmse_mean"], yerr=rows["rmse_std"].fillna(0), fmt=style,
                    capsize=3, label=variant, linewidth=2 if variant in MSGL_VARIANTS else 1)
    ax.set_xscale("log")
    ticks = sorted(100 * table["sparsity"].unique())
    ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.minorticks_off()
    ax.set_xlabel("sparsity ρ: kept fraction of fine training observations (%)")
    ax.set_ylabel("test RMSE (°C), mean ± std over seeds")
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    fig.savefig(path, format="png")
    plt.close(fig)


@dataclass(frozen=True, eq=False)
class ComparisonOutputs:
    """What ``msgl compare`` wrote to one folder (:func:`write_outputs`), as :func:`read_comparison` reads it.

    Attributes:
        folder: the folder (``comparisons/<basin>/`` by default, see :func:`comparisons_root`).
        title: the comparison's title (basin, epochs per stage, seeds).
        table: :func:`summarise`'s table from ``comparison.json`` (columns :data:`TABLE_COLUMNS`; RMSE in °C,
            change in %); ``comparison.csv`` holds the same table.
        runs: ``runs.csv``, one row per run with the :class:`RunOutcome` fields (``test_rmse`` °C, NaN for a
            failed run; ``error`` "" for a run that did not fail).
        figure: ``rmse_vs_sparsity.png``, or None when it is missing.
    """

    folder: Path
    title: str
    table: pd.DataFrame
    runs: pd.DataFrame
    figure: Path | None


def read_comparison(folder: str | Path) -> ComparisonOutputs:
    """Read the outputs of ``msgl compare`` in ``folder`` (see :func:`write_outputs`).

    Raises FileNotFoundError when ``folder`` has no ``comparison.json`` or ``runs.csv``; ValueError when a
    file is damaged (not JSON or CSV, a missing or non-numeric field, other units, not a PNG), naming the
    file as ``<folder name>/<file>`` and the field.
    """
    folder = Path(folder)
    for name in (TABLE_JSON, RUNS_CSV):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder.name}/{name}: missing; run `msgl compare` for this basin")
    title, table = _read_table(folder)
    figure = folder / FIGURE
    if figure.is_file():
        with figure.open("rb") as stream:
            if stream.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
                raise ValueError(f"{folder.name}/{FIGURE}: not a PNG image")
    return ComparisonOutputs(folder, title, table, _read_runs(folder), figure if figure.is_file() else None)


def _read_table(folder: Path) -> tuple[str, pd.DataFrame]:
    """Title and table of ``comparison.json``."""
    source = f"{folder.name}/{TABLE_JSON}"
    try:
        values = json.loads((folder / TABLE_JSON).read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{source}: not JSON ({error})") from None
    if not isinstance(values, dict) or not isinstance(values.get("title"), str):
        raise ValueError(f"{source}: expected an object with a text field 'title'")
    if values.get("units") != "degC":
        raise ValueError(f"{source}: field 'units' must be 'degC', got {values.get('units')!r}")
    records = values.get("table")
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise ValueError(f"{source}: field 'table' must be a list of rows")
    for k, row in enumerate(records):
        missing = [c for c in TABLE_COLUMNS if c not in row]
        if missing:
            raise ValueError(f"{source}: row {k} of 'table' lacks field(s) {', '.join(missing)}")
        if not isinstance(row["variant"], str):
            raise ValueError(f"{source}: row {k} of 'table': field 'variant' must be text")
        for column in TABLE_COLUMNS[1:] + tuple(c for c in ENSEMBLE_COLUMNS if c in row):
            value = row[column]
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
                raise ValueError(f"{source}: row {k} of 'table': field {column!r} must be a number, got {value!r}")
    table = pd.DataFrame(records, columns=list(TABLE_COLUMNS + ENSEMBLE_COLUMNS))
    if records:
        table = table.astype({c: float for c in TABLE_COLUMNS[1:] + ENSEMBLE_COLUMNS})
        if table["n_seeds"].isna().any():
            raise ValueError(f"{source}: field 'n_seeds' must be a count, got null")
        table["n_seeds"] = table["n_seeds"].astype(int)
    return values["title"], table


def _read_runs(folder: Path) -> pd.DataFrame:
    """``runs.csv`` with numeric columns checked."""
    source = f"{folder.name}/{RUNS_CSV}"
    try:
        runs = pd.read_csv(folder / RUNS_CSV)
    except (UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as error:
        raise ValueError(f"{source}: not a table of runs ({error})") from None
    fields = list(RunOutcome.__dataclass_fields__)
    missing = [c for c in fields if c not in runs and c not in ENSEMBLE_SCORES]
    if missing:
        raise ValueError(f"{source}: missing column(s) {', '.join(missing)}")
    for column in ENSEMBLE_SCORES:
        if column not in runs:
            runs[column] = math.nan
    for column in ("sparsity", "seed", "test_rmse", "seconds", *ENSEMBLE_SCORES):
        try:
            runs[column] = pd.to_numeric(runs[column])
        except (ValueError, TypeError):
            raise ValueError(f"{source}: column {column!r} must hold numbers") from None
    runs["error"] = ["" if pd.isna(error) else str(error) for error in runs["error"]]
    return runs[fields]
