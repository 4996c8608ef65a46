"""Reading the outputs of ``msgl cv`` (docs/cv.md §3–§5) into the tables a reader of them looks at.

The dashboard's cross-validation tab shows these tables and never recomputes a run or a variance component:

* :func:`variance_table`: per variant, the fold-level σ²_P, σ²_S, σ²_E (°C²), the training share and the
  mean RMSE with its 95 % interval (°C);
* :func:`paired_table`: every pair of variants, d̄ = RMSE_A − RMSE_B with its 95 % interval (°C), the share
  of cells where A is better and σ̂²_P(A)/σ̂²_P(B) with its 90 % interval;
* :func:`reach_skill`: per reach and variant, the out-of-fold test RMSE over that variant's runs (mean and
  the 5–95 % run-to-run interval over seeds and repeats, °C), the pooled RMSE with its water-year block
  bootstrap interval, and the fold of the reach's segment in the first repeat.

Example:
    >>> from msgl_core.cv.outputs import read_cv  # doctest: +SKIP
    >>> outputs = read_cv("comparisons/rancocas/cv")  # doctest: +SKIP
    >>> variance_table(outputs).columns.tolist()[:4]  # doctest: +SKIP
    ['variant', 'mean_rmse', 'mean_low', 'mean_high']
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from msgl_core.cv.analysis import VARIANCE_FILE, VARIANCE_FORMAT
from msgl_core.cv.folds import FOLDS_FILE, Folds, read_folds
from msgl_core.cv.run import (
    REACH_COLUMNS,
    REACH_RESULTS_FILE,
    REACH_YEARS_FILE,
    RESULT_COLUMNS,
    RESULTS_FILE,
    YEAR_COLUMNS,
)
from msgl_core.cv.variance import water_year_interval

#: Columns of :func:`variance_table`.
VARIANCE_COLUMNS = ("variant", "mean_rmse", "mean_low", "mean_high", "partition", "seed", "residual",
                    "training_share", "n_partitions", "n_seeds", "method")
#: Columns of :func:`paired_table`.
PAIRED_COLUMNS = ("a", "b", "difference", "low", "high", "fraction_a_better", "partition_ratio",
                  "ratio_low", "ratio_high")
#: Columns of :func:`reach_skill`.
REACH_SKILL_COLUMNS = ("variant", "reach_id", "seg_id_nat", "fold", "rmse", "rmse_p05", "rmse_p95", "n_runs", "n_obs",
                       "rmse_pooled", "rmse_wy_low", "rmse_wy_high", "n_water_years")
#: Fewest test observations a reach needs (in every one of its runs) for an interval (docs/cv.md §4).
MIN_INTERVAL_OBS = 30
#: Replicates and seed of the water-year block bootstrap.
WATER_YEAR_REPLICATES, WATER_YEAR_SEED = 2000, 0


def cv_folder_name(sparsity: float) -> str:
    """The folder ``msgl cv`` writes under ``<comparisons>/<basin>/`` by default: one per sparsity, so grids at
    ρ = 1 % and 100 % sit side by side (``cv_rho0.01``, ``cv_rho1``, as run names write ρ)."""
    return f"cv_rho{sparsity:g}"


def cv_grids(root: str | Path | None) -> list[str]:
    """The ``msgl cv`` output folders under the comparisons folder ``root``, as ``<basin>/<folder>`` (sorted):
    every ``cv*`` sub-folder of a basin folder that holds ``cv_results.parquet``. Empty for a missing root."""
    root = Path(root) if root is not None else None
    if root is None or not root.is_dir():
        return []
    return sorted(f"{grid.parent.name}/{grid.name}" for grid in root.glob("*/cv*") if (grid / RESULTS_FILE).is_file())


@dataclass(frozen=True)
class CVOutputs:
    """What ``msgl cv`` wrote in ``folder``: the folds of every repeat, the run table, the per-reach table, the
    per-reach water-year error sums and the analysis (the parsed ``variance_components.json``; None when the
    analysis stopped, e.g. on an unbalanced grid without ``--allow-unbalanced``)."""

    folder: Path
    folds: list[Folds]
    results: pd.DataFrame
    reach_results: pd.DataFrame
    reach_years: pd.DataFrame
    analysis: dict | None


def read_cv(folder: str | Path) -> CVOutputs:
    """Read ``folds.json``, ``cv_results.parquet``, ``cv_reach_results.parquet``, ``cv_reach_years.parquet``
    and, if present, ``variance_components.json`` from ``folder``.

    Raises FileNotFoundError naming the first missing file (other than the analysis); ValueError naming the
    file and field when a file is not what ``msgl cv`` writes (other format, missing columns or fields).
    """
    folder = Path(folder)
    for name in (FOLDS_FILE, RESULTS_FILE, REACH_RESULTS_FILE, REACH_YEARS_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder.name}/{name}: missing; run `msgl cv` for this basin")
    folds = read_folds(folder / FOLDS_FILE)
    results = _table(folder / RESULTS_FILE, RESULT_COLUMNS)
    reach_results = _table(folder / REACH_RESULTS_FILE, REACH_COLUMNS)
    reach_years = _table(folder / REACH_YEARS_FILE, YEAR_COLUMNS)
    analysis = _analysis(folder / VARIANCE_FILE) if (folder / VARIANCE_FILE).is_file() else None
    return CVOutputs(folder, folds, results, reach_results, reach_years, analysis)


def _table(path: Path, columns: tuple[str, ...]) -> pd.DataFrame:
    try:
        table = pd.read_parquet(path)
    except (OSError, ValueError) as error:
        raise ValueError(f"{path.parent.name}/{path.name}: not a Parquet table ({error})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise ValueError(f"{path.parent.name}/{path.name}: missing columns {missing}")
    return table


def _analysis(path: Path) -> dict:
    source = f"{path.parent.name}/{path.name}"
    try:
        values = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{source}: not JSON ({error})") from None
    if not isinstance(values, dict) or values.get("format") != VARIANCE_FORMAT:
        raise ValueError(f"{source}: field 'format' must be {VARIANCE_FORMAT}")
    if values.get("units", {}).get("rmse") != "degC":
        raise ValueError(f"{source}: field 'units.rmse' must be 'degC'")
    for field in ("variants", "paired"):
        if field not in values:
            raise ValueError(f"{source}: field '{field}' missing")
    return values


def _number(value: object) -> float:
    return math.nan if value is None else float(value)  # type: ignore[arg-type]


def variance_table(outputs: CVOutputs) -> pd.DataFrame:
    """Per variant, the fold-level decomposition (:data:`VARIANCE_COLUMNS`; components in °C², mean and its
    95 % interval in °C); empty when there is no analysis."""
    rows = []
    for variant, a in ((outputs.analysis or {}).get("variants") or {}).items():
        fold = a["fold"]
        c, interval = fold["components"], fold["mean_interval"]
        rows.append({"variant": variant, "mean_rmse": _number(fold["mean"]), "mean_low": _number(interval["low"]),
                     "mean_high": _number(interval["high"]), "partition": _number(c["partition"]),
                     "seed": _number(c["seed"]), "residual": _number(c["residual"]),
                     "training_share": _number(c["shares"]["training"]), "n_partitions": int(fold["n_partitions"]),
                     "n_seeds": int(fold["n_seeds"]), "method": fold["method"]})
    return pd.DataFrame(rows, columns=list(VARIANCE_COLUMNS))


def paired_table(outputs: CVOutputs) -> pd.DataFrame:
    """Every pair of variants (:data:`PAIRED_COLUMNS`; differences in °C, negative: A better)."""
    rows = []
    for p in (outputs.analysis or {}).get("paired") or []:
        interval, ratio = p["difference"]["mean_interval"], p.get("partition_ratio_interval") or {}
        rows.append({"a": p["a"], "b": p["b"], "difference": _number(p["difference"]["mean"]),
                     "low": _number(interval["low"]), "high": _number(interval["high"]),
                     "fraction_a_better": _number(p["fraction_a_better"]),
                     "partition_ratio": _number(p["partition_ratio"]), "ratio_low": _number(ratio.get("low")),
                     "ratio_high": _number(ratio.get("high"))})
    return pd.DataFrame(rows, columns=list(PAIRED_COLUMNS))


def reach_skill(outputs: CVOutputs, min_obs: int = MIN_INTERVAL_OBS) -> pd.DataFrame:
    """Per variant and reach, the out-of-fold test RMSE over the variant's runs (:data:`REACH_SKILL_COLUMNS`, °C;
    NaN RMSE: fewer than 10 test observations), with the reach's fold in the first repeat (-1: unassigned).

    ``rmse_p05``/``rmse_p95`` are the run-to-run interval: the 5–95 % percentiles (linear interpolation) of the
    reach's RMSE over its R·S out-of-fold runs, which shows how much the partition and the seed move that reach's
    skill; NaN when the reach has fewer than ``min_obs`` (:data:`MIN_INTERVAL_OBS`) test observations or fewer than two
    scored runs. ``n_obs`` is the reach's test observations in a run (the fewest over its runs).

    ``rmse_pooled`` is the RMSE of all the reach's out-of-fold predictions over its runs together, and
    ``rmse_wy_low``/``rmse_wy_high`` its sampling interval: the 95 % block bootstrap over water years
    (:func:`~msgl_core.cv.variance.water_year_interval`, :data:`WATER_YEAR_REPLICATES` replicates, seed
    :data:`WATER_YEAR_SEED`), which shows how much the reach's skill depends on which years were observed; NaN
    below ``min_obs`` test observations or with fewer than two water years (``n_water_years``).
    """
    reaches = outputs.reach_results
    if reaches.empty:
        return pd.DataFrame(columns=list(REACH_SKILL_COLUMNS))
    grouped = reaches.groupby(["variant", "reach_id", "seg_id_nat"], sort=False)
    table = grouped["rmse"].agg(rmse="mean", n_runs="count").reset_index()
    table["rmse_p05"] = grouped["rmse"].quantile(0.05).to_numpy()
    table["rmse_p95"] = grouped["rmse"].quantile(0.95).to_numpy()
    table["n_obs"] = grouped["n_obs"].min().to_numpy()
    no_interval = (table["n_obs"] < min_obs) | (table["n_runs"] < 2)
    table.loc[no_interval, ["rmse_p05", "rmse_p95"]] = np.nan
    table["fold"] = segment_folds(outputs, table["seg_id_nat"].to_numpy())
    table = table.merge(_water_year_skill(outputs.reach_years), on=["variant", "reach_id"], how="left")
    table.loc[table["n_obs"] < min_obs, ["rmse_wy_low", "rmse_wy_high"]] = np.nan
    table["n_water_years"] = table["n_water_years"].fillna(0).astype(int)
    return table[list(REACH_SKILL_COLUMNS)]


def _water_year_skill(reach_years: pd.DataFrame) -> pd.DataFrame:
    """Per variant and reach: the pooled RMSE over its runs and water years, its water-year bootstrap interval
    (°C) and the number of water years with observations."""
    years = reach_years.groupby(["variant", "reach_id", "water_year"], as_index=False)[["n_obs", "sse"]].sum()
    rows = []
    for (variant, reach), group in years.groupby(["variant", "reach_id"], sort=False):
        sse, n_obs = group["sse"].to_numpy(dtype=float), group["n_obs"].to_numpy(dtype=float)
        interval = water_year_interval(sse, n_obs, WATER_YEAR_REPLICATES, WATER_YEAR_SEED)
        rows.append({"variant": variant, "reach_id": reach, "rmse_pooled": float(np.sqrt(sse.sum() / n_obs.sum())),
                     "rmse_wy_low": interval.low, "rmse_wy_high": interval.high, "n_water_years": len(group)})
    return pd.DataFrame(rows, columns=["variant", "reach_id", "rmse_pooled", "rmse_wy_low", "rmse_wy_high",
                                       "n_water_years"])


def segment_folds(outputs: CVOutputs, segments: np.ndarray) -> np.ndarray:
    """The test fold (0…K−1) of each ``seg_id_nat`` of ``segments`` in the first repeat; -1 for a segment in
    no fold (a hold-out, or outside the domain). Shapes: (n,) → (n,) int."""
    fold_of = outputs.folds[0].fold_of() if outputs.folds else {}
    return np.array([fold_of.get(int(s), -1) for s in segments], dtype=int)
