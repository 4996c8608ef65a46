"""Training speed and memory of MSGL, as ratios against pinned references measured in the same run.

Parts (``--parts``, default all three):

ratios  One process, one training window (the first with coarse and fine targets): the library's
        efficient MSGL step ("new"), the pinned step of commit 2c3b086 ("old",
        benchmarks/reference/msgl_2c3b086.py) and the library's faithful 6-pass step, each on its own
        identically initialised model, interleaved round by round (in rotating order) so that machine
        load hits all three alike; likewise the fine prediction of one validation window, new vs old.
        Reports median seconds and the medians of the per-round ratios old/new and faithful/new.
epochs  One subprocess per case, so that its peak memory is its own: seconds per epoch (one step per
        training window plus one validation pass) and peak RSS (CPU) or peak allocated CUDA memory.
        Cases (``--cases``): msgl:new, msgl:old, msgl:faithful, rgcn_fine:new. With ``--windows K``
        only K training windows are timed (after one warm-up step) and the epoch is extrapolated
        (column ``timed_windows``); by default every window is timed.
flops   FLOPs of one new and one old step, counted by ``torch.utils.flop_counter.FlopCounterMode``
        (dense matmuls and attention; sparse graph products and element-wise work are not counted),
        and the arithmetic floor of a step: the old step's FLOPs at this machine's measured dense
        matmul rate, against the measured new step.

Usage:
    python benchmarks/train_speed.py [--basins rancocas,drb] [--parts ratios,epochs,flops] [--windows K]
        [--rounds 3] [--threads 2] [--devices cpu,cuda] [--cases msgl:new,msgl:old] [--sparsity 1.0]
        [--out benchmarks/out/train_speed.json]
    python benchmarks/train_speed.py --smoke      # the tiny bundle written in code, in seconds (CI)

Targets (issue 11, on 2 idle CPU cores): Rancocas (93 reaches) trains 10 MSGL epochs in <= 60 s; the
efficient step is >= 2.5x faster than the faithful one; a whole-DRB epoch takes <= 250 s with peak RSS
<= 4 GB, validation included. On a shared machine absolute seconds drift with the load (recorded in
``meta.load_average``); the ratios, measured side by side, are the comparable numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

from support.json_report import write_report

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # benchmarks.reference and, with --smoke, tests.tiny_bundle

PARTS = ("ratios", "epochs", "flops")
EPOCH_CASES = ("msgl:new", "msgl:old", "msgl:faithful", "rgcn_fine:new")


def load(basin: str, smoke_dir: str | None, sparsity: float, **overrides: Any):  # noqa: ANN201
    """(cfg, prepared) for ``basin``; with ``smoke_dir``, the tiny bundle written there (20-day windows)."""
    from msgl_core.config import RunConfig
    from msgl_core.data import load_dataset
    from msgl_core.data.dataset import prepare

    values: dict[str, Any] = {"basin": basin, "sparsity": sparsity, **overrides}
    if smoke_dir:
        from tests.tiny_bundle import PERIODS

        values.update(window=20, **PERIODS)
        data = load_dataset(Path(smoke_dir) / "bundle", Path(smoke_dir) / "cache")
    else:
        data = load_dataset()
    cfg = RunConfig.from_dict(values)
    return cfg, prepare(data, cfg)


def case_variant(case: str):  # noqa: ANN201
    """The registry variant of ``name:path``; path ``old`` swaps in the pinned 2c3b086 step and prediction."""
    from benchmarks.reference import msgl_2c3b086 as reference
    from msgl_core.registry import Stage, get_variant

    name, path = case.split(":")
    variant = get_variant(name)
    if path == "old":
        if name != "msgl":
            raise ValueError(f"only msgl has a pinned reference, not {name!r}")

        def step(model, b, optimizer, cfg):  # noqa: ANN001, ANN202
            return reference.step(model, b, optimizer)

        variant = replace(variant, stages=(Stage("train", step),),
                          predict_fine=reference.predict_fine)
    return variant


def run_epoch(case: str, basin: str, device: str, windows: int | None, threads: int, sparsity: float,
              smoke_dir: str | None) -> dict:
    """Seconds per epoch and peak memory of one case, in this process."""
    import torch

    from msgl_core.data.dataset import batch
    from msgl_core.train.loop import validation_rmse
    from msgl_core.train.runtime import resolve_device, seed_everything, set_threads

    set_threads(threads)
    variant = case_variant(case)
    cfg, prepared = load(basin, smoke_dir, sparsity, variant=variant.name, device=device,
                         faithful_step=case.endswith(":faithful"))
    rss_data, peak_data = _rss_now_mb(), _rss_mb()
    target = resolve_device(device)
    seed_everything(cfg.seed)
    model = variant.build(prepared, cfg).to(target)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    step = variant.stages[-1].step
    all_windows = prepared.windows["train"]
    train = [batch(prepared, w).to(target) for w in all_windows[: windows or len(all_windows)]]
    val = [batch(prepared, w).to(target) for w in prepared.windows["val"]]
    model.train()
    step(model, train[0], optimizer, cfg)  # warm-up
    _sync(target)
    start = time.perf_counter()
    for b in train:
        model.train()
        step(model, b, optimizer, cfg)
    _sync(target)
    per_window = (time.perf_counter() - start) / len(train)
    start = time.perf_counter()
    validation_rmse(model, variant, val)
    _sync(target)
    val_seconds = time.perf_counter() - start
    cuda = target.type == "cuda"
    return {"case": case, "basin": basin, "device": device, "threads": threads,
            "reaches": len(prepared.reach_ids), "segments": len(prepared.segment_ids),
            "train_windows": len(all_windows), "timed_windows": len(train), "val_windows": len(val),
            "step_s": round(per_window, 4), "validation_s": round(val_seconds, 3),
            "epoch_s": round(per_window * len(all_windows) + val_seconds, 2),
            "peak_memory_mb": round(torch.cuda.max_memory_allocated() / 2**20 if cuda else _rss_mb()),
            "memory_kind": "cuda_allocated" if cuda else "cpu_rss", "rss_after_data_mb": round(rss_data),
            "peak_rss_after_data_mb": round(peak_data),
            "load_average": _load()}


def run_ratios(basin: str, device: str, threads: int, rounds: int, sparsity: float, smoke_dir: str | None,
               flops: bool, paths: tuple[str, ...] = ("new", "old", "faithful")) -> dict:
    """Interleaved timings of the new, old and faithful steps (those in ``paths``; new always) and of the
    new vs old prediction, in this process."""
    import torch

    from benchmarks.reference import msgl_2c3b086 as reference
    from msgl_core.data.dataset import batch
    from msgl_core.registry import get_variant
    from msgl_core.train.losses import has_observations
    from msgl_core.train.runtime import resolve_device, seed_everything, set_threads

    set_threads(threads)
    cfg, prepared = load(basin, smoke_dir, sparsity, variant="msgl", device=device)
    faithful_cfg = replace(cfg, faithful_step=True)
    target = resolve_device(device)
    variant = get_variant("msgl")
    step = variant.stages[-1].step
    candidates = (batch(prepared, w) for w in prepared.windows["train"])
    window = next(b for b in candidates if has_observations(b.y_coarse) and has_observations(b.y_fine)).to(target)
    val_window = batch(prepared, prepared.windows["val"][0]).to(target)

    def fresh() -> tuple[torch.nn.Module, torch.optim.Optimizer]:
        seed_everything(cfg.seed)
        model = variant.build(prepared, cfg).to(target).train()
        return model, torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)

    steps = {"new": lambda m, o: step(m, window, o, cfg), "old": lambda m, o: reference.step(m, window, o),
             "faithful": lambda m, o: step(m, window, o, faithful_cfg)}
    steps = {name: fn for name, fn in steps.items() if name == "new" or name in paths}
    state = {name: fresh() for name in steps}
    first = {}
    for name, fn in steps.items():  # warm-up, and a like-for-like check: the same dropout masks
        torch.manual_seed(cfg.seed)
        first[name] = fn(*state[name])
    first_loss = {"new": first["new"].loss, **({"old": first["old"][0]} if "old" in first else {})}
    if "old" in first_loss and abs(first_loss["new"] - first_loss["old"]) > 1e-4 * max(1.0, abs(first_loss["old"])):
        raise AssertionError(f"new and old steps disagree on the same window: {first_loss}")
    step_s: dict[str, list[float]] = {name: [] for name in steps}
    for r in range(rounds):
        names = list(steps)[r % len(steps):] + list(steps)[: r % len(steps)]
        for name in names:
            step_s[name].append(_timed(partial(steps[name], *state[name]), target))
    predicts = {"new": lambda m: variant.predict_fine(m, val_window),
                "old": lambda m: reference.predict_fine(m, val_window)}
    predicts = {name: fn for name, fn in predicts.items() if name in steps}
    predict_s: dict[str, list[float]] = {name: [] for name in predicts}
    with torch.no_grad():
        for name in predicts:
            state[name][0].eval()
            predicts[name](state[name][0])  # warm-up
        for r in range(rounds):
            for name in list(predicts)[r % len(predicts):] + list(predicts)[: r % len(predicts)]:
                predict_s[name].append(_timed(partial(predicts[name], state[name][0]), target))
    result = {"basin": basin, "device": device, "threads": threads, "rounds": rounds,
              "reaches": len(prepared.reach_ids), "segments": len(prepared.segment_ids), "days": window.x_fine.shape[1],
              "first_step_loss": first_loss,
              "step_s": {k: round(statistics.median(v), 4) for k, v in step_s.items()},
              "predict_s": {k: round(statistics.median(v), 4) for k, v in predict_s.items()},
              "load_average": _load()}
    for name in ("old", "faithful"):
        if name in steps:
            result[f"{name}_over_new_step"] = _ratio(step_s[name], step_s["new"])
    if "old" in predicts:
        result["old_over_new_predict"] = _ratio(predict_s["old"], predict_s["new"])
    if flops and "old" in steps:
        for name in ("new", "old"):
            state[name][0].train()
        result["flops"] = count_flops({"new": lambda: steps["new"](*state["new"]),
                                       "old": lambda: steps["old"](*state["old"])}, target)
        rate = result["flops"]["matmul_gflop_per_s"] * 1e9
        floor = result["flops"]["old_step_gflop"] * 1e9 / rate
        result["flops"]["floor_step_s"] = round(floor, 4)
        result["flops"]["new_step_over_floor"] = round(result["step_s"]["new"] / floor, 2)
    return result


def count_flops(calls: dict, device: Any) -> dict:  # noqa: ANN001
    """GFLOP of each call (FlopCounterMode, with CPU flash attention counted) and the matmul rate."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode, sdpa_backward_flop_count, sdpa_flop_count

    def forward(query, key, value, *args, out_shape=None, **kwargs) -> int:  # noqa: ANN001, ANN002, ANN003
        return sdpa_flop_count(query, key, value)

    def backward(grad, query, key, value, *args, out_shape=None, **kwargs) -> int:  # noqa: ANN001, ANN002, ANN003
        return sdpa_backward_flop_count(grad, query, key, value)

    aten = torch.ops.aten
    attention = {aten._scaled_dot_product_flash_attention_for_cpu: forward,
                 aten._scaled_dot_product_flash_attention_for_cpu_backward: backward}
    result = {}
    for name, call in calls.items():
        counter = FlopCounterMode(display=False, custom_mapping=attention)
        with counter:
            call()
        result[f"{name}_step_gflop"] = round(counter.get_total_flops() / 1e9, 3)
    size = 1024
    a, b = torch.randn(size, size, device=device), torch.randn(size, size, device=device)
    seconds = min(_timed(lambda: a @ b, device) for _ in range(5))
    result["matmul_gflop_per_s"] = round(2 * size**3 / seconds / 1e9, 1)
    return result


def _timed(call, device) -> float:  # noqa: ANN001
    start = time.perf_counter()
    call()
    _sync(device)
    return time.perf_counter() - start


def _ratio(slow: list[float], fast: list[float]) -> float:
    return round(statistics.median(s / f for s, f in zip(slow, fast)), 2)


def _sync(device) -> None:  # noqa: ANN001
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize()


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _rss_now_mb() -> float:
    """Resident memory now (Linux /proc; the peak where unavailable)."""
    try:
        with open("/proc/self/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024
    except (OSError, StopIteration):
        return _rss_mb()


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--basins", default="rancocas")
    parser.add_argument("--parts", default=",".join(PARTS))
    parser.add_argument("--devices", default=None, help="default: cpu, plus cuda when available")
    parser.add_argument("--cases", default=",".join(EPOCH_CASES), help="epoch cases, variant:new|old|faithful")
    parser.add_argument("--windows", type=int, default=None, help="epochs: time this many training windows")
    parser.add_argument("--rounds", type=int, default=3, help="ratios: interleaved rounds")
    parser.add_argument("--ratio-steps", default="new,old,faithful", help="ratios: the steps to interleave")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sparsity", type=float, default=1.0)
    parser.add_argument("--smoke", action="store_true", help="tiny bundle written in code, 2 rounds, 1 thread (CI)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/train_speed.json"))
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--smoke-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        job = json.loads(args.worker)
        if job["part"] == "epochs":
            row = run_epoch(job["case"], job["basin"], job["device"], args.windows, args.threads, args.sparsity,
                            args.smoke_dir)
        else:
            row = run_ratios(job["basin"], job["device"], args.threads, args.rounds, args.sparsity, args.smoke_dir,
                             flops=job["flops"], paths=tuple(args.ratio_steps.split(",")))
        print(json.dumps(row))
        return
    with tempfile.TemporaryDirectory() as smoke_dir:
        if args.smoke:
            from tests.tiny_bundle import write_tiny_bundle

            write_tiny_bundle(Path(smoke_dir) / "bundle")
            args.basins, args.rounds, args.threads = "drb", 2, 1
        report = measure(args, smoke_dir if args.smoke else None)
    write_report(report, args.out)
    print(f"wrote {args.out}")


def measure(args: argparse.Namespace, smoke_dir: str | None) -> dict:
    """Run the asked-for parts, each in a subprocess, and collect their rows."""
    import torch

    devices = args.devices.split(",") if args.devices else ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    parts = args.parts.split(",")
    report: dict[str, Any] = {
        "meta": {"torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
                 "cores": os.cpu_count(), "threads": args.threads, "sparsity": args.sparsity,
                 "smoke": smoke_dir is not None, "load_average_at_start": _load(), "command": sys.argv},
        "ratios": [], "epochs": []}
    common = ["--threads", str(args.threads), "--rounds", str(args.rounds), "--sparsity", str(args.sparsity),
              "--ratio-steps", args.ratio_steps]
    common += ["--windows", str(args.windows)] if args.windows else []
    common += ["--smoke-dir", smoke_dir] if smoke_dir else []
    for basin in args.basins.split(","):
        for device in devices:
            jobs = []
            if "ratios" in parts or "flops" in parts:
                jobs.append({"part": "ratios", "basin": basin, "device": device, "flops": "flops" in parts})
            if "epochs" in parts:
                jobs += [{"part": "epochs", "case": case, "basin": basin, "device": device}
                         for case in args.cases.split(",")]
            for job in jobs:
                done = subprocess.run([sys.executable, __file__, "--worker", json.dumps(job), *common],
                                      capture_output=True, text=True)
                if done.returncode:
                    print(f"{job} failed:\n{done.stderr[-3000:]}", file=sys.stderr)
                    raise SystemExit(1)
                row = json.loads(done.stdout.strip().splitlines()[-1])
                report[job["part"]].append(row)
                print(_format(job["part"], row), flush=True)
    return report


def _format(part: str, row: dict) -> str:
    where = f"{row['basin']:<9} {row['device']:<4} {row['reaches']:>5} reaches"
    if part == "epochs":
        return (f"epoch  {row['case']:<14} {where} {row['epoch_s']:>8.2f} s/epoch (step {row['step_s']:.3f} s, "
                f"{row['timed_windows']}/{row['train_windows']} windows timed; validation {row['validation_s']:.2f} s) "
                f"peak {row['peak_memory_mb']} MB ({row['memory_kind']}), load {row['load_average'][0]}")
    steps = ", ".join(f"{name} {seconds:.3f} s" for name, seconds in row["step_s"].items())
    labels = {"old_over_new_step": "old/new", "faithful_over_new_step": "faithful/new",
              "old_over_new_predict": "predict old/new"}
    ratios = ", ".join(f"{label} {row[key]}x" for key, label in labels.items() if key in row)
    text = f"ratios {where} step {steps}: {ratios}, load {row['load_average'][0]}"
    if "flops" in row:
        f = row["flops"]
        text += (f"\nflops  {where} step new {f['new_step_gflop']} GFLOP, old {f['old_step_gflop']} GFLOP; matmul "
                 f"{f['matmul_gflop_per_s']} GFLOP/s: floor {f['floor_step_s']} s, "
                 f"new step = {f['new_step_over_floor']}x floor")
    return text


if __name__ == "__main__":
    main()
