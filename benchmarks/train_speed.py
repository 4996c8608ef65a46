"""Seconds per epoch and peak memory of training, per variant / step, domain and device.

Each case runs in its own subprocess so peak memory (CPU RSS, CUDA max allocated) is its own.
An epoch = one optimiser step per training window + one validation pass. With ``--windows K``,
K training windows are timed (after one warm-up step) and the epoch is extrapolated to all
windows (column ``timed_windows``); by default every window is timed.
Usage:
    python benchmarks/train_speed.py [--basins rancocas,drb] [--devices cpu,cuda] [--windows K]
                                     [--threads 2] [--out benchmarks/out/train_speed.json]
Targets (issue: MSGL): efficient MSGL step >= 3x faster than the faithful one; whole-DRB MSGL
epoch <= 60 s on a 2-core CPU; a <= 100-reach sub-basin trains 40 epochs in <= 60 s on CPU.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

CASES = (("msgl", False), ("msgl", True), ("rgcn_fine", False))


def run_case(variant: str, faithful: bool, basin: str, device: str, windows: int | None, threads: int) -> dict:
    """Time training steps and one validation pass in this process; return timing and memory."""
    import torch

    from msgl_core.config import RunConfig
    from msgl_core.data import load_dataset
    from msgl_core.data.dataset import batch, prepare
    from msgl_core.registry import get_variant
    from msgl_core.train.loop import validation_rmse
    from msgl_core.train.runtime import resolve_device, seed_everything, set_threads

    set_threads(threads)
    cfg = RunConfig(variant=variant, basin=basin, sparsity=0.1, faithful_step=faithful, device=device)
    prepared = prepare(load_dataset(), cfg)
    target = resolve_device(device)
    chosen = get_variant(variant)
    seed_everything(cfg.seed)
    model = chosen.build(prepared, cfg).to(target)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    all_windows = prepared.windows["train"]
    timed = all_windows[: windows or len(all_windows)]
    train = [batch(prepared, w).to(target) for w in timed]
    val = [batch(prepared, w).to(target) for w in prepared.windows["val"]]
    model.train()
    chosen.step(model, train[0], optimizer, cfg)  # warm-up
    _sync(target)
    start = time.perf_counter()
    for b in train:
        model.train()
        chosen.step(model, b, optimizer, cfg)
    _sync(target)
    per_window = (time.perf_counter() - start) / len(train)
    start = time.perf_counter()
    validation_rmse(model, chosen, val)
    _sync(target)
    val_seconds = time.perf_counter() - start
    peak = (torch.cuda.max_memory_allocated() / 2**20 if target.type == "cuda"
            else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
    return {"variant": variant, "step": "faithful" if faithful else "efficient", "basin": basin,
            "device": device, "reaches": len(prepared.reach_ids), "segments": len(prepared.segment_ids),
            "train_windows": len(all_windows), "timed_windows": len(train),
            "seconds_per_epoch": round(per_window * len(all_windows) + val_seconds, 2),
            "peak_memory_mb": round(peak), "memory_kind": "cuda_allocated" if target.type == "cuda" else "cpu_rss",
            "threads": threads}


def _sync(device) -> None:  # noqa: ANN001
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--basins", default="rancocas,drb")
    parser.add_argument("--devices", default=None, help="default: cpu, plus cuda when available")
    parser.add_argument("--variants", default=None, help="e.g. msgl:efficient,rgcn_fine:efficient")
    parser.add_argument("--windows", type=int, default=None, help="time this many training windows")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/train_speed.json"))
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        variant, step, basin, device = args.case.split(":")
        print(json.dumps(run_case(variant, step == "faithful", basin, device, args.windows, args.threads)))
        return
    import torch

    devices = args.devices.split(",") if args.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    cases = ([(v.split(":")[0], v.split(":")[1] == "faithful") for v in args.variants.split(",")]
             if args.variants else CASES)
    rows = []
    for basin in args.basins.split(","):
        for device in devices:
            for variant, faithful in cases:
                case = f"{variant}:{'faithful' if faithful else 'efficient'}:{basin}:{device}"
                extra = ["--windows", str(args.windows)] if args.windows else []
                done = subprocess.run([sys.executable, __file__, "--case", case, "--threads", str(args.threads),
                                       *extra], capture_output=True, text=True)
                if done.returncode:
                    print(f"{case} failed:\n{done.stderr[-2000:]}", file=sys.stderr)
                    continue
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(_format(rows[-1]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(rows, indent=2))


def _format(row: dict) -> str:
    return (f"{row['variant']:<10} {row['step']:<9} {row['basin']:<9} {row['device']:<5} "
            f"{row['reaches']:>5} reaches {row['seconds_per_epoch']:>8.2f} s/epoch "
            f"({row['timed_windows']}/{row['train_windows']} windows timed) "
            f"{row['peak_memory_mb']:>7} MB ({row['memory_kind']})")


if __name__ == "__main__":
    main()
