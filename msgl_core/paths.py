"""Where the DRB data bundle and the processed cache live.

The bundle directory is resolved in this order (first hit wins):

1. an explicit ``data_dir`` argument (the CLI's ``--data-dir``);
2. the environment variable ``MSGL_DATA_DIR``;
3. ``data/drb/`` below the current directory;
4. ``../shared/data/drb/`` relative to the current directory.

The processed cache goes to ``cache_dir``, else ``MSGL_CACHE_DIR``, else ``~/.cache/msgl``.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "MSGL_DATA_DIR"
CACHE_DIR_ENV = "MSGL_CACHE_DIR"
DEFAULT_DATA_DIRS = (Path("data/drb"), Path("../shared/data/drb"))


def resolve_data_dir(data_dir: str | Path | None = None) -> Path:
    """Return the DRB bundle directory.

    Raises FileNotFoundError, listing every place that was tried, if none exists.
    """
    tried: list[str] = []
    if data_dir is not None:
        candidates = [(Path(data_dir), "--data-dir")]
    elif os.environ.get(DATA_DIR_ENV):
        candidates = [(Path(os.environ[DATA_DIR_ENV]), f"${DATA_DIR_ENV}")]
    else:
        candidates = [(p, "default") for p in DEFAULT_DATA_DIRS]
    for path, origin in candidates:
        if path.is_dir():
            return path.resolve()
        tried.append(f"{path} ({origin})")
    raise FileNotFoundError(
        "DRB data bundle not found; tried " + ", ".join(tried)
        + ". Pass --data-dir or set MSGL_DATA_DIR (see data/README.md)."
    )


def resolve_cache_dir(cache_dir: str | Path | None = None) -> Path:
    """Return the processed-data cache directory (created if missing)."""
    if cache_dir is not None:
        path = Path(cache_dir)
    elif os.environ.get(CACHE_DIR_ENV):
        path = Path(os.environ[CACHE_DIR_ENV])
    else:
        path = Path.home() / ".cache" / "msgl"
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()
