"""The ``msgl`` command line: ``data build|info``, ``train``, ``evaluate``, ``predict``, ``variants``, ``compare``,
``holdout``, ``ungauged``, ``cv``, ``serve``."""

from __future__ import annotations

import json
import logging
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from msgl_core.config import ENSEMBLE_VARIANTS, RunConfig
from msgl_core.data.build import build_dataset, load_dataset

app = typer.Typer(help="Multi-Scale Graph Learning for DRB stream temperature.", no_args_is_help=True,
                  add_completion=False)
data_app = typer.Typer(help="Build and inspect the processed DRB dataset.", no_args_is_help=True)
app.add_typer(data_app, name="data")

DataDir = Annotated[Path | None, typer.Option(
    "--data-dir", help="DRB bundle folder (else $MSGL_DATA_DIR, data/drb/, ../shared/data/drb/).")]
CacheDir = Annotated[Path | None, typer.Option(
    "--cache-dir", help="Processed-data cache (else $MSGL_CACHE_DIR, ~/.cache/msgl).")]


HoldoutSegments = Annotated[str | None, typer.Option(
    "--holdout-segments", help="Comma-separated seg_id_nat withheld from training (ungauged test; `msgl holdout`).")]
ReservoirFeatures = Annotated[bool | None, typer.Option(
    "--reservoir-features/--no-reservoir-features",
    help="Add the nearest upstream dam's proximity, storage and regulation as static inputs.")]


def _segments(text: str | None) -> list[str] | None:
    """``--holdout-segments`` text → list of items (None when the option is not given)."""
    return None if text is None else [s for s in text.split(",") if s]


class _StepPrinter:
    """Prints numbered build steps with the time each took, to stderr."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.step = 0

    def __call__(self, message: str) -> None:
        now = time.perf_counter()
        if self.step:
            typer.echo(f"      done in {now - self.last:.1f} s", err=True)
        self.step += 1
        self.last = now
        typer.echo(f"[{self.step}] {message}", err=True)


def _fail(error: Exception) -> None:
    """Print ``error`` as one line (an OSError without its ``[Errno N]`` prefix) and exit with code 2."""
    message: object = error
    if isinstance(error, OSError) and error.strerror:
        message = error.strerror if error.filename is None else f"{error.filename}: {error.strerror}"
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code=2)


#: What a command reports as a one-line error (exit 2) instead of a traceback: bad values and files
#: (ValueError, including DataError), missing files, unwritable files or a full disk (OSError), and
#: cancelled or diverged trainings (RuntimeError).
EXPECTED_ERRORS = (ValueError, OSError, RuntimeError)


def _folder_option(path: Path | None, option: str) -> None:
    """Raise ValueError if ``path`` (a folder option) exists and is a file."""
    if path is not None and path.exists() and not path.is_dir():
        raise ValueError(f"{option} {path} is a file; expected a folder")


@data_app.command("build")
def data_build(data_dir: DataDir = None, cache_dir: CacheDir = None,
               rebuild: Annotated[bool, typer.Option(help="Rebuild even if a cache exists.")] = False) -> None:
    """Build the processed dataset (NetCDF + GeoPackage) from the bundle, or reuse the cache."""
    printer = _StepPrinter()
    try:
        _folder_option(data_dir, "--data-dir")
        _folder_option(cache_dir, "--cache-dir")
        path = build_dataset(data_dir, cache_dir, rebuild=rebuild, progress=printer)
    except EXPECTED_ERRORS as error:
        _fail(error)
    typer.echo(f"total {time.perf_counter() - printer.start:.1f} s", err=True)
    typer.echo(str(path))


@data_app.command("info")
def data_info(data_dir: DataDir = None, cache_dir: CacheDir = None,
              as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False) -> None:
    """Summarise the processed dataset (builds it first if needed)."""
    try:
        info = _load_data(data_dir, cache_dir, progress=None if as_json else _StepPrinter()).info()
    except EXPECTED_ERRORS as error:
        _fail(error)
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    typer.echo(f"segments {info['n_segments']}, reaches {info['n_reaches']}, "
               f"{info['time_start']}..{info['time_end']}")
    typer.echo(f"observed segment-days {info['n_coarse_obs']:,} on {info['n_coarse_obs_segments']} segments")
    typer.echo(f"observed reach-days {info['n_fine_obs']:,} on {info['n_fine_obs_reaches']} reaches")
    typer.echo(f"drivers: {', '.join(info['drivers'])}")
    for name, preset in info["presets"].items():
        typer.echo(f"preset {name}: outlet {preset['outlet_seg_id_nat']}, {preset['n_segments']} segments, "
                   f"{preset['n_reaches']} reaches - {preset['description']}")
    typer.echo(f"cache: {info['cache']}")


@app.command("train")
def train(
    config: Annotated[Path | None, typer.Option("--config", help="YAML run config; options below override it.")] = None,
    variant: Annotated[str | None, typer.Option(help="Registry variant (see `msgl variants`).")] = None,
    basin: Annotated[str | None, typer.Option(help="drb, a preset name, or an outlet seg_id_nat.")] = None,
    sparsity: Annotated[float | None, typer.Option(help="Kept fraction of fine training obs, (0, 1].")] = None,
    seed: Annotated[int | None, typer.Option(help="Model seed.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    holdout_segments: HoldoutSegments = None,
    reservoir_features: ReservoirFeatures = None,
    early_stopping: Annotated[int | None, typer.Option(help="Patience in epochs.")] = None,
    faithful_step: Annotated[bool | None, typer.Option(help="MSGL: the official 6-pass step.")] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads.")] = None,
    members: Annotated[int | None, typer.Option(help="ot_diffusion: ensemble members M (>= 2).")] = None,
    run_dir: Annotated[Path | None, typer.Option("--run-dir", help="Folder of this run.")] = None,
    runs_dir: Annotated[Path | None, typer.Option("--runs-dir", help="Run cache (else $MSGL_RUNS_DIR, runs/).")] = None,
    data_dir: DataDir = None, cache_dir: CacheDir = None,
) -> None:
    """Train a model (or load the cached run with the same config and data). ``ot_diffusion`` trains (or loads)
    its base run first and writes an ensemble summary (docs/probabilistic.md)."""
    from msgl_core.runs import train_or_load

    overrides = {k: v for k, v in {
        "variant": variant, "basin": basin, "sparsity": sparsity, "seed": seed, "epochs": epochs,
        "device": device, "early_stopping": early_stopping, "faithful_step": faithful_step, "threads": threads,
        "holdout_segments": _segments(holdout_segments), "reservoir_features": reservoir_features,
    }.items() if v is not None}
    try:
        cfg = (RunConfig.from_yaml(config) if config else RunConfig()).with_overrides(**overrides)
        if members is not None:
            if cfg.variant not in ENSEMBLE_VARIANTS:
                raise ValueError(f"--members is an option of the ensemble variants ({', '.join(ENSEMBLE_VARIANTS)}), "
                                 f"not of {cfg.variant!r}")
            cfg = cfg.with_overrides(ot_diffusion={**cfg.to_dict()["ot_diffusion"], "members": members})
        _folder_option(run_dir, "--run-dir")
        _folder_option(runs_dir, "--runs-dir")
        run = train_or_load(cfg, _load_data(data_dir, cache_dir), runs_dir, run_dir)
    except EXPECTED_ERRORS as error:
        _fail(error)
    typer.echo(f"test RMSE {run.test_rmse:.3f} °C  ({run.path})")
    if run.metrics.probabilistic is not None:
        typer.echo(_ensemble_line(run.metrics.probabilistic.fine.overall, run.metrics.probabilistic.n_members))


def _ensemble_line(scores: Any, members: int) -> str:
    """One line of ensemble scores (a :class:`~msgl_core.evaluate.probabilistic.ProbabilisticScores`)."""
    return (f"ensemble ({members} members): CRPS {scores.crps:.3f} °C  CRPSS {scores.crpss:+.3f}  SSR {scores.ssr:.2f}  "
            f"coverage-90 {scores.coverage_90:.2f}  Brier20 {scores.brier_20:.3f}  Brier25 {scores.brier_25:.3f}  "
            f"n={scores.n_obs}")


@app.command("evaluate")
def evaluate_run(run_dir: Annotated[Path, typer.Option("--run-dir", help="A trained run's folder.")],
                 as_json: Annotated[bool, typer.Option("--json", help="Print the full JSON report.")] = False,
                 data_dir: DataDir = None, cache_dir: CacheDir = None) -> None:
    """Test-period metrics (RMSE, MAE, bias in °C; NSE, KGE) overall, per reach and per month, and whether
    the run is reliable (msgl_core.reliability: enough kept fine observations, test NSE ≥ 0)."""
    from msgl_core.evaluate.reliability import reliability
    from msgl_core.runs import load_run

    try:
        run = load_run(run_dir)
    except EXPECTED_ERRORS as error:
        _fail(error)
    if as_json:
        typer.echo(run.metrics.to_json())
        return
    for section, o in run.metrics.sections().items():
        typer.echo(f"{section:<8} RMSE {o.rmse:.3f} °C  MAE {o.mae:.3f}  bias {o.bias:+.3f}  "
                   f"NSE {o.nse:.3f}  KGE {o.kge:.3f}  n={o.n_obs}")
    ensemble = run.metrics.probabilistic
    if ensemble is not None:
        typer.echo(f"ensemble mean above; {_ensemble_line(ensemble.fine.overall, ensemble.n_members)}")
        if ensemble.holdout is not None:
            typer.echo(f"held-out {_ensemble_line(ensemble.holdout.overall, ensemble.n_members)}")
        from msgl_core.ensemble_runs import prior_learned_from

        try:
            typer.echo(f"learned from: {prior_learned_from(run.path)} (docs/probabilistic.md §6)")
        except EXPECTED_ERRORS as error:
            _fail(error)
    try:
        typer.echo(reliability(run, _load_data(data_dir, cache_dir)).text())
    except EXPECTED_ERRORS as error:
        _fail(error)


@app.command("predict")
def predict(run_dir: Annotated[Path, typer.Option("--run-dir", help="A trained run's folder.")],
            out: Annotated[Path, typer.Option("--out", help="NetCDF file to write.")],
            device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
            members: Annotated[bool, typer.Option(
                "--members", help="ot_diffusion: also write the ensemble members (<out>_members.nc).")] = False,
            data_dir: DataDir = None, cache_dir: CacheDir = None) -> None:
    """Predict daily temperature for every reach of the run's domain over the whole record (an ot_diffusion run
    writes its stored ensemble summary: mean, quantiles, exceedance probabilities)."""
    from msgl_core.runs import check_output_file, load_run, write_predictions

    try:
        check_output_file(out)
        run = load_run(run_dir)
        path = write_predictions(run, _load_data(data_dir, cache_dir), out, device, members)
    except EXPECTED_ERRORS as error:
        _fail(error)
    typer.echo(str(path))


@app.command("variants")
def variants(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List the model variants with their data needs and citation."""
    from msgl_core.registry import variants_by_family

    groups = variants_by_family()
    rows: list[dict[str, Any]] = [
        {"name": v.name, "title": v.title, "family": v.family, "description": v.description, "citation": v.citation,
         "uses_fine_obs": v.uses_fine_obs, "uses_coarse_obs": v.uses_coarse_obs, "uses_simulation": v.uses_simulation,
         "stages": [s.name for s in v.stages]}
        for members in groups.values() for v in members]
    if as_json:
        typer.echo(json.dumps(rows, indent=2))
        return
    width = max(len(row["name"]) for row in rows) + 1
    for i, row in enumerate(rows):
        if i == 0 or rows[i - 1]["family"] != row["family"]:
            typer.echo(f"{'' if i == 0 else chr(10)}# {row['family']}")
        uses = ", ".join(k[5:] for k in ("uses_fine_obs", "uses_coarse_obs", "uses_simulation") if row[k])
        stages = f"; stages: {' → '.join(row['stages'])}" if len(row["stages"]) > 1 else ""
        typer.echo(f"{row['name']:<{width}} {row['description']} [{uses}{stages}]\n{'':<{width}} {row['citation']}")


@app.command("compare")
def compare(
    basin: Annotated[str | None, typer.Option(
        help="drb, a preset name, or an outlet seg_id_nat (else the config's, rancocas by default).")] = None,
    variants: Annotated[str, typer.Option(help="Comma-separated registry variants.")] = "msgl,rgcn_fine",
    sparsity: Annotated[str, typer.Option(help="Comma-separated kept fractions, each in (0, 1].")] = "0.01,0.1,1",
    seeds: Annotated[str, typer.Option(help="Comma-separated model seeds.")] = "1,2,3",
    config: Annotated[Path | None, typer.Option(
        "--config", help="YAML base config (epochs, periods, ...); the grid overrides variant, sparsity, seed.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs per stage.")] = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    threads: Annotated[int | None, typer.Option(
        help="torch CPU threads per run (default on a local cluster: the CPUs split between its workers).")] = None,
    holdout_segments: HoldoutSegments = None,
    reservoir_features: ReservoirFeatures = None,
    scheduler: Annotated[str | None, typer.Option(
        help="Address of a Dask scheduler (tcp://host:8786); else a LocalCluster is started.")] = None,
    workers: Annotated[int | None, typer.Option(
        help="LocalCluster worker processes (default: one per CPU); 0 trains here, one run after another.")] = None,
    cached_only: Annotated[bool, typer.Option(
        "--cached-only", help="Tabulate the runs already in the cache; train nothing.")] = False,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Output folder (else <$MSGL_COMPARISONS_DIR or comparisons/>/<basin>/).")] = None,
    runs_dir: Annotated[Path | None, typer.Option("--runs-dir", help="Run cache (else $MSGL_RUNS_DIR, runs/).")] = None,
    data_dir: DataDir = None, cache_dir: CacheDir = None,
) -> None:
    """Train or load every (variant, sparsity, seed) run and tabulate test RMSE (CSV, JSON, PNG)."""
    from tqdm.auto import tqdm

    from msgl_core.compare import (
        NOT_CACHED,
        check_domains,
        comparisons_root,
        format_ensemble_table,
        format_table,
        grid,
        run_grid,
        summarise,
        write_outputs,
    )

    overrides = {k: v for k, v in {"basin": basin, "epochs": epochs, "device": device, "threads": threads,
                                   "holdout_segments": _segments(holdout_segments),
                                   "reservoir_features": reservoir_features}.items() if v is not None}
    try:
        base = (RunConfig.from_yaml(config) if config else RunConfig()).with_overrides(**overrides)
        configs = grid(base, _split(variants, str), _split(sparsity, float), _split(seeds, int))
        folder = out if out is not None else comparisons_root() / base.basin
        _folder_option(folder, "--out")
        _folder_option(runs_dir, "--runs-dir")
        data = _load_data(data_dir, cache_dir)
        check_domains(configs, data)
    except EXPECTED_ERRORS as error:
        _fail(error)
    failures = []
    with tqdm(total=len(configs), desc=f"compare {base.basin}", unit="run") as bar:
        def on_result(outcome) -> None:
            bar.update(1)
            bar.set_postfix_str(f"{outcome.variant} ρ={outcome.sparsity:g} seed {outcome.seed}: "
                                + (f"{outcome.test_rmse:.2f} °C" if not outcome.error else outcome.error[:40]))
            if outcome.error and outcome.error != NOT_CACHED:
                failures.append(outcome)

        try:
            outcomes = run_grid(configs, data, runs_dir, scheduler, workers, on_result, train=not cached_only)
        except (*EXPECTED_ERRORS, TimeoutError) as error:
            _fail(error)
    table = summarise(outcomes)
    title = f"{base.basin}: test RMSE, {base.epochs} epochs per stage, seeds {seeds}"
    try:
        paths = write_outputs(outcomes, table, folder, title)
    except OSError as error:
        _fail(error)
    typer.echo(format_table(table))
    ensemble = format_ensemble_table(table)
    if ensemble is not None:
        typer.echo("\nensemble scores (test, gauged reaches; a deterministic run's CRPS is its MAE; the diffusion "
                   "prior was learned from base-run fields):\n" + ensemble)
    missing = sum(o.error == NOT_CACHED for o in outcomes)
    if missing:
        typer.echo(f"{missing} of {len(outcomes)} runs are not in the run cache (--cached-only): left out", err=True)
    for outcome in failures:
        typer.echo(f"failed: {outcome.variant} ρ={outcome.sparsity:g} seed {outcome.seed}: {outcome.error}", err=True)
    typer.echo("wrote " + ", ".join(str(p) for p in paths), err=True)
    if failures:
        raise typer.Exit(code=1)


@app.command("holdout")
def holdout(
    basin: Annotated[str | None, typer.Option(
        help="drb, a preset name, or an outlet seg_id_nat (else the config's, rancocas by default).")] = None,
    n: Annotated[int, typer.Option("--n", help="Number of hold-out segments.")] = 4,
    below_dam: Annotated[int, typer.Option(help="How many of them lie within 30 km below a dam.")] = 0,
    min_obs: Annotated[int, typer.Option(help="Fewest fine test observations of a candidate segment.")] = 100,
    config: Annotated[Path | None, typer.Option("--config", help="YAML run config (basin, test periods).")] = None,
    data_dir: DataDir = None, cache_dir: CacheDir = None,
) -> None:
    """Print hold-out segments spread over a basin, for --holdout-segments (msgl_core.evaluate.ungauged)."""
    from msgl_core.evaluate.ungauged import choose_holdout

    try:
        base = (RunConfig.from_yaml(config) if config else RunConfig()).with_overrides(
            **({} if basin is None else {"basin": basin}))
        segments = choose_holdout(_load_data(data_dir, cache_dir), base.basin, n, below_dam, base.test_periods, min_obs)
    except EXPECTED_ERRORS as error:
        _fail(error)
    typer.echo(",".join(str(s) for s in segments))


@app.command("ungauged")
def ungauged(
    folders: Annotated[list[Path], typer.Argument(help="`msgl compare` output folders of runs with a hold-out.")],
    out: Annotated[Path | None, typer.Option("--out", help="CSV of every run's held-out scores.")] = None,
    data_dir: DataDir = None, cache_dir: CacheDir = None,
) -> None:
    """Held-out RMSE (°C) per variant: all held-out reaches, those below a dam, the rest, and per segment."""
    from msgl_core.compare import read_comparison
    from msgl_core.evaluate.ungauged import heldout_table, summarise_heldout
    from msgl_core.runs import check_output_file, load_run, write_atomic

    try:
        if out is not None:
            check_output_file(out, ".csv")
        data = _load_data(data_dir, cache_dir)
        runs = [(folder.name, load_run(path)) for folder in folders
                for path in read_comparison(folder).runs.query("error == ''")["path"]]
        table = heldout_table(runs, data)
        if out is not None:
            write_atomic(out, lambda p: table.to_csv(p, index=False))
    except EXPECTED_ERRORS as error:
        _fail(error)
    summary = summarise_heldout(table)
    wide = summary.assign(cell=[f"{m:.2f} ± {s:.2f}" if n > 1 else f"{m:.2f}"
                                for m, s, n in zip(summary["rmse_mean"], summary["rmse_std"], summary["n_seeds"])])
    typer.echo(wide.pivot_table(index=["label", "variant", "sparsity"], columns="unit", values="cell",
                                aggfunc="first", sort=False).to_string())


@app.command("cv")
def cross_validate(
    basin: Annotated[str | None, typer.Option(
        help="drb, a preset name, or an outlet seg_id_nat (else the config's, rancocas by default).")] = None,
    variants: Annotated[str, typer.Option(help="Comma-separated registry variants.")] = "msgl,rgcn_fine",
    sparsity: Annotated[float | None, typer.Option(help="Kept fraction of fine training obs, (0, 1].")] = None,
    folds: Annotated[int, typer.Option(help="K spatial folds (>= 2).")] = 5,
    repeats: Annotated[int, typer.Option(help="Repeats R of the K-fold partition (>= 1).")] = 3,
    seeds: Annotated[str, typer.Option(help="Comma-separated model seeds (>= 2), crossed with partitions.")] = "1,2,3",
    cv_scheme: Annotated[str, typer.Option(
        "--cv-scheme", help="subbasin (connected blocks of the river tree) or segment.")] = "subbasin",
    buffer_hops: Annotated[int | None, typer.Option(
        help="Withhold from training the segments this many hops up/downstream of a test fold "
             "(default 0 for subbasin, 1 for segment).")] = None,
    fixed_mask: Annotated[bool, typer.Option(
        "--fixed-mask", help="One sparsity mask for all repeats (default: mask seed + repeat).")] = False,
    design: Annotated[str, typer.Option(help="crossed (seed = same init everywhere) or nested.")] = "crossed",
    allow_unbalanced: Annotated[bool, typer.Option(
        "--allow-unbalanced", help="Analyse a grid with failed runs by REML instead of stopping.")] = False,
    min_fold_reaches: Annotated[int, typer.Option(help="Fewest observed test reaches per fold.")] = 3,
    min_fold_obs: Annotated[int, typer.Option(help="Fewest test-period fine observations per fold.")] = 200,
    fold_balance: Annotated[float, typer.Option(help="Largest deviation of a fold's weight from W/K.")] = 0.25,
    bootstrap: Annotated[int, typer.Option(help="Pigeonhole-bootstrap replicates.")] = 2000,
    bootstrap_seed: Annotated[int, typer.Option(help="Seed of the bootstrap.")] = 0,
    config: Annotated[Path | None, typer.Option(
        "--config", help="YAML base config (epochs, periods, ...); the grid sets variant, seed and hold-out.")] = None,
    epochs: Annotated[int | None, typer.Option(help="Training epochs per stage.")] = None,
    holdout_segments: HoldoutSegments = None,
    reservoir_features: ReservoirFeatures = None,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads per run.")] = None,
    scheduler: Annotated[str | None, typer.Option(
        help="Address of a Dask scheduler (tcp://host:8786); else a LocalCluster is started.")] = None,
    workers: Annotated[int | None, typer.Option(
        help="LocalCluster worker processes (default: one per CPU); 0 trains here, one run after another.")] = None,
    out: Annotated[Path | None, typer.Option(
        "--out", help="Output folder (else <$MSGL_COMPARISONS_DIR or comparisons/>/<basin>/cv_rho<ρ>/).")] = None,
    runs_dir: Annotated[Path | None, typer.Option("--runs-dir", help="Run cache (else $MSGL_RUNS_DIR, runs/).")] = None,
    data_dir: DataDir = None, cache_dir: CacheDir = None,
) -> None:
    """Spatial K-fold cross-validation × seeds: train or load every run, decompose the RMSE variance."""
    from tqdm.auto import tqdm

    from msgl_core.compare import comparisons_root
    from msgl_core.cv.analysis import AnalysisOptions, format_analysis
    from msgl_core.cv.folds import FoldRules
    from msgl_core.cv.outputs import cv_folder_name
    from msgl_core.cv.run import CVPlan, plan_folds, run_cv

    overrides = {k: v for k, v in {
        "basin": basin, "sparsity": sparsity, "epochs": epochs, "device": device, "threads": threads,
        "holdout_segments": _segments(holdout_segments), "reservoir_features": reservoir_features,
    }.items() if v is not None}
    try:
        base = (RunConfig.from_yaml(config) if config else RunConfig()).with_overrides(**overrides)
        plan = CVPlan(base, tuple(_split(variants, str)), tuple(_split(seeds, int)), cv_scheme, folds, repeats,
                      buffer_hops, not fixed_mask, FoldRules(min_fold_reaches, min_fold_obs, fold_balance),
                      AnalysisOptions(design, folds, allow_unbalanced, bootstrap, bootstrap_seed))
        folder = out if out is not None else comparisons_root() / base.basin / cv_folder_name(base.sparsity)
        _folder_option(folder, "--out")
        _folder_option(runs_dir, "--runs-dir")
        data = _load_data(data_dir, cache_dir)
        plan_folds(plan, data)
    except EXPECTED_ERRORS as error:
        _fail(error)
    n_runs = len(plan.variants) * repeats * folds * len(plan.seeds)
    with tqdm(total=n_runs, desc=f"cv {base.basin}", unit="run") as bar:
        def on_result(outcome) -> None:
            bar.update(1)
            bar.set_postfix_str(f"{outcome.variant} seed {outcome.seed}" + (f": {outcome.error[:40]}" if outcome.error else ""))

        try:
            result = run_cv(plan, data, folder, runs_dir, scheduler, workers, on_result)
        except (*EXPECTED_ERRORS, TimeoutError) as error:
            _fail(error)
    failed = result.results[result.results["status"] != "ok"]
    for row in failed.itertuples():
        typer.echo(f"failed: {row.variant} repeat {row.repeat} fold {row.fold} seed {row.seed}: {row.error}", err=True)
    typer.echo("wrote " + ", ".join(str(p) for p in result.paths), err=True)
    if result.analysis is None:
        typer.echo(f"error: {result.analysis_error}", err=True)
        raise typer.Exit(code=1)
    typer.echo(format_analysis(result.analysis))
    if len(failed):
        raise typer.Exit(code=1)


def _split(text: str, kind: type) -> list:
    """``"a,b"`` → ``[kind(a), kind(b)]``. Raises ValueError naming the bad item."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    try:
        return [kind(item) for item in items]
    except ValueError as error:
        raise ValueError(f"cannot read {text!r} as comma-separated {kind.__name__} values") from error


@app.command("serve")
def serve(
    port: Annotated[int, typer.Option(help="Port of the web server (1-65535).", min=1, max=65535)] = 5006,
    address: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this machine only).")] = "127.0.0.1",
    show: Annotated[bool, typer.Option(help="Open the page in a browser.")] = False,
    config: Annotated[Path | None, typer.Option(
        "--config", help="YAML run config the dashboard's settings start from (periods, window, ...).")] = None,
    runs_dir: Annotated[Path | None, typer.Option("--runs-dir", help="Run cache (else $MSGL_RUNS_DIR, runs/).")] = None,
    comparisons_dir: Annotated[Path | None, typer.Option(
        "--comparisons-dir", help="`msgl compare` outputs (else $MSGL_COMPARISONS_DIR, comparisons/).")] = None,
    data_dir: DataDir = None, cache_dir: CacheDir = None,
) -> None:
    """Serve the Panel dashboard (explore the DRB, train or load runs, map predictions and errors)."""
    try:
        from dashboard.app import serve as serve_dashboard
    except ImportError as error:  # the dashboard is installed with the package; this guards a broken environment
        _fail(error)
    try:
        base = RunConfig.from_yaml(config) if config else None
        _folder_option(runs_dir, "--runs-dir")
        _folder_option(cache_dir, "--cache-dir")
        _folder_option(comparisons_dir, "--comparisons-dir")
        typer.echo(f"loading data, then serving on http://{address}:{port}/ (Ctrl-C stops)", err=True)
        serve_dashboard(port=port, address=address, show=show, runs_dir=runs_dir, data_dir=data_dir,
                        cache_dir=cache_dir, base=base, comparisons_dir=comparisons_dir)
    except EXPECTED_ERRORS as error:
        _fail(error)


def _load_data(data_dir: Path | None, cache_dir: Path | None, progress=None):
    """:func:`load_dataset` after checking that the folder options are folders."""
    _folder_option(data_dir, "--data-dir")
    _folder_option(cache_dir, "--cache-dir")
    return load_dataset(data_dir, cache_dir, progress=progress)


def main() -> None:
    """Console-script entry point: messages of msgl_core's loggers (warnings) go to stderr."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s: %(message)s")
    app(sys.argv[1:])
