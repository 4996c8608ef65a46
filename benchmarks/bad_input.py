"""Bad input and faults, as a new user meets them: does each end with one clear line?

Runs the ``msgl`` command on the tiny test bundle (written in code) with one bad input per case:
wrong-typed or broken config values, a file where a folder is expected, bad output paths, bad basins
and hold-outs, corrupted bundle files (truncated, random, empty GeoPackage / netCDF / npz / parquet /
CSV), implausible values (°F, ±inf, duplicated rows) and a damaged processed cache. A case *ends
clearly* when the command exits with its expected code, prints an ``error:`` line that names what is
wrong (the expected fragment), prints no Python traceback, and leaves no run folder or temporary file
behind. The tests in ``tests/faults`` and ``tests/data/test_bad_input.py`` pin the same cases;
this script measures them as a table, against this checkout or against another one
(``--code /path/to/old/checkout``, for a before/after count).

Usage:
    python benchmarks/bad_input.py [--code DIR] [--out benchmarks/out/bad_input.json] [--smoke]
``--smoke`` runs four cases (CI).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from support.json_report import write_report

ROOT = Path(__file__).resolve().parents[1]
#: Runs ``msgl`` from the checkout on PYTHONPATH, bypassing an editable install's import hook.
MSGL = [sys.executable, "-c", "import runpy, sys; sys.meta_path[:] = [f for f in sys.meta_path "
        "if '__editable__' not in repr(f)]; runpy.run_module('msgl_core', run_name='__main__', alter_sys=True)"]


@dataclass(frozen=True)
class Case:
    """One bad input: ``args`` of ``msgl`` ({b} bundle, {c} cache, {r} runs, {w} work folder, {run} a
    trained run, {file} a plain file), a ``corrupt`` step on a copy of the bundle, the expected exit
    code and a fragment the message must contain (case-insensitive)."""

    name: str
    args: str
    expect: str
    code: int = 2
    corrupt: Callable[[Path], None] | None = None
    config: str | None = None


def _truncate(relative: str, keep: float = 0.5) -> Callable[[Path], None]:
    def corrupt(bundle: Path) -> None:
        path = bundle / relative
        data = path.read_bytes()
        path.write_bytes(data[: int(len(data) * keep)])
    return corrupt


def _replace(relative: str, content: bytes) -> Callable[[Path], None]:
    def corrupt(bundle: Path) -> None:
        (bundle / relative).write_bytes(content)
    return corrupt


def _parquet(relative: str, change: Callable) -> Callable[[Path], None]:
    def corrupt(bundle: Path) -> None:
        import pandas as pd

        path = bundle / relative
        change(pd.read_parquet(path)).to_parquet(path)
    return corrupt


def _sntemp(change: Callable) -> Callable[[Path], None]:
    def corrupt(bundle: Path) -> None:
        import xarray as xr

        path = bundle / "sntemp/sntemp_input_output_1979_2021.nc"
        ds = xr.load_dataset(path)
        change(ds).to_netcdf(path)
    return corrupt


def _csv_header_only(relative: str) -> Callable[[Path], None]:
    def corrupt(bundle: Path) -> None:
        path = bundle / relative
        path.write_text(path.read_text().splitlines()[0] + "\n")
    return corrupt


def _fahrenheit(name: str) -> Callable:
    def change(ds):  # noqa: ANN001, ANN202
        ds[name] = ds[name] * 9 / 5 + 32  # the units attribute still says degC
        ds[name].attrs["units"] = "degC"
        return ds
    return change


RANDOM = bytes(range(256)) * 64
SEGMENTS, SNTEMP, DISTANCE = ("network/nhm_segments.gpkg", "sntemp/sntemp_input_output_1979_2021.nc",
                              "network/nhm_distance_matrix.npz")
SITE_OBS, CROSSWALK = "obs/temp_site_daily.parquet", "network/nhd_crosswalk.csv"
TRAIN = "train --config {w}/run.yaml --device cpu --runs-dir {r} --data-dir {b} --cache-dir {c}"

CASES = (
    Case("yaml epochs: 2.5", "train --config {w}/bad.yaml --runs-dir {r} --data-dir {b} --cache-dir {c}",
         "epochs must be an integer", config="epochs: 2.5\n"),
    Case("yaml seed: abc", "train --config {w}/bad.yaml --runs-dir {r} --data-dir {b} --cache-dir {c}",
         "seed must be an integer", config="seed: abc\n"),
    Case("broken yaml", "train --config {w}/bad.yaml --runs-dir {r} --data-dir {b} --cache-dir {c}",
         "yaml", config="epochs: [1\n"),
    Case("a run's own config.yaml as --config", "train --config {run}/config.yaml --device cpu --runs-dir {r} "
         "--data-dir {b} --cache-dir {c}", "test rmse", code=0),
    Case("--threads 0", TRAIN + " --threads 0", "threads"),
    Case("--run-dir is a file", TRAIN + " --run-dir {file}", "is a file"),
    Case("--runs-dir is a file", "train --config {w}/run.yaml --runs-dir {file} --data-dir {b} --cache-dir {c}",
         "is a file"),
    Case("--cache-dir is a file (train)", "train --config {w}/run.yaml --runs-dir {r} --data-dir {b} "
         "--cache-dir {file}", "is a file"),
    Case("--cache-dir is a file (data info)", "data info --data-dir {b} --cache-dir {file}", "is a file"),
    Case("evaluate --run-dir is a file", "evaluate --run-dir {file}", "is a file"),
    Case("predict: corrupted model.pt", "predict --run-dir {w}/damaged_run --out {w}/p.nc --device cpu "
         "--data-dir {b} --cache-dir {c}", "model.pt"),
    Case("predict --out in a missing folder", "predict --run-dir {run} --out {w}/missing/p.nc --device cpu "
         "--data-dir {b} --cache-dir {c}", "does not exist"),
    Case("predict --out is a folder", "predict --run-dir {run} --out {w} --device cpu --data-dir {b} "
         "--cache-dir {c}", "is a folder"),
    Case("serve --port 99999", "serve --port 99999 --data-dir {b} --cache-dir {c}", "port"),
    Case("compare --basin nowhere", "compare --config {w}/run.yaml --basin nowhere --variants rgcn_fine "
         "--sparsity 1 --seeds 1 --workers 0 --out {w}/cmp --runs-dir {r} --data-dir {b} --cache-dir {c}",
         "basin"),
    Case("compare --basin ../../x", "compare --config {w}/run.yaml --basin ../../x --variants rgcn_fine "
         "--sparsity 1 --seeds 1 --workers 0 --runs-dir {r} --data-dir {b} --cache-dir {c}", "basin"),
    Case("compare --out is a file", "compare --config {w}/run.yaml --variants rgcn_fine --sparsity 1 --seeds 1 "
         "--workers 0 --out {file} --runs-dir {r} --data-dir {b} --cache-dir {c}", "is a file"),
    Case("--basin x/../../../escaped", TRAIN + " --basin x/../../../escaped", "basin"),
    Case("--basin atlantis", TRAIN + " --basin atlantis", "unknown basin"),
    Case("--holdout-segments 999", TRAIN + " --holdout-segments 999", "holdout"),
    Case("--holdout-segments abc", TRAIN + " --holdout-segments abc", "holdout"),
    Case("--seed -1", TRAIN + " --seed -1", "seed"),
    Case("--device tpu", TRAIN + " --device tpu", "device"),
    Case("--device cuda without a GPU", TRAIN + " --device cuda", "cuda"),
    Case("segments .gpkg truncated", TRAIN, "nhm_segments.gpkg", corrupt=_truncate(SEGMENTS)),
    Case("segments .gpkg random bytes", TRAIN, "nhm_segments.gpkg", corrupt=_replace(SEGMENTS, RANDOM)),
    Case("segments .gpkg empty", TRAIN, "nhm_segments.gpkg", corrupt=_replace(SEGMENTS, b"")),
    Case("SNTemp .nc truncated", TRAIN, "sntemp_input_output", corrupt=_truncate(SNTEMP)),
    Case("SNTemp .nc random bytes", TRAIN, "sntemp_input_output", corrupt=_replace(SNTEMP, RANDOM)),
    Case("distance .npz random bytes", TRAIN, "nhm_distance_matrix.npz", corrupt=_replace(DISTANCE, RANDOM)),
    Case("distance .npz truncated", TRAIN, "nhm_distance_matrix.npz", corrupt=_truncate(DISTANCE)),
    Case("site obs: renamed parquet column", TRAIN, "mean_temp_c",
         corrupt=_parquet(SITE_OBS, lambda df: df.rename(columns={"mean_temp_c": "temp_mean"}))),
    Case("crosswalk: header-only CSV", TRAIN, "nhd_crosswalk.csv", corrupt=_csv_header_only(CROSSWALK)),
    Case("site obs: duplicated (site_id, date) rows", TRAIN, "duplicated",
         corrupt=_parquet(SITE_OBS, lambda df: __import__("pandas").concat([df, df.head(3)]))),
    Case("site obs: +inf", TRAIN, "mean_temp_c",
         corrupt=_parquet(SITE_OBS, lambda df: df.assign(mean_temp_c=df["mean_temp_c"].where(
             df.index != 4, float("inf"))))),
    Case("air temperature in °F labelled degC", TRAIN, "seg_tave_air", corrupt=_sntemp(_fahrenheit("seg_tave_air"))),
    Case("simulated water temperature in °F labelled degC", TRAIN, "seg_tave_water",
         corrupt=_sntemp(_fahrenheit("seg_tave_water"))),
)
SMOKE = ("yaml epochs: 2.5", "--run-dir is a file", "compare --basin nowhere", "site obs: +inf")


def run_case(case: Case, fixture: dict[str, Path], env: dict[str, str]) -> dict:
    """Run one case in a fresh work folder; return its row of the table."""
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        escaped_before = set(work.parent.glob("escaped*"))  # written outside the work folder by an earlier case
        bundle = fixture["bundle"]
        cache = fixture["cache"]
        if case.corrupt is not None:
            bundle = work / "bundle"
            shutil.copytree(fixture["bundle"], bundle)
            case.corrupt(bundle)
            cache = work / "cache"
        shutil.copy(fixture["config"], work / "run.yaml")
        if case.config is not None:  # the working config plus one bad line
            (work / "bad.yaml").write_text(fixture["config"].read_text() + case.config)
        damaged = work / "damaged_run"
        shutil.copytree(fixture["run"], damaged)
        (damaged / "model.pt").write_bytes((damaged / "model.pt").read_bytes()[:100])
        (work / "a_file.txt").write_text("not a folder")
        runs = work / "runs"
        args = case.args.format(b=bundle, c=cache, r=runs, w=work, run=fixture["run"], file=work / "a_file.txt")
        try:
            result = subprocess.run([*MSGL, *args.split()], capture_output=True, text=True, env=env, cwd=work,
                                    timeout=300)
            code, output = result.returncode, result.stdout + result.stderr
        except subprocess.TimeoutExpired as expired:
            code, output = -1, f"{expired.stdout or ''}{expired.stderr or ''}\nno answer within 300 s"
        error_lines = [line for line in output.splitlines() if line.lower().startswith("error")
                       or "Invalid value" in line]
        leftovers = [str(p.relative_to(work)) for p in work.rglob("*")
                     if p.name.endswith(".tmp") or (p.parent == runs and case.code != 0)]
        escaped = [str(p) for p in set(work.parent.glob("escaped*")) - escaped_before]
        named = case.expect.lower() in output.lower()
        clear = (code == case.code and "Traceback" not in output and named
                 and (case.code == 0 or bool(error_lines)) and not leftovers and not escaped)
        return {"case": case.name, "exit": code, "clear": clear, "named": named,
                "traceback": "Traceback" in output, "leftovers": leftovers + escaped,
                "message": (error_lines[-1] if error_lines else (output.strip().splitlines() or [""])[-1])[:200]}


def make_fixture(root: Path, env: dict[str, str]) -> dict[str, Path]:
    """The tiny bundle, its cache, a config and one trained run, built with the code under test."""
    sys.path.insert(0, str(ROOT))
    import yaml

    from tests.tiny_bundle import PERIODS, write_tiny_bundle

    bundle = write_tiny_bundle(root / "bundle")
    config = root / "run.yaml"
    config.write_text(yaml.safe_dump({"basin": "drb", "window": 20, "epochs": 1, "variant": "rgcn_fine",
                                      **{k: [list(p) for p in v] for k, v in PERIODS.items()}}))
    run = root / "run"
    subprocess.run([*MSGL, "train", "--config", str(config), "--device", "cpu",
                    "--run-dir", str(run), "--data-dir", str(bundle), "--cache-dir", str(root / "cache")],
                   check=True, capture_output=True, env=env, cwd=root)
    return {"bundle": bundle, "cache": root / "cache", "config": config, "run": run}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--code", type=Path, default=ROOT, help="checkout whose msgl_core is measured")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/bad_input.json"))
    parser.add_argument("--smoke", action="store_true", help=f"run only {len(SMOKE)} cases (CI)")
    args = parser.parse_args()
    env = {**os.environ, "PYTHONPATH": str(args.code.resolve()), "CUDA_VISIBLE_DEVICES": ""}
    cases = [c for c in CASES if not args.smoke or c.name in SMOKE]
    with tempfile.TemporaryDirectory() as tmp:
        fixture = make_fixture(Path(tmp), env)
        rows = [run_case(case, fixture, env) for case in cases]
    width = max(len(r["case"]) for r in rows)
    for row in rows:
        print(f"{'clear ' if row['clear'] else 'UNCLEAR'} {row['case']:<{width}}  exit {row['exit']}  "
              f"{'TRACEBACK ' if row['traceback'] else ''}{row['message']}")
    clear = sum(r["clear"] for r in rows)
    print(f"{clear} of {len(rows)} cases end clearly ({args.code})")
    write_report({"code": str(args.code), "clear": clear, "cases": rows}, args.out)


if __name__ == "__main__":
    main()
