"""Measure the probabilistic downscaling pieces: OT debiasing fit time, graph-denoiser cost per reach-evaluation
(c_eval), training-step time and guided Heun sampling throughput.

Usage: python benchmarks/prob_speed.py [--out benchmarks/out/prob_speed.json] [--reaches 100] [--device auto]
[--smoke]. The river is synthetic, built in code (segments of 1–8 reaches in a chain), so no data bundle is
needed. ``--smoke`` uses tiny sizes, in seconds, so CI keeps the script working. Cost model (results in
docs/probabilistic.md §7): reach-evaluations = days × members × 2·steps × reaches; wall ≈ that × c_eval.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr
from support.json_report import write_report

from msgl_core.debias import DebiasOptions, FitScope, fit_debiaser
from msgl_core.diffusion.conditional import sample_residuals
from msgl_core.diffusion.schedule import VPSchedule
from msgl_core.diffusion.training import DenoiserBatch, denoiser_step
from msgl_core.graph.coarsening import CoarseningOperator
from msgl_core.models.graph_denoiser import GraphDenoiser
from msgl_core.train.runtime import resolve_device


def river(reaches: int, rng: np.random.Generator) -> tuple[CoarseningOperator, torch.Tensor]:
    """Segments of 1–8 reaches in a chain (each reach flows to the next): C' and the downstream edges."""
    sizes: list[int] = []
    while sum(sizes) < reaches:
        sizes.append(int(rng.integers(1, 9)))
    sizes[-1] -= sum(sizes) - reaches
    sizes = [s for s in sizes if s > 0]
    parent = np.repeat(np.arange(len(sizes)), sizes)
    op = CoarseningOperator.from_crosswalk(parent, rng.uniform(300, 3000, reaches), len(sizes))
    edges = torch.stack([torch.arange(reaches - 1), torch.arange(1, reaches)])
    return op, edges


def ot_fit_seconds(n: int, rng: np.random.Generator) -> float:
    """Wall seconds of one doy-feature OT fit of n source against n target segment-days."""
    time_index = pd.date_range("2000-01-01", periods=n)
    angle = 2 * np.pi * time_index.day_of_year.to_numpy() / 365.25

    def field(values: np.ndarray) -> xr.DataArray:
        return xr.DataArray(values[:, None], coords={"time": time_index, "segment": [1]}, dims=("time", "segment"))

    source = field(10 - 8 * np.cos(angle) + rng.normal(0, 1, n))
    target = field(11 - 9 * np.cos(angle) + rng.normal(0, 1, n))
    scope = FitScope(((str(time_index[0].date()), str(time_index[-1].date())),), (("1900-01-01", "1900-01-02"),))
    start = time.perf_counter()
    fit_debiaser(DebiasOptions(n_support=n), source, target, scope)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/prob_speed.json"))
    parser.add_argument("--reaches", type=int, default=100, help="reaches of the synthetic river")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda")
    parser.add_argument("--smoke", action="store_true", help="tiny sizes (CI)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    reaches = 20 if args.smoke else args.reaches
    ot_sizes = (100,) if args.smoke else (500, 1000, 2000)
    days, members, steps, repeats = (4, 2, 2, 1) if args.smoke else (16, 16, 24, 5)

    result: dict[str, object] = {"device": str(device), "torch": torch.__version__, "machine": platform.machine(),
                                 "threads": torch.get_num_threads(), "reaches": reaches}
    result["ot_fit_seconds"] = {str(n): round(ot_fit_seconds(n, rng), 2) for n in ot_sizes}

    op, edges = river(reaches, rng)
    network = GraphDenoiser(5, edges, op.parent, op.weights, op.n_segments, hidden=32, blocks=3).to(device)
    schedule = VPSchedule()
    batch = days * members
    x, c_noise = torch.randn(batch, reaches, device=device), torch.randn(batch, device=device)
    cond = torch.randn(batch, reaches, 5, device=device)
    network.eval()
    with torch.no_grad():
        network(x, c_noise, cond)  # warm-up
        start = time.perf_counter()
        for _ in range(repeats):
            network(x, c_noise, cond)
        if device.type == "cuda":
            torch.cuda.synchronize()
        forward = (time.perf_counter() - start) / repeats
    result["c_eval_us"] = round(forward / (batch * reaches) * 1e6, 2)

    optimizer = torch.optim.Adam(network.parameters(), lr=1e-3)
    train = DenoiserBatch(torch.randn(days, reaches, device=device), torch.ones(days, reaches, device=device),
                          torch.randn(days, reaches, 5, device=device))
    generator = torch.Generator().manual_seed(0)
    denoiser_step(network, schedule, train, optimizer, generator)  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        denoiser_step(network, schedule, train, optimizer, generator)
    result["train_step_ms"] = round((time.perf_counter() - start) / repeats * 1e3, 2)

    network.eval()
    start = time.perf_counter()
    sample_residuals(network, schedule, op, cond[:days], members, steps, generator)
    seconds = time.perf_counter() - start
    evaluations = days * members * 2 * steps * reaches
    result["sampling"] = {"days": days, "members": members, "steps": steps, "seconds": round(seconds, 2),
                          "reach_evaluations_per_s": round(evaluations / seconds)}
    print(json.dumps(result, indent=2))
    write_report(result, args.out)


if __name__ == "__main__":
    main()
