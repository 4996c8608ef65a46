"""Map geometry: reproject once to Web Mercator and cut lines into straight pieces for ``hv.Segments``.

Colour-mapped ``hv.Path`` is very slow for thousands of lines; ``hv.Segments`` with one row per
vertex pair (and a column naming the line it belongs to) draws the ~3,200 DRB reaches in well
under a second. Lines are simplified (Douglas-Peucker, :data:`SIMPLIFY_M` metres in Web Mercator),
which is invisible at the maps' scales and cuts the number of pieces by ~75 % (55,000 → 14,000).
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

#: Web Mercator, the CRS of tile basemaps; every map coordinate in the dashboard is in it (m).
MERCATOR = "EPSG:3857"
#: Simplification tolerance of map lines, m in Web Mercator (~38 m on the ground at 41° N): below one
#: pixel on a whole-basin map (~500 m/px) and on a sub-basin map (~60 m/px).
SIMPLIFY_M = 50.0
#: Piece columns of :func:`line_pieces`: start and end of each straight piece, m in Web Mercator.
PIECE_COLUMNS = ["x0", "y0", "x1", "y1"]


def to_mercator(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    """``frame`` reprojected to Web Mercator (:data:`MERCATOR`)."""
    return frame.to_crs(MERCATOR)


def line_pieces(lines: gpd.GeoSeries, tolerance: float = SIMPLIFY_M) -> pd.DataFrame:
    """Cut (multi)lines into straight pieces, one row per pair of consecutive vertices.

    Args:
        lines: line geometries in Web Mercator (m); their order defines ``line``.
        tolerance: simplification tolerance, m (0 keeps every vertex).

    Returns: DataFrame with ``x0, y0, x1, y1`` (m, Web Mercator) and ``line`` (int, position of
    the piece's line in ``lines``). Every line keeps at least one piece.
    """
    geoms = lines.simplify(tolerance).to_numpy() if tolerance > 0 else lines.to_numpy()
    parts, owner = shapely.get_parts(geoms, return_index=True)
    coords, part = shapely.get_coordinates(parts, return_index=True)
    same = part[1:] == part[:-1]
    start, end = coords[:-1][same], coords[1:][same]
    return pd.DataFrame({"x0": start[:, 0], "y0": start[:, 1], "x1": end[:, 0], "y1": end[:, 1],
                         "line": owner[part[:-1][same]]})


def ring_paths(polygons: gpd.GeoSeries, tolerance: float = 4 * SIMPLIFY_M) -> list[np.ndarray]:
    """Exterior rings of (multi)polygons as (n, 2) arrays of Web Mercator x, y (m), for ``hv.Path``."""
    simplified = polygons.simplify(tolerance).to_numpy() if tolerance > 0 else polygons.to_numpy()
    parts = shapely.get_parts(simplified)
    return [shapely.get_coordinates(shapely.get_exterior_ring(p)) for p in parts if not p.is_empty]


def polygon_table(polygons: gpd.GeoDataFrame, columns: list[str]) -> list[dict]:
    """Polygons as ``hv.Polygons`` data: one dict per part with ``x``, ``y`` (m) and ``columns``' values."""
    out: list[dict] = []
    for row in polygons.itertuples(index=False):
        geom = row.geometry
        for part in shapely.get_parts(np.array([geom])):
            xy = shapely.get_coordinates(shapely.get_exterior_ring(part))
            out.append({"x": xy[:, 0], "y": xy[:, 1], **{c: getattr(row, c) for c in columns}})
    return out


@dataclass(frozen=True)
class Bounds:
    """A map extent in Web Mercator, m."""

    left: float
    bottom: float
    right: float
    top: float

    @classmethod
    def of(cls, frame: gpd.GeoDataFrame | gpd.GeoSeries, pad: float = 0.04) -> Bounds:
        """Bounds of ``frame`` (Web Mercator) padded by ``pad`` of the larger side on every edge."""
        left, bottom, right, top = (float(v) for v in frame.total_bounds)
        margin = pad * max(right - left, top - bottom, 1000.0)
        return cls(left - margin, bottom - margin, right + margin, top + margin)

    @property
    def xlim(self) -> tuple[float, float]:
        """(left, right), m."""
        return (self.left, self.right)

    @property
    def ylim(self) -> tuple[float, float]:
        """(bottom, top), m."""
        return (self.bottom, self.top)

    @property
    def diagonal(self) -> float:
        """Length of the diagonal, m."""
        return float(np.hypot(self.right - self.left, self.top - self.bottom))

    @property
    def center_y(self) -> float:
        """Northing of the centre, m."""
        return (self.bottom + self.top) / 2

    def fit(self, aspect: float) -> Bounds:
        """These bounds grown about their centre to height / width ratio ``aspect`` (a frame of that shape
        shows them whole at equal x/y scale)."""
        width, height = self.right - self.left, self.top - self.bottom
        if height < width * aspect:
            height = width * aspect
        else:
            width = height / aspect
        x, y = (self.left + self.right) / 2, self.center_y
        return Bounds(x - width / 2, y - height / 2, x + width / 2, y + height / 2)

    def frame_size(self, width: int, max_height: int, min_height: int = 260) -> tuple[int, int]:
        """(width, height) in pixels of a map showing these bounds at equal x/y scale.

        The height follows the bounds' aspect ratio, clipped to [min_height, max_height]; when
        clipped, the width shrinks so that the scale stays equal.
        """
        aspect = (self.top - self.bottom) / max(self.right - self.left, 1.0)
        height = int(round(width * aspect))
        if height > max_height:
            return max(int(round(max_height / aspect)), 200), max_height
        return width, max(height, min_height)


def nearest_line(lines: gpd.GeoSeries, x: float, y: float, max_distance: float) -> int | None:
    """Position in ``lines`` (Web Mercator) of the line nearest to (x, y), or None if farther than ``max_distance`` m."""
    if len(lines) == 0 or not (np.isfinite(x) and np.isfinite(y)):
        return None
    distances = shapely.distance(lines.to_numpy(), shapely.points(x, y))
    best = int(np.nanargmin(distances))
    return best if distances[best] <= max_distance else None
