"""The ``msgl`` command line. Subcommands: ``msgl data build``, ``msgl data info``."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

import typer

from msgl_core.data.build import build_dataset, load_dataset

app = typer.Typer(help="Multi-Scale Graph Learning for DRB stream temperature.", no_args_is_help=True,
                  add_completion=False)
data_app = typer.Typer(help="Build and inspect the processed DRB dataset.", no_args_is_help=True)
app.add_typer(data_app, name="data")

DataDir = Annotated[Optional[Path], typer.Option(
    "--data-dir", help="DRB bundle folder (else $MSGL_DATA_DIR, data/drb/, ../shared/data/drb/).")]
CacheDir = Annotated[Optional[Path], typer.Option(
    "--cache-dir", help="Processed-data cache (else $MSGL_CACHE_DIR, ~/.cache/msgl).")]


class _StepPrinter:
    """Prints numbered build steps with the time each took, to stderr."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()
        self.step = 0

    def __call__(self, message: str) -> None:
        now = time.perf_counter()
        if self.step:
            typer.echo(f"      done in {now - self.last:.1f} s", err=True)
        self.step += 1
        self.last = now
        typer.echo(f"[{self.step}] {message}", err=True)


def _fail(error: Exception) -> None:
    typer.echo(f"error: {error}", err=True)
    raise typer.Exit(code=2)


@data_app.command("build")
def data_build(data_dir: DataDir = None, cache_dir: CacheDir = None,
               rebuild: Annotated[bool, typer.Option(help="Rebuild even if a cache exists.")] = False) -> None:
    """Build the processed dataset (NetCDF + GeoPackage) from the bundle, or reuse the cache."""
    printer = _StepPrinter()
    try:
        path = build_dataset(data_dir, cache_dir, rebuild=rebuild, progress=printer)
    except (ValueError, FileNotFoundError) as error:
        _fail(error)
    typer.echo(f"total {time.perf_counter() - printer.start:.1f} s", err=True)
    typer.echo(str(path))


@data_app.command("info")
def data_info(data_dir: DataDir = None, cache_dir: CacheDir = None,
              as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False) -> None:
    """Summarise the processed dataset (builds it first if needed)."""
    try:
        info = load_dataset(data_dir, cache_dir, progress=None if as_json else _StepPrinter()).info()
    except (ValueError, FileNotFoundError) as error:
        _fail(error)
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    typer.echo(f"segments {info['n_segments']}, reaches {info['n_reaches']}, "
               f"{info['time_start']}..{info['time_end']}")
    typer.echo(f"observed segment-days {info['n_coarse_obs']:,} on {info['n_coarse_obs_segments']} segments")
    typer.echo(f"observed reach-days {info['n_fine_obs']:,} on {info['n_fine_obs_reaches']} reaches")
    typer.echo(f"drivers: {', '.join(info['drivers'])}")
    for name, preset in info["presets"].items():
        typer.echo(f"preset {name}: outlet {preset['outlet_seg_id_nat']}, {preset['n_segments']} segments, "
                   f"{preset['n_reaches']} reaches - {preset['description']}")
    typer.echo(f"cache: {info['cache']}")


def main() -> None:
    """Console-script entry point."""
    app(sys.argv[1:])
