"""Training-step speed of the dynamic-graph variants against their static counterparts (issue 14).

One process, one training window (the first with coarse and fine targets): a full training step
(forward, backward, optimiser update) of ``msgl`` and ``msgl_dyn``, and of ``stgcn`` and ``dyn_stgcn``,
each on its own seeded model, interleaved round by round in rotating order so that machine load hits
all alike. Reports median seconds per step and the medians of the per-round ratios msgl_dyn/msgl and
dyn_stgcn/stgcn, and the median time of one neighbour search (:func:`knn_edges` on the basin's reaches
with H + 2 selection features) with its share of the msgl_dyn step (one search per block).

Usage:
    python benchmarks/dynamic_graph_speed.py [--basin rancocas] [--rounds 5] [--threads 1] [--device cpu]
        [--blocks 3] [--k 8] [--out benchmarks/out/dynamic_graph_speed.json]
    python benchmarks/dynamic_graph_speed.py --smoke      # the tiny bundle written in code, in seconds (CI)

Target (issue 14): an msgl_dyn epoch costs at most twice an msgl epoch; the step ratio is that ratio up to
the validation pass (one forward per window for both).
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

PAIRS = (("msgl", "msgl_dyn"), ("stgcn", "dyn_stgcn"))


def measure(basin: str, rounds: int, threads: int, device: str, graph: dict[str, int], smoke_dir: str | None) -> dict:
    """Interleaved step timings of every variant of :data:`PAIRS` on one window of ``basin``."""
    import torch

    from msgl_core.config import RunConfig
    from msgl_core.data import load_dataset
    from msgl_core.data.dataset import batch, prepare
    from msgl_core.models.layers_dynamic import knn_edges
    from msgl_core.registry import get_variant
    from msgl_core.train.losses import has_observations
    from msgl_core.train.runtime import resolve_device, seed_everything, set_threads

    set_threads(threads)
    values: dict[str, Any] = {"basin": basin, "device": device, "dynamic_graph": graph}
    if smoke_dir:
        from tests.tiny_bundle import PERIODS

        values.update(basin="drb", window=20, **PERIODS)
        data = load_dataset(Path(smoke_dir) / "bundle", Path(smoke_dir) / "cache")
    else:
        data = load_dataset()
    target = resolve_device(device)
    names = [name for pair in PAIRS for name in pair]
    cfg = {name: RunConfig.from_dict({**values, "variant": name}) for name in names}
    prepared = prepare(data, cfg["msgl"])
    candidates = (batch(prepared, w) for w in prepared.windows["train"])
    window = next(b for b in candidates if has_observations(b.y_coarse) and has_observations(b.y_fine)).to(target)
    state = {}
    for name in names:
        variant = get_variant(name)
        seed_everything(cfg[name].seed)
        model = variant.build(prepared, cfg[name]).to(target).train()
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg[name].learning_rate)
        state[name] = (variant.stages[-1].step, model, optimizer)
        _timed(lambda name=name: _step(state[name], window, cfg[name]), target)  # warm-up
    step_s: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            step_s[name].append(_timed(lambda name=name: _step(state[name], window, cfg[name]), target))
    selection = torch.randn(len(prepared.reach_ids), cfg["msgl"].hidden + 2, device=target)
    knn_s = [_timed(lambda: knn_edges(selection, graph["k"], prepared.river_fine.edge_index.to(target)), target)
             for _ in range(max(rounds, 3))]
    dyn_step = statistics.median(step_s["msgl_dyn"])
    return {"basin": values["basin"], "device": device, "threads": threads, "rounds": rounds,
            "reaches": len(prepared.reach_ids), "segments": len(prepared.segment_ids),
            "days": window.x_fine.shape[1], "dynamic_graph": graph,
            "step_s": {name: round(statistics.median(v), 4) for name, v in step_s.items()},
            **{f"{dyn}_over_{static}_step": _ratio(step_s[dyn], step_s[static]) for static, dyn in PAIRS},
            "knn_s": round(statistics.median(knn_s), 5),
            "knn_share_of_msgl_dyn_step": round(graph["blocks"] * statistics.median(knn_s) / dyn_step, 3),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def _step(state: tuple, window: Any, cfg: Any) -> None:  # noqa: ANN401
    step, model, optimizer = state
    step(model, window, optimizer, cfg)


def _timed(call: Any, device: Any) -> float:  # noqa: ANN401
    import torch

    start = time.perf_counter()
    call()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start


def _ratio(slow: list[float], fast: list[float]) -> float:
    return round(statistics.median(s / f for s, f in zip(slow, fast, strict=True)), 2)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--basin", default="rancocas")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--blocks", type=int, default=3)
    parser.add_argument("--k", type=int, default=8)
    parser.add_argument("--out", default=str(ROOT / "benchmarks" / "out" / "dynamic_graph_speed.json"))
    parser.add_argument("--smoke", action="store_true", help="tiny bundle written in code, 2 rounds (CI)")
    args = parser.parse_args()
    graph = {"blocks": args.blocks, "k": args.k}
    with tempfile.TemporaryDirectory() as smoke_dir:
        if args.smoke:
            from tests.tiny_bundle import write_tiny_bundle

            write_tiny_bundle(Path(smoke_dir) / "bundle")
        result = measure(args.basin, 2 if args.smoke else args.rounds, args.threads, args.device, graph,
                         smoke_dir if args.smoke else None)
    result["command"] = sys.argv
    write_report(result, args.out)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
