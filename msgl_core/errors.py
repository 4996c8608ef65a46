"""Errors raised for bad input data or configuration."""

from __future__ import annotations

from pathlib import Path


class DataError(ValueError):
    """Bad or missing input data.

    The message always names the file and the field (column or variable) and states what was
    expected, e.g. ``network/nhm_segments.gpkg: column 'seg_slope': expected float, found object``.
    """

    def __init__(self, file: str | Path, field: str | None, problem: str) -> None:
        where = f"{file}" if field is None else f"{file}: field '{field}'"
        super().__init__(f"{where}: {problem}")
        self.file = str(file)
        self.field = field
        self.problem = problem
