"""C' and its closed-form projections (docs/probabilistic.md §1): exact algebra and Hypothesis properties."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from msgl_core.data.dataset import Scaler
from msgl_core.graph.coarsening import CoarseningOperator, GlobalScaler
from tests.prob.tiny import LENGTHS, N_SEGMENTS, PARENT, operator


@st.composite
def problems(draw: st.DrawFn) -> tuple[CoarseningOperator, torch.Tensor, torch.Tensor, np.ndarray]:
    """A random crosswalk (1–5 segments of 1–6 reaches), positive lengths, a field z and coarse values y."""
    sizes = draw(st.lists(st.integers(1, 6), min_size=1, max_size=5))
    parent = np.repeat(np.arange(len(sizes)), sizes)
    rng = np.random.default_rng(draw(st.integers(0, 2**31)))
    rng.shuffle(parent)  # reaches of a segment need not be contiguous
    lengths = draw(arrays(np.float64, parent.size, elements=st.floats(10.0, 5000.0)))
    z = draw(arrays(np.float64, (2, parent.size), elements=st.floats(-30.0, 40.0)))
    y = draw(arrays(np.float64, (2, len(sizes)), elements=st.floats(-30.0, 40.0)))
    op = CoarseningOperator.from_crosswalk(parent, lengths, len(sizes))
    return op, torch.from_numpy(z), torch.from_numpy(y), lengths


def test_shape_rows_and_broadcast() -> None:
    op = operator()
    dense = op.to_dense()
    assert dense.shape == (3, 7)
    torch.testing.assert_close(dense.sum(dim=1), torch.ones(3, dtype=torch.float64))
    y = torch.tensor([[3.0, -1.0, 12.5]], dtype=torch.float64)
    torch.testing.assert_close(op.apply(op.broadcast(y)), y)
    z = torch.randn(4, 5, 7, dtype=torch.float64)
    torch.testing.assert_close(op.apply(z), z @ dense.T)


def test_closed_form_pseudo_inverse_matches_pinv() -> None:
    op = operator()
    torch.testing.assert_close(op.pinv(), torch.linalg.pinv(op.to_dense()), atol=1e-6, rtol=0)


@settings(max_examples=60, deadline=None)
@given(problems())
def test_projection_properties(problem: tuple) -> None:
    op, z, y, _ = problem
    for metric in ("euclidean", "length"):
        x = op.project(z, y, metric=metric)
        torch.testing.assert_close(op.apply(x), y, atol=1e-6, rtol=0)  # C'P(z) = y
        torch.testing.assert_close(op.project(x, y, metric=metric), x, atol=1e-9, rtol=0)  # idempotent
        torch.testing.assert_close(op.project_residual(op.project_residual(z, metric), metric),
                                   op.project_residual(z, metric), atol=1e-9, rtol=0)
    # Already feasible: unchanged.
    feasible = op.project(z, y)
    torch.testing.assert_close(op.project(feasible, y), feasible, atol=1e-9, rtol=0)
    # Euclidean: z − P(z) lies in the row space of C' (orthogonal to its null space): minimal change.
    dense = op.to_dense()
    change = z - op.project(z, y)
    null = torch.eye(op.n_reaches, dtype=torch.float64) - op.pinv() @ dense
    torch.testing.assert_close(change @ null.T, torch.zeros_like(change), atol=1e-8, rtol=0)
    # Length metric: a uniform shift per segment, for any lengths.
    shift = op.project(z, y, metric="length") - z
    torch.testing.assert_close(shift, op.broadcast(y - op.apply(z)), atol=1e-8, rtol=0)


@settings(max_examples=40, deadline=None)
@given(problems())
def test_euclidean_projection_is_the_closest_feasible_field(problem: tuple) -> None:
    op, z, y, _ = problem
    x = op.project(z, y)
    # Any other feasible point x + n (n in the null space) is no closer to z.
    n = op.project_residual(torch.randn_like(z))
    assert bool(((x + n - z).norm(dim=-1) >= (x - z).norm(dim=-1) - 1e-9).all())


def test_equal_lengths_give_a_uniform_shift_and_single_reach_is_set() -> None:
    op = operator(np.ones(7))
    z = torch.randn(3, 7, dtype=torch.float64)
    y = torch.randn(3, 3, dtype=torch.float64)
    x = op.project(z, y)
    torch.testing.assert_close(x - z, op.broadcast(y - op.apply(z)))
    unequal = operator()
    torch.testing.assert_close(unequal.project(z, y)[:, 0], y[:, 0])  # segment 0 has one reach


def test_soft_projection_limits() -> None:
    op = operator()
    z = torch.randn(5, 7, dtype=torch.float64)
    y = torch.randn(5, 3, dtype=torch.float64)
    torch.testing.assert_close(op.project(z, y, tau=0.0), op.project(z, y))
    torch.testing.assert_close(op.project(z, y, tau=1e6), z, atol=1e-9, rtol=0)
    halfway = op.project(z, y, tau=0.5)
    assert bool(((op.apply(halfway) - y).abs() <= (op.apply(z) - y).abs() + 1e-12).all())


def test_float32_constraint_error_is_tiny() -> None:
    op = operator()
    z = 10 * torch.randn(100, 7)
    y = 20 + 5 * torch.randn(100, 3)
    assert float((op.apply(op.project(z, y)) - y).abs().max()) <= 1e-4


@pytest.mark.parametrize(("parent", "lengths", "n", "match"), [
    ([0, 1], [1.0], 2, "same length"),
    ([0, 2], [1.0, 1.0], 2, "must lie in"),
    ([0, 0], [1.0, 1.0], 2, "have no reach"),
    ([0, 1], [1.0, 0.0], 2, "finite and > 0"),
    ([0, 1], [1.0, np.nan], 2, "finite and > 0"),
    ([0.0, 1.0], [1.0, 1.0], 2, "integer"),
])
def test_bad_crosswalk_raises(parent: list, lengths: list, n: int, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        CoarseningOperator.from_crosswalk(np.array(parent), np.array(lengths), n)


def test_bad_projection_options_raise() -> None:
    op = operator()
    z, y = torch.zeros(7), torch.zeros(3)
    with pytest.raises(ValueError, match="metric must be one of"):
        op.project(z, y, metric="manhattan")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="tau must be"):
        op.project(z, y, tau=-1.0)


def test_per_reach_scaler_is_impossible_and_global_one_commutes() -> None:
    per_reach = Scaler(np.linspace(5, 10, 7), np.linspace(1, 2, 7))
    with pytest.raises(ValueError, match="per-reach scaler breaks"):
        GlobalScaler(per_reach.mean, per_reach.std)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="std must be > 0"):
        GlobalScaler(1.0, 0.0)
    scaler = GlobalScaler(np.array(12.0), np.array(4.0))  # type: ignore[arg-type]  # 0-d arrays, as dataset.py's
    op = CoarseningOperator.from_crosswalk(PARENT, LENGTHS, N_SEGMENTS)
    x = 15 + 5 * torch.randn(6, 7, dtype=torch.float64)
    torch.testing.assert_close(op.apply(scaler.apply(x)), scaler.apply(op.apply(x)))
    torch.testing.assert_close(scaler.invert(scaler.apply(x)), x)
