"""Topology helpers on hand-built graphs, plus Hypothesis properties of the reach network."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely.geometry import LineString

from msgl_core.data.network import cut_reaches
from msgl_core.data.topology import (
    check_acyclic,
    downstream_index,
    updown_from_topology,
    upstream_mask,
)
from msgl_core.errors import DataError

# Y-shaped river: 0 → 2, 1 → 2, 2 → 3 (outlet); lengths 10, 20, 30, 40 m.
Y_TO = np.array([2, 2, 3, -1])
Y_LENGTH = np.array([10.0, 20.0, 30.0, 40.0])


def test_updown_on_hand_built_y_river() -> None:
    inf = np.inf
    expected = np.array([
        [0.0, inf, 30.0, 70.0],
        [inf, 0.0, 30.0, 70.0],
        [-30.0, -30.0, 0.0, 40.0],
        [-70.0, -70.0, -40.0, 0.0],
    ])
    np.testing.assert_array_equal(updown_from_topology(Y_TO, Y_LENGTH), expected)


def test_upstream_mask_includes_outlet_and_tributaries() -> None:
    assert upstream_mask(Y_TO, 2).tolist() == [True, True, True, False]
    assert upstream_mask(Y_TO, 0).tolist() == [True, False, False, False]


def test_downstream_index_rejects_unknown_and_duplicated_ids() -> None:
    assert downstream_index(["a", "b"], ["b", ""]).tolist() == [1, -1]
    with pytest.raises(DataError, match="flows to unknown node 'z'"):
        downstream_index(["a", "b"], ["z", ""], "net.gpkg", "to_subseg")
    with pytest.raises(DataError, match="duplicated node ids"):
        downstream_index(["a", "a"], ["", ""])


@pytest.mark.parametrize("to_index", [np.array([1, 2, 0]), np.array([0, -1])])
def test_check_acyclic_names_the_cycle(to_index: np.ndarray) -> None:
    with pytest.raises(DataError, match=r"net\.gpkg: field 'to': topology has a cycle"):
        check_acyclic(to_index, "net.gpkg", "to")


@st.composite
def river_forests(draw: st.DrawFn) -> gpd.GeoDataFrame:
    """Random segment forests: segment i flows to some j > i or is an outlet."""
    n = draw(st.integers(1, 10))
    to_segment = []
    for i in range(n):
        is_outlet = i == n - 1 or draw(st.booleans()) and draw(st.booleans())
        to_segment.append(0 if is_outlet else 1 + draw(st.integers(i + 1, n - 1)))
    lengths = draw(st.lists(st.floats(50.0, 30_000.0), min_size=n, max_size=n))
    n_reaches = draw(st.lists(st.integers(1, 12), min_size=n, max_size=n))
    lines = [LineString([(-75 + 0.01 * i, 41.0), (-75 + 0.01 * i, 40.9)]) for i in range(n)]
    return gpd.GeoDataFrame({
        "to_segment": to_segment, "length_m": lengths, "slope": 0.001, "elevation_m": 100.0,
        "width_m": 5.0, "n_reaches": n_reaches,
    }, geometry=lines, crs=4326, index=np.arange(1, n + 1))


@settings(max_examples=40, deadline=None)
@given(river_forests())
def test_reach_network_properties(segments: gpd.GeoDataFrame) -> None:
    reaches = cut_reaches(segments)
    # Reach lengths sum to the segment length, and there are n_reaches per segment.
    sums = reaches.groupby("segment")["length_m"].sum()
    np.testing.assert_allclose(sums.loc[segments.index], segments["length_m"], rtol=1e-12)
    assert reaches.groupby("segment").size().loc[segments.index].tolist() == segments["n_reaches"].tolist()
    # Exactly one downstream reach for every reach except the outlet segments' last reaches.
    to_index = downstream_index(list(reaches.index), list(reaches["to_reach"]))
    outlets = {f"{s}_{n}" for s, n in zip(segments.index, segments["n_reaches"]) if segments.loc[s, "to_segment"] == 0}
    assert set(reaches.index[to_index < 0]) == outlets
    check_acyclic(to_index)
    # updown is antisymmetric in sign, with unconnected pairs inf both ways.
    updown = updown_from_topology(to_index, reaches["length_m"].to_numpy())
    finite = np.isfinite(updown)
    assert (finite == finite.T).all()
    assert (np.sign(updown[finite]) == -np.sign(updown.T[finite])).all()
    assert (updown[finite] == -updown.T[finite]).all()
