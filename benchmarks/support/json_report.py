"""The one way every benchmark writes its report: indented JSON at ``--out``, its folder created.

Each script in ``benchmarks/`` runs as ``python benchmarks/<name>.py``, so ``benchmarks/`` is on ``sys.path``
and the scripts import ``from support.json_report import write_report``. It lives in a subfolder so that the
suite's "every script in benchmarks/ has a smoke mode" check does not take it for a benchmark.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any


def write_report(report: dict[str, Any], out: str | Path, default: Callable[[Any], Any] | None = None) -> Path:
    """Write ``report`` to ``out`` as JSON indented by 2 (``default`` as in :func:`json.dumps`); returns ``out``."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, default=default))
    return out
