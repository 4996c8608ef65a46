"""Several seeds of one architecture in one process: S sequential training steps against one stacked step (vmapped).

The question (two issues): where one process trains several seeds of the same architecture, does stacking them
(``torch.func.stack_module_state`` + ``torch.func.vmap`` over ``torch.func.functional_call``) beat one run per
task, i.e. S separate trainings? Measured on the fine-only baseline ``rgcn_fine``, one training window (the
first with fine targets; 365 days on real data), S seeds (``cfg.seed + s``), one process, 1 torch thread:

sequential (A)  S independent models, each with its own Adam, one library training step each, one after the
                other (``variant.stages[-1].step``: forward, masked RMSE on the observed fine targets,
                backward, gradient norm clipped to ``cfg.grad_clip``, Adam step).
stacked (B)     the same S models' parameters stacked along a leading seed dimension, the model's forward run
                through ``functional_call`` under ``vmap`` over that dimension (inputs and adjacency shared,
                not batched), each seed's masked RMSE on the same targets, their sum backpropagated once, each
                seed's gradient clipped by its own norm, and one Adam step on the stacked parameters (Adam is
                element-wise, so this is S independent Adams).
manual (C)      as B, but without vmap: RGCN's forward written out in this file on the stacked parameters
                (batched matrix products; one graph product per day for all seeds, their messages side by
                side), the batched alternative that also runs where vmap cannot (see the probes below).

First, from identical initial weights, one step of each: the max abs difference of the per-seed losses, of the
(clipped) gradients and of the weights after the Adam step, B and C against A (``equality``,
``equality_manual``). Then ``--rounds`` rounds, A, B and C interleaved in rotating order so that machine load hits
all alike; reported are median seconds per step (all S seeds) and the medians of the per-round ratios A/B and A/C
(> 1: the batched step is faster).

Probes of what vmap cannot do here, recorded with the failing call and its error (``unsupported``):
``stack_module_state`` on the models themselves (their adjacency buffer is a sparse CSR tensor: the benchmark
then stacks the parameters alone and passes the shared buffer unbatched), and the RGCN layer's sparse graph
product, used on graphs of more than ``DENSE_GRAPH_NODES`` nodes (forced here on the same window by setting that
threshold to 0 for one forward and backward; C's losses and gradients on that path are checked too,
``sparse_path``).

Optionally (``msgl_forward_backward``), MSGL's model with dropout 0: forward and backward of the sum of its three
task losses (no MGDA, no optimiser step), S models one after the other against one vmapped pass (cross-scale
matrix made dense, BatchNorm running statistics stacked per seed; the probes record why), with the same
equality check (losses, gradients, BatchNorm statistics) and interleaved timing.

Usage:
    python benchmarks/seed_vmap.py [--basin rancocas] [--seeds 3] [--rounds 5] [--sparsity 1.0]
        [--out benchmarks/out/seed_vmap.json]
    python benchmarks/seed_vmap.py --smoke      # the tiny bundle written in code, 2 rounds, in seconds (CI)

On a shared machine absolute seconds drift with the load (recorded in ``load_average``); the per-round ratio,
measured side by side, is the comparable number.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from support.json_report import write_report

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.tiny_bundle for --smoke

VARIANT = "rgcn_fine"
#: Max abs difference of losses, gradients and updated weights that counts as "the same computation".
TOLERANCE = 1e-5


def load(basin: str, smoke_dir: str | None, sparsity: float, **overrides: Any):  # noqa: ANN201
    """(cfg, prepared) for ``basin``; with ``smoke_dir``, the tiny bundle written there (20-day windows)."""
    from msgl_core.config import RunConfig
    from msgl_core.data import load_dataset
    from msgl_core.data.dataset import prepare

    values: dict[str, Any] = {"basin": basin, "sparsity": sparsity, **overrides}
    if smoke_dir:
        from tests.tiny_bundle import PERIODS

        values.update(basin="drb", window=20, **PERIODS)
        data = load_dataset(Path(smoke_dir) / "bundle", Path(smoke_dir) / "cache")
    else:
        data = load_dataset()
    cfg = RunConfig.from_dict(values)
    return cfg, prepare(data, cfg)


def measure(basin: str, seeds: int, rounds: int, sparsity: float, smoke_dir: str | None) -> dict:
    """Equality checks, probes and interleaved timings of the sequential, stacked and manual steps, in this process."""
    import torch

    from msgl_core.data.dataset import batch
    from msgl_core.registry import get_variant
    from msgl_core.train.losses import has_observations
    from msgl_core.train.runtime import seed_everything, set_threads

    set_threads(1)
    load_at_start = _load()
    cfg, prepared = load(basin, smoke_dir, sparsity, variant=VARIANT, window=365, threads=1, device="cpu")
    variant = get_variant(VARIANT)
    step = variant.stages[-1].step
    window = next(b for b in (batch(prepared, w) for w in prepared.windows["train"]) if has_observations(b.y_fine))

    def build(seed: int) -> torch.nn.Module:
        seed_everything(seed)
        return variant.build(prepared, cfg).train()

    unsupported: list[dict[str, str]] = []
    sequential = [build(cfg.seed + s) for s in range(seeds)]
    optimizers = [torch.optim.Adam(m.parameters(), lr=cfg.learning_rate) for m in sequential]
    copies = [build(cfg.seed + s) for s in range(seeds)]  # the same initial weights, for the stacked paths
    try:
        params, _ = torch.func.stack_module_state(copies)
    except Exception as error:  # noqa: BLE001  (recorded, then the parameters alone are stacked)
        unsupported.append(_failure("torch.func.stack_module_state(models)", error))
        params = _stack(copies)
    buffers = dict(copies[0].named_buffers())  # the shared graph, passed unbatched
    base = copies[0]  # functional_call swaps the stacked slices in for its own parameters
    batched = torch.func.vmap(lambda p, x: torch.func.functional_call(base, (p, buffers), (x,)), in_dims=(0, None))
    if base.rgcn.recurrent_dropout.p:
        raise ValueError("the hand-batched forward assumes RGCN's default recurrent dropout of 0")
    manual_params = _stack(copies)
    adjacency = prepared.adjacency_fine
    paths = {"stacked": (lambda: batched(params, window.x_fine), params),
             "manual": (lambda: _manual_forward(manual_params, window.x_fine, adjacency), manual_params)}
    stacked_optimizers = {name: torch.optim.Adam(p.values(), lr=cfg.learning_rate) for name, (_, p) in paths.items()}

    def batched_step(name: str) -> torch.Tensor:
        forward, p = paths[name]
        losses = _stacked_losses(forward(), window.y_fine)
        stacked_optimizers[name].zero_grad(set_to_none=True)
        losses.sum().backward()
        if cfg.grad_clip:
            _clip_per_seed(list(p.values()), cfg.grad_clip)
        stacked_optimizers[name].step()
        return losses.detach()

    def sequential_step() -> list[float]:
        return [step(m, window, o, cfg).loss for m, o in zip(sequential, optimizers, strict=True)]

    result: dict[str, Any] = {
        "variant": VARIANT, "basin": cfg.basin, "seeds": seeds, "rounds": rounds, "threads": 1, "device": "cpu",
        "reaches": len(prepared.reach_ids), "days": window.x_fine.shape[1],
        "fine_targets": int((~torch.isnan(window.y_fine)).sum()),
        "adjacency_layout": str(adjacency.layout), "tolerance": TOLERANCE}
    # Equality: one step of each from the same weights (also the warm-up).
    loss_a = sequential_step()
    calls: dict[str, Any] = {"sequential": sequential_step}
    for name, key in (("stacked", "equality"), ("manual", "equality_manual")):
        try:
            loss = batched_step(name)
        except Exception as error:  # noqa: BLE001
            what = ("torch.func.vmap(functional_call(model)) forward/backward" if name == "stacked"
                    else "hand-batched RGCN forward/backward")
            unsupported.append(_failure(what, error))
            result[key] = None
            continue
        calls[name] = lambda name=name: batched_step(name)
        result[key] = _equality(sequential, paths[name][1], torch.tensor(loss_a), loss)
        result[key]["first_losses"] = [round(x, 6) for x in loss_a]
    result["vmap_ok"] = "stacked" in calls
    sparse_probe = _sparse_path_probe(variant, prepared, cfg, window, seeds)
    unsupported += sparse_probe.pop("unsupported")
    result["sparse_path"] = sparse_probe
    result["unsupported"] = unsupported

    step_s: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for r in range(rounds):  # rotating order, so that no path always runs first
        for name in names[r % len(names):] + names[: r % len(names)]:
            step_s[name].append(_timed(calls[name]))
    result.update(
        step_s={name: round(statistics.median(v), 4) for name, v in step_s.items()},
        step_s_per_seed={name: round(statistics.median(v) / seeds, 4) for name, v in step_s.items()},
        rounds_s={name: [round(x, 4) for x in v] for name, v in step_s.items()},
        **{f"sequential_over_{name}": _ratio(step_s["sequential"], step_s[name]) for name in names[1:]},
        load_average_at_start=load_at_start, load_average=_load())
    result["msgl_forward_backward"] = _msgl_part(prepared, cfg, seeds, rounds)
    return result


def _msgl_part(prepared: Any, cfg: Any, seeds: int, rounds: int) -> dict:  # noqa: ANN401
    """MSGL's model, forward and backward of the sum of its three task losses (no MGDA, no optimiser step), with
    dropout 0 (so that both paths compute the same thing): S models one after the other against one vmapped pass.

    Under vmap the cross-scale matrix is made dense (the sparse product is an ``autograd.Function`` without a vmap
    rule) and the BatchNorm running statistics are stacked per seed (they are updated in place).
    """
    import warnings
    from dataclasses import replace

    import torch

    from msgl_core.data.dataset import batch
    from msgl_core.registry import get_variant
    from msgl_core.train.losses import has_observations
    from msgl_core.train.steps import _task_losses

    cfg = replace(cfg, variant="msgl", dropout=0.0)
    variant = get_variant("msgl")
    candidates = (batch(prepared, w) for w in prepared.windows["train"])
    window = next(b for b in candidates if has_observations(b.y_coarse) and has_observations(b.y_fine))

    def build(seed: int) -> torch.nn.Module:
        torch.manual_seed(seed)
        return variant.build(prepared, cfg).train()

    sequential = [build(cfg.seed + s) for s in range(seeds)]
    copies = [build(cfg.seed + s) for s in range(seeds)]
    params = _stack(copies)
    own = [dict(m.named_buffers()) for m in copies]
    shared = {name: t.to_dense() if name == "mixed" else t for name, t in own[0].items() if t.layout != torch.strided}
    per_seed = {name: torch.stack([b[name] for b in own]) for name in own[0] if name not in shared}
    unsupported: list[dict[str, str]] = []
    inputs = (window.x_coarse, window.x_fine)
    batched = torch.func.vmap(lambda p, bn: _outputs(torch.func.functional_call(copies[0], ({**p, **bn}, shared),
                                                                                inputs)), in_dims=(0, 0))

    def sequential_pass() -> list[float]:
        losses = []
        for m in sequential:
            m.zero_grad(set_to_none=True)
            loss = sum(_task_losses(m(*inputs), window))
            loss.backward()
            losses.append(float(loss.detach()))
        return losses

    def stacked_pass() -> torch.Tensor:
        for p in params.values():
            p.grad = None
        y_coarse, y_interp, y_fine = batched(params, per_seed)
        losses = (_stacked_losses(y_coarse, window.y_coarse) + _stacked_losses(y_interp, window.y_fine)
                  + _stacked_losses(y_fine, window.y_fine))
        losses.sum().backward()
        return losses.detach()

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        probes = {"vmap through MSGL as built (sparse cross-scale matrix, BatchNorm statistics shared)": own[0],
                  "vmap through MSGL, dense cross-scale matrix, BatchNorm statistics shared":
                      {**own[0], "mixed": shared["mixed"]}}
        for what, buffers in probes.items():  # forward only; BatchNorm statistics of the stacked pass are in per_seed
            try:
                torch.func.vmap(lambda p, b=buffers: _outputs(torch.func.functional_call(copies[0], (p, b), inputs)))(params)
            except Exception as error:  # noqa: BLE001
                unsupported.append(_failure(what, error))
        loss_a = sequential_pass()
        try:
            loss_b = stacked_pass()
        except Exception as error:  # noqa: BLE001
            unsupported.append(_failure("vmap through MSGL, dense cross-scale matrix, BatchNorm statistics per seed",
                                        error))
            return {"dropout": 0.0, "segments": len(prepared.segment_ids), "equality": None,
                    "unsupported": unsupported, "load_average": _load()}
    with torch.no_grad():
        equality = {
            "loss_max_abs_diff": _max_diff(torch.tensor(loss_a), loss_b),
            "grad_max_abs_diff": max(_max_diff(p.grad, params[name].grad[s])
                                     for s, m in enumerate(sequential) for name, p in m.named_parameters()),
            "batchnorm_stats_max_abs_diff": max(_max_diff(b, per_seed[name][s]) for s, m in enumerate(sequential)
                                                for name, b in m.named_buffers() if name in per_seed)}
    equality["ok"] = max(equality.values()) <= TOLERANCE
    step_s: dict[str, list[float]] = {"sequential": [], "stacked": []}
    calls = {"sequential": sequential_pass, "stacked": stacked_pass}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the same warnings as recorded above
        for r in range(rounds):
            for name in (("sequential", "stacked") if r % 2 == 0 else ("stacked", "sequential")):
                step_s[name].append(_timed(calls[name]))
    return {"dropout": 0.0, "segments": len(prepared.segment_ids), "equality": equality, "unsupported": unsupported,
            "vmap_warnings": sorted({str(w.message).split(". ")[0] for w in caught}),
            "pass_s": {name: round(statistics.median(v), 4) for name, v in step_s.items()},
            "rounds_s": {name: [round(x, 4) for x in v] for name, v in step_s.items()},
            "sequential_over_stacked": _ratio(step_s["sequential"], step_s["stacked"]), "load_average": _load()}


def _outputs(out: Any) -> tuple:  # noqa: ANN401
    """MSGLOutput's three predictions as a tuple (vmap returns tensors only)."""
    return out.y_coarse, out.y_interp, out.y_fine


def _stack(models: list) -> dict:
    """Each parameter of ``models`` stacked along a new leading seed dimension (a fresh leaf that requires grad)."""
    import torch

    return {name: torch.stack([dict(m.named_parameters())[name].detach() for m in models]).requires_grad_()
            for name, _ in models[0].named_parameters()}


def _equality(models: list, params: dict, loss_a: Any, loss_b: Any) -> dict:  # noqa: ANN401
    """Max abs differences of losses, (clipped) gradients and weights after the step: ``models`` against the slices
    of the stacked ``params``."""
    import torch

    with torch.no_grad():
        triples = [(p, params[name][s], params[name].grad[s])
                   for s, m in enumerate(models) for name, p in m.named_parameters()]
        values = {"loss_max_abs_diff": _max_diff(loss_a, loss_b),
                  "grad_max_abs_diff": max(_max_diff(a.grad, g) for a, _, g in triples),
                  "weight_max_abs_diff": max(_max_diff(a, b) for a, b, _ in triples)}
    return {**values, "ok": max(values.values()) <= TOLERANCE}


def _manual_forward(params: dict, x: Any, adjacency: Any) -> Any:  # noqa: ANN401
    """:class:`msgl_core.models.RGCN`'s forward written out for S stacked parameter sets at once (no vmap).

    The same operations as :class:`msgl_core.models.rgcn_layer.RGCNLayer` (zero recurrent dropout), each on a
    leading seed dimension: batched matrix products, and one graph product per day for all seeds together (the
    seeds' messages side by side, (nodes, S * H)), so the layer's sparse operator works too.

    Shapes: params: the RGCN's parameters, each (S, ...); x: (nodes, time, F); returns (S, nodes, time, 1).
    """
    import torch

    from msgl_core.graph import matmul_operator
    from msgl_core.models import rgcn_layer

    weight_ih = params["rgcn.weight_ih"]
    seeds, features, size = weight_ih.shape[0], weight_ih.shape[1], weight_ih.shape[2] // 4
    nodes = x.shape[0]
    if adjacency.layout != torch.strided and nodes <= rgcn_layer.DENSE_GRAPH_NODES:
        adjacency = adjacency.to_dense()
    propagate = matmul_operator(adjacency)
    weight_x = torch.cat([weight_ih, weight_ih.new_zeros(seeds, features, size)], dim=2)
    bias = torch.cat([params["rgcn.bias"], params["rgcn.bias_q"]], dim=1)
    x_steps = (torch.matmul(x.unsqueeze(0), weight_x.unsqueeze(1)) + bias[:, None, None, :]).unbind(dim=2)
    weight_h = torch.cat([params["rgcn.weight_hh"], params["rgcn.weight_q"]], dim=2)
    h = x.new_zeros(seeds, nodes, size)
    c = x.new_zeros(seeds, nodes, size)
    outputs = []
    for x_step in x_steps:
        i, f, g, o, q = torch.baddbmm(x_step, h, weight_h).chunk(5, dim=2)
        side_by_side = torch.tanh(q).transpose(0, 1).reshape(nodes, seeds * size)
        message = propagate(side_by_side).reshape(nodes, seeds, size).transpose(0, 1)
        c = torch.sigmoid(f) * (c + message) + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outputs.append(h)
    hidden = torch.stack(outputs, dim=2)  # (S, nodes, time, H)
    return (torch.matmul(hidden, params["output.weight"].transpose(1, 2)[:, None])
            + params["output.bias"][:, None, None, :])


def _stacked_losses(prediction: Any, target: Any) -> Any:  # noqa: ANN401
    """(S,) masked RMSE of each seed's (S, nodes, time, 1) prediction on the (nodes, time) targets (NaN: none),
    as :func:`msgl_core.train.losses.masked_rmse` per seed."""
    import torch

    prediction = prediction.reshape(prediction.shape[0], *target.shape)
    observed = ~torch.isnan(target)
    if not bool(observed.any()):
        return prediction.sum(dim=(1, 2)) * 0.0
    error = prediction[:, observed] - target[observed]
    return torch.sqrt(torch.mean(error**2, dim=1))


def _clip_per_seed(params: list, max_norm: float) -> None:
    """Scale each seed's slice of the stacked gradients as ``clip_grad_norm_`` would scale that seed's own."""
    import torch

    grads = [p.grad for p in params if p.grad is not None]
    seeds = grads[0].shape[0]
    norms = torch.stack([torch.linalg.vector_norm(g.reshape(seeds, -1), dim=1) for g in grads]).norm(dim=0)
    coef = torch.clamp(max_norm / (norms + 1e-6), max=1.0)
    for g in grads:
        g.mul_(coef.reshape(seeds, *([1] * (g.ndim - 1))))


def _sparse_path_probe(variant: Any, prepared: Any, cfg: Any, window: Any, seeds: int) -> dict:  # noqa: ANN401
    """One forward and backward with the RGCN layer's sparse graph product forced on (as on graphs of more than
    ``DENSE_GRAPH_NODES`` nodes): under vmap, and hand-batched against each model's own pass."""
    import torch

    from msgl_core.models import rgcn_layer

    models = []
    for s in range(seeds):
        torch.manual_seed(cfg.seed + s)
        models.append(variant.build(prepared, cfg).train())
    buffers = dict(models[0].named_buffers())
    threshold = rgcn_layer.DENSE_GRAPH_NODES
    result: dict[str, Any] = {"forced_dense_graph_nodes": 0, "unsupported": []}
    rgcn_layer.DENSE_GRAPH_NODES = 0
    try:
        try:
            params = _stack(models)
            out = torch.func.vmap(lambda p, x: torch.func.functional_call(models[0], (p, buffers), (x,)),
                                  in_dims=(0, None))(params, window.x_fine)
            _stacked_losses(out, window.y_fine).sum().backward()
            result["vmap_ok"] = True
        except Exception as error:  # noqa: BLE001
            result["vmap_ok"] = False
            result["unsupported"].append(
                _failure(f"vmap through RGCNLayer's sparse graph product (graphs > {threshold} nodes)", error))
        params = _stack(models)
        losses = _stacked_losses(_manual_forward(params, window.x_fine, prepared.adjacency_fine), window.y_fine)
        losses.sum().backward()
        own = []
        for m in models:
            own.append(_stacked_losses(m(window.x_fine).unsqueeze(0), window.y_fine)[0])
            own[-1].backward()
    finally:
        rgcn_layer.DENSE_GRAPH_NODES = threshold
    with torch.no_grad():
        result["manual_equality"] = {
            "loss_max_abs_diff": _max_diff(torch.stack(own), losses),
            "grad_max_abs_diff": max(_max_diff(p.grad, params[name].grad[s])
                                     for s, m in enumerate(models) for name, p in m.named_parameters())}
    return result


def _failure(what: str, error: BaseException) -> dict[str, str]:
    """What failed, where (the innermost frame of this repository's code, and the one that raised) and the error,
    first lines only."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if f.filename.startswith(str(ROOT)) and "site-packages" not in f.filename]

    def show(frame: traceback.FrameSummary) -> str:
        path = Path(frame.filename)
        name = path.relative_to(ROOT) if path.is_relative_to(ROOT) and frame in ours else path.name
        return f"{name}:{frame.lineno} ({frame.name}): {frame.line}"

    message = "\n".join(str(error).strip().splitlines()[:3])
    return {"what": what, "where": show(ours[-1]) if ours else "", "raised_at": show(frames[-1]) if frames else "",
            "error": f"{type(error).__name__}: {message}"}


def _max_diff(a: Any, b: Any) -> float:  # noqa: ANN401
    return float((a.detach().double() - b.detach().double()).abs().max())


def _ratio(slow: list[float], fast: list[float]) -> float:
    return round(statistics.median(s / f for s, f in zip(slow, fast, strict=True)), 3)


def _timed(call: Any) -> float:  # noqa: ANN401
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--basin", default="rancocas")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--sparsity", type=float, default=1.0)
    parser.add_argument("--smoke", action="store_true", help="tiny bundle written in code, 2 rounds (CI)")
    parser.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out" / "seed_vmap.json")
    args = parser.parse_args()
    import torch

    with tempfile.TemporaryDirectory() as smoke_dir:
        if args.smoke:
            from tests.tiny_bundle import write_tiny_bundle

            write_tiny_bundle(Path(smoke_dir) / "bundle")
        result = measure(args.basin, args.seeds, 2 if args.smoke else args.rounds, args.sparsity,
                         smoke_dir if args.smoke else None)
    result["meta"] = {"torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
                      "cores": os.cpu_count(), "smoke": args.smoke, "command": sys.argv}
    write_report(result, args.out)
    print(_summary(result))
    print(f"wrote {args.out}")


def _summary(r: dict) -> str:
    where = f"seed_vmap {r['variant']} {r['basin']} ({r['reaches']} reaches, {r['days']} days) S={r['seeds']}"
    times = ", ".join(f"{name} {seconds:.4f} s" for name, seconds in r["step_s"].items())
    ratios = ", ".join(f"sequential/{key.rsplit('_', 1)[1]} {value}x" for key, value in r.items()
                       if key.startswith("sequential_over_"))
    diffs = "; ".join(f"{label} max abs diff loss {e['loss_max_abs_diff']:.1e}, grad {e['grad_max_abs_diff']:.1e}, "
                      f"weight {e['weight_max_abs_diff']:.1e}"
                      for label, e in (("vmap", r["equality"]), ("manual", r["equality_manual"])) if e)
    failed = "; ".join(u["what"] for u in r["unsupported"])
    m = r["msgl_forward_backward"]
    msgl = "msgl forward+backward: vmap failed" if m["equality"] is None else (f"msgl forward+backward sequential {m['pass_s']['sequential']:.4f} s, stacked {m['pass_s']['stacked']:.4f} s, "
            f"{m['sequential_over_stacked']}x (max abs diff grad {m['equality']['grad_max_abs_diff']:.1e})")
    return (f"{where}: {times} per step (all seeds); {ratios}; {diffs or 'no batched path ran'}; {msgl}; "
            f"unsupported: {failed or 'none'}; load {r['load_average'][0]}")


if __name__ == "__main__":
    main()
