"""Measure `msgl data build` from scratch: wall time, peak memory (RSS) and cache size on disk.

Usage: python benchmarks/data_build.py [--data-dir DIR] [--out benchmarks/out/data_build.json] [--smoke]
``--smoke`` builds the tiny test bundle (written in code) instead, in seconds, so CI keeps the script working.
Targets (issue: DRB dataset): peak memory <= 4 GB on the 2-core machine, cache <= 200 MB.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from support.json_report import write_report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/out/data_build.json"))
    parser.add_argument("--smoke", action="store_true", help="build the tiny test bundle (CI)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as cache:
        command = [sys.executable, "-m", "msgl_core", "data", "build", "--cache-dir", cache]
        if args.smoke:
            sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
            from tests.tiny_bundle import write_tiny_bundle

            args.data_dir = str(write_tiny_bundle(Path(cache) / "bundle"))
            command[-1] = str(Path(cache) / "processed")
        if args.data_dir:
            command += ["--data-dir", args.data_dir]
        start = time.perf_counter()
        subprocess.run(command, check=True, capture_output=True)
        seconds = time.perf_counter() - start
        peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
        size_mb = sum(f.stat().st_size for f in Path(command[command.index("--cache-dir") + 1]).rglob("*")
                      if f.is_file()) / 2**20
    result = {"build_seconds": round(seconds, 1), "peak_rss_mb": round(peak_mb), "cache_mb": round(size_mb, 1)}
    print(f"{'build time':<12}{result['build_seconds']:>8} s\n{'peak RSS':<12}{result['peak_rss_mb']:>8} MB\n"
          f"{'cache size':<12}{result['cache_mb']:>8} MB")
    write_report(result, args.out)


if __name__ == "__main__":
    main()
