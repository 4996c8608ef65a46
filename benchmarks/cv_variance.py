"""Wall time of the default ``msgl cv`` grid (issue 14, "Speed").

Runs the grid through the library's own path (:func:`msgl_core.cv.run.run_cv`, hence
:func:`msgl_core.compare.run_grid`: one run per Dask task on a ``LocalCluster`` of ``--workers``
single-threaded processes) in a fresh, temporary runs folder, so every run trains and none is loaded from
a cache. Records the wall time of the whole grid (folds, training, scoring, analysis), each run's own
seconds (``wall_s`` of ``cv_results.parquet``) with their sum and median per variant, and whether the
target is met.

Usage:
    python benchmarks/cv_variance.py [--basin christina] [--variants msgl,rgcn_fine] [--folds 5]
        [--repeats 2] [--seeds 1,2,3] [--epochs 20] [--sparsity 1.0] [--workers 2]
        [--out benchmarks/out/cv_variance.json]
    python benchmarks/cv_variance.py --smoke      # the tiny bundle written in code, in seconds (CI)

The issue asks for a ~100-reach preset, but under the default fold rules (docs/cv.md §1) the smallest
preset that admits K = 5 is Brandywine-Christina (``christina``, 178 reaches), the default here: Rancocas
(93 reaches) has 4 subbasin blocks, and Neversink (126) finds no balanced 5-fold assignment in either
scheme. A smaller basin needs a smaller ``--folds`` (the grid then differs from the target's). The reach
count is recorded in ``reaches``.

Target (issue 14, on 2 CPU cores): the default grid, K = 5, R = 2, S = 3 (30 runs per variant) for
``msgl`` and ``rgcn_fine`` at 20 epochs on a ~100-reach preset, finishes in <= 1 h. ``target.met`` is only
claimed for that grid on 2 workers; otherwise it is null. On a shared machine absolute seconds drift with
the load (recorded in ``load_average``). The msgl_dyn/msgl cost per epoch (target <= 2x) is measured by
``benchmarks/dynamic_graph_speed.py``, not here.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from support.json_report import write_report

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.tiny_bundle for --smoke

TARGET_S = 3600.0
#: The grid the target is stated for.
TARGET_GRID = {"variants": ["msgl", "rgcn_fine"], "folds": 5, "repeats": 2, "seeds": [1, 2, 3], "epochs": 20,
               "workers": 2}


def measure(basin: str, variants: tuple[str, ...], folds: int, repeats: int, seeds: tuple[int, ...], epochs: int,
            sparsity: float, workers: int, smoke_dir: str | None) -> dict:
    """Run the CV grid once in a fresh runs folder and time it."""
    from msgl_core.config import RunConfig
    from msgl_core.cv.analysis import AnalysisOptions
    from msgl_core.cv.folds import FoldRules
    from msgl_core.cv.run import CVPlan, run_cv
    from msgl_core.data import load_dataset
    from msgl_core.data.dataset import prepare

    values: dict[str, Any] = {"basin": basin, "sparsity": sparsity, "epochs": epochs, "device": "cpu", "threads": 1}
    scheme, rules, analysis = "subbasin", FoldRules(), AnalysisOptions()
    if smoke_dir:
        from tests.tiny_bundle import PERIODS

        values.update(basin="drb", window=20, **PERIODS)
        # 5 segments, 2 observed reaches: single-segment blocks and relaxed validity, as in tests/cv.
        scheme, rules, analysis = "segment", FoldRules(1, 1, 1.0), AnalysisOptions(replicates=50)
        data = load_dataset(Path(smoke_dir) / "bundle", Path(smoke_dir) / "cache")
    else:
        data = load_dataset()
    base = RunConfig.from_dict(values)
    plan = CVPlan(base, variants, seeds, scheme, folds, repeats, 0 if smoke_dir else None, rules=rules,
                  analysis=analysis)
    prepared = prepare(data, base)
    with tempfile.TemporaryDirectory(prefix="cv_variance_") as work:
        start = time.perf_counter()
        result = run_cv(plan, data, Path(work) / "cv", Path(work) / "runs", workers=workers)
        total_s = time.perf_counter() - start
    table = result.results
    n_runs = len(table)
    per_variant = {}
    for name, rows in table.groupby("variant", sort=False):
        seconds = [float(s) for s in rows["wall_s"]]
        per_variant[str(name)] = {"runs": len(rows), "run_s_sum": round(sum(seconds), 2),
                                  "run_s_median": round(statistics.median(seconds), 3),
                                  "run_s_max": round(max(seconds), 3),
                                  "rmse_mean": round(float(rows["rmse"].mean()), 4)}
    grid = {"variants": list(variants), "folds": folds, "repeats": repeats, "seeds": list(seeds), "epochs": epochs,
            "workers": workers}
    is_target_grid = not smoke_dir and grid == TARGET_GRID
    return {"basin": values["basin"], "reaches": len(prepared.reach_ids), "segments": len(prepared.segment_ids),
            "sparsity": sparsity, "scheme": scheme, **grid,
            "runs": n_runs, "runs_per_variant": n_runs // max(len(variants), 1),
            "cached": int(table["cached"].sum()), "failed": int((table["status"] != "ok").sum()),
            "total_s": round(total_s, 2), "per_run_s": round(total_s / max(n_runs, 1), 3),
            "run_s": [round(float(s), 3) for s in table["wall_s"]],
            "per_variant": per_variant,
            "analysis_error": result.analysis_error,
            "target": {"total_s_max": TARGET_S, "grid": TARGET_GRID, "applies": is_target_grid,
                       "met": (total_s <= TARGET_S) if is_target_grid else None},
            "msgl_dyn_over_msgl": "see benchmarks/dynamic_graph_speed.py (msgl_dyn_over_msgl_step)",
            "cpu_count": os.cpu_count(), "load_average": [round(x, 2) for x in os.getloadavg()]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--basin", default="christina", help="a preset of ~100 reaches that allows --folds")
    parser.add_argument("--variants", default="msgl,rgcn_fine")
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--sparsity", type=float, default=1.0)
    parser.add_argument("--workers", type=int, default=2, help="LocalCluster processes (0: in this process)")
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "cv_variance.json"))
    parser.add_argument("--smoke", action="store_true",
                        help="tiny bundle written in code: 1 epoch, K = 2, R = 1, seeds 1,2, in process (CI)")
    args = parser.parse_args()
    variants = tuple(v for v in args.variants.split(",") if v)
    seeds = tuple(int(s) for s in args.seeds.split(",") if s)
    with tempfile.TemporaryDirectory() as smoke_dir:
        if args.smoke:
            from tests.tiny_bundle import write_tiny_bundle

            write_tiny_bundle(Path(smoke_dir) / "bundle")
            # CVPlan needs at least 2 seeds (the seed variance), so the smallest grid has two.
            result = measure(args.basin, variants, 2, 1, (1, 2), 1, args.sparsity, 0, smoke_dir)
        else:
            result = measure(args.basin, variants, args.folds, args.repeats, seeds, args.epochs, args.sparsity,
                             args.workers, None)
    result["command"] = sys.argv
    write_report(result, args.out)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
