"""Measure one whole ``ot_diffusion`` run against the targets of issue 13 (docs/probabilistic.md §7).

Usage:
    python benchmarks/ensemble_run.py [--basin rancocas] [--sparsity 0.01] [--seed 1] [--epochs 10]
        [--threads 2] [--runs-dir DIR] [--out benchmarks/out/ensemble_run.json]
    python benchmarks/ensemble_run.py --smoke      # the tiny bundle written in code, in seconds (CI)

It trains (or loads, when ``--runs-dir`` holds them) the base ``msgl`` run and the ensemble, then reports the
stage seconds the run recorded in ``calibration.json`` (Stage 1 OT fit, Stage 2 pretrain + fine-tune, Stage 3
calibration and sampling of the last validation year and the test periods), the base run's training seconds,
the process's peak RSS and the sampling throughput in reach-evaluations per second
(days × members × 2·steps × reaches / sampling seconds; Heun takes 2 network passes a step). Targets, for
2 CPU cores and a sub-basin of ≈ 100 reaches: OT fit ≤ 10 s, prior ≤ 180 s, sampling ≤ 600 s, peak RSS ≤ 4 GB.
Stage times of a loaded run are those of its first training.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import sys
import tempfile
import time
from pathlib import Path

import torch
from support.json_report import write_report

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.tiny_bundle with --smoke

from msgl_core.config import RunConfig  # noqa: E402
from msgl_core.data.build import load_dataset  # noqa: E402
from msgl_core.ensemble_runs import CALIBRATION, base_config  # noqa: E402
from msgl_core.runs import load_run, run_path, train_or_load  # noqa: E402

TARGETS = {"debias_s_max": 10.0, "prior_s_max": 180.0, "sample_s_max": 600.0, "peak_rss_gb_max": 4.0}


def measure(args: argparse.Namespace, smoke_dir: str | None, runs_dir: Path) -> dict:
    values = {"basin": args.basin, "sparsity": args.sparsity, "seed": args.seed, "epochs": args.epochs,
              "variant": "ot_diffusion", "device": args.device, "threads": args.threads}
    if smoke_dir:
        from tests.tiny_bundle import PERIODS

        values.update(basin="drb", sparsity=1.0, window=20, epochs=1, **PERIODS, ot_diffusion={
            "members": 4, "steps": 4, "pretrain_epochs": 1, "finetune_epochs": 1, "batch_days": 8,
            "debias": {"n_support": 50}})
        data = load_dataset(Path(smoke_dir) / "bundle", Path(smoke_dir) / "cache")
    else:
        data = load_dataset()
    cfg = RunConfig.from_dict(values)
    start = time.perf_counter()
    run = train_or_load(cfg, data, runs_dir=runs_dir, progress=False)
    wall = time.perf_counter() - start
    calibration = json.loads((run.path / CALIBRATION).read_text())
    base = load_run(run_path(base_config(cfg), data.path.name, runs_dir))
    options = cfg.ot_diffusion
    n_reaches = int(run.predictions().sizes["reach"])
    seconds = calibration["seconds"]
    evaluations = calibration["sampled_days"] * options.members * 2 * options.steps * n_reaches
    scores = run.metrics.probabilistic.fine.overall if run.metrics.probabilistic else None
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    measured = {"debias_s": seconds.get("debias"), "prior_s": seconds.get("prior"), "sample_s": seconds.get("sample"),
                "peak_rss_gb": round(peak_gb, 2)}
    met = None if smoke_dir else {name: measured[name[:-4]] is not None and measured[name[:-4]] <= limit
                                  for name, limit in TARGETS.items()}
    return {"run": run.path.name, "base_run": base.path.name, "reaches": n_reaches, "members": options.members,
            "steps": options.steps, "sampled_days": calibration["sampled_days"], **measured,
            "base_train_s": base.metrics.training.seconds if base.metrics.training else None,
            "ensemble_train_s": run.metrics.training.seconds if run.metrics.training else None,
            "wall_s_this_call": round(wall, 1),
            "reach_evaluations_per_s": round(evaluations / seconds["sample"]) if seconds.get("sample") else None,
            "test_rmse_of_mean": run.test_rmse, "crps": None if scores is None else scores.crps,
            "targets": TARGETS, "met": met, "applies": smoke_dir is None,
            "machine": {"python": platform.python_version(), "torch": torch.__version__,
                        "threads": torch.get_num_threads()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--basin", default="rancocas")
    parser.add_argument("--sparsity", type=float, default=0.01)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=10, help="epochs of the base msgl run")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--runs-dir", type=Path, help="run cache (default: a fresh temporary folder)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "ensemble_run.json")
    parser.add_argument("--smoke", action="store_true", help="tiny bundle written in code, in seconds (CI)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        smoke_dir = None
        if args.smoke:
            from tests.tiny_bundle import write_tiny_bundle

            write_tiny_bundle(Path(scratch) / "bundle")
            smoke_dir = scratch
        report = measure(args, smoke_dir, args.runs_dir or Path(scratch) / "runs")
    write_report(report, args.out)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
