"""Test RMSE (°C) of variants across sparsity levels, basins and seeds (train or load each run).

Usage:
    python benchmarks/skill.py [--basins rancocas,christina] [--variants msgl,rgcn_fine]
        [--sparsity 0.01,0.1,1] [--seeds 1,2,3] [--epochs 40] [--threads 2]
        [--out benchmarks/out/skill.json]
Runs are cached in the run cache (``$MSGL_RUNS_DIR`` or ``runs/``), so re-running is cheap. Prints
mean ± std over seeds per basin, variant and sparsity, and MSGL's RMSE change vs ``rgcn_fine``.
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from msgl_core.config import RunConfig
from msgl_core.data import load_dataset
from msgl_core.runs import train_or_load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--basins", default="rancocas,christina")
    parser.add_argument("--variants", default="msgl,rgcn_fine")
    parser.add_argument("--sparsity", default="0.01,0.1,1")
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--epochs", type=int, default=40)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/skill.json"))
    args = parser.parse_args()
    data = load_dataset()
    rows = []
    for basin in args.basins.split(","):
        for rho in map(float, args.sparsity.split(",")):
            for variant in args.variants.split(","):
                for seed in map(int, args.seeds.split(",")):
                    cfg = RunConfig(variant=variant, basin=basin, sparsity=rho, seed=seed, epochs=args.epochs,
                                    threads=args.threads, device=args.device)
                    run = train_or_load(cfg, data, progress=False)
                    rows.append({"basin": basin, "sparsity": rho, "variant": variant, "seed": seed,
                                 "test_rmse": run.test_rmse, "n_test_obs": run.metrics["fine"]["overall"]["n_obs"],
                                 "seconds": run.metrics["training"]["seconds"], "run": run.path.name})
                    print(f"{basin:<10} rho={rho:<5g} {variant:<10} seed={seed} RMSE {run.test_rmse:.3f} °C "
                          f"({rows[-1]['seconds']} s)", flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))
    print("\n| basin | sparsity | " + " | ".join(args.variants.split(",")) + " | MSGL vs rgcn_fine |")
    print("|---|---|" + "---|" * (len(args.variants.split(",")) + 1))
    for basin in args.basins.split(","):
        for rho in map(float, args.sparsity.split(",")):
            cells, means = [], {}
            for variant in args.variants.split(","):
                values = [r["test_rmse"] for r in rows if (r["basin"], r["sparsity"], r["variant"]) == (basin, rho, variant)]
                means[variant] = statistics.mean(values)
                spread = statistics.stdev(values) if len(values) > 1 else 0.0
                cells.append(f"{means[variant]:.2f} ± {spread:.2f}")
            change = (f"{100 * (means['msgl'] / means['rgcn_fine'] - 1):+.0f} %"
                      if {"msgl", "rgcn_fine"} <= set(means) else "")
            print(f"| {basin} | {rho:g} | " + " | ".join(cells) + f" | {change} |")


if __name__ == "__main__":
    main()
