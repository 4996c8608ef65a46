"""MGDA min-norm weights (Sener & Koltun, NeurIPS 2018) on gradients whose answer is known."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from msgl_core.train.mgda import gram_matrix, min_norm_weights, normalize_gradients


def gram_of(*vectors: tuple[float, ...]) -> torch.Tensor:
    """Gram matrix of single-tensor task gradients given as plain vectors."""
    return gram_matrix([[torch.tensor(v, dtype=torch.float64)] for v in vectors])


def assert_on_simplex(weights: torch.Tensor) -> None:
    assert weights.dtype == torch.float64
    assert (weights >= 0).all()
    assert math.isclose(weights.sum().item(), 1.0, abs_tol=1e-9)


class TestMinNormWeights:
    def test_orthogonal_unit_vectors_get_equal_weight(self) -> None:
        weights = min_norm_weights(gram_of((1.0, 0.0), (0.0, 1.0)))
        torch.testing.assert_close(weights, torch.tensor([0.5, 0.5], dtype=torch.float64))

    def test_orthogonal_vectors_of_different_length(self) -> None:
        # min ||a (1, 0) + (1 - a) (0, 2)||^2 = a^2 + 4 (1 - a)^2 -> a = 0.8.
        weights = min_norm_weights(gram_of((1.0, 0.0), (0.0, 2.0)))
        torch.testing.assert_close(weights, torch.tensor([0.8, 0.2], dtype=torch.float64))

    def test_identical_gradients(self) -> None:
        pair = min_norm_weights(gram_of((1.0, 2.0), (1.0, 2.0)))
        torch.testing.assert_close(pair, torch.tensor([0.5, 0.5], dtype=torch.float64))
        gram = gram_of((1.0, 2.0), (1.0, 2.0), (1.0, 2.0))
        triple = min_norm_weights(gram)
        assert_on_simplex(triple)
        assert math.isclose((triple @ gram @ triple).item(), 5.0, rel_tol=1e-12)

    def test_vertex_that_is_the_min_norm_point_gets_all_weight(self) -> None:
        # (1, 0) has inner product >= 1 with both others, so it is the closest point of the hull to 0.
        weights = min_norm_weights(gram_of((3.0, 1.0), (1.0, 0.0), (3.0, -1.0)))
        torch.testing.assert_close(weights, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))

    def test_interior_solution_beyond_the_pairwise_start(self) -> None:
        # Three unit vectors 120 degrees apart: the origin is their centroid, no edge contains it.
        third = math.sqrt(3.0) / 2.0
        gram = gram_of((1.0, 0.0), (-0.5, third), (-0.5, -third))
        torch.testing.assert_close(min_norm_weights(gram), torch.full((3,), 1.0 / 3.0, dtype=torch.float64))
        start = min_norm_weights(gram, max_iter=0)  # the cap is honoured: only the pairwise start
        assert_on_simplex(start)
        assert (start == 0).sum() == 1

    @pytest.mark.parametrize("height", [1.0, 1e-3])
    def test_flat_triangle_reaches_the_origin(self, height: float) -> None:
        # a (10, h) + b (-10, h) + c (0, -h) = 0 for (a, b, c) = (1/4, 1/4, 1/2), however small h is.
        gram = gram_of((10.0, height), (-10.0, height), (0.0, -height))
        weights = min_norm_weights(gram)
        torch.testing.assert_close(weights, torch.tensor([0.25, 0.25, 0.5], dtype=torch.float64))

    def test_single_task_and_zero_gradients(self) -> None:
        torch.testing.assert_close(min_norm_weights(gram_of((3.0, 4.0))), torch.ones(1, dtype=torch.float64))
        uniform = min_norm_weights(torch.zeros(3, 3))
        torch.testing.assert_close(uniform, torch.full((3,), 1.0 / 3.0, dtype=torch.float64))
        # One zero gradient: the min-norm point is 0, reached only with all weight on that task.
        weights = min_norm_weights(gram_of((1.0, 0.0), (0.0, 0.0), (0.0, 1.0)))
        torch.testing.assert_close(weights, torch.tensor([0.0, 1.0, 0.0], dtype=torch.float64))

    def test_rejects_bad_gram(self) -> None:
        with pytest.raises(ValueError, match=r"\(k, k\)"):
            min_norm_weights(torch.ones(2, 3))
        with pytest.raises(ValueError, match="NaN or inf"):
            min_norm_weights(torch.tensor([[1.0, math.nan], [math.nan, 1.0]]))

    @settings(max_examples=60, deadline=None)
    @given(
        st.tuples(st.integers(1, 5), st.integers(1, 6)).flatmap(
            lambda shape: arrays(np.float64, shape, elements=st.floats(-10.0, 10.0))
        )
    )
    def test_random_grams_give_optimal_simplex_weights(self, vectors: np.ndarray) -> None:
        gram = torch.as_tensor(vectors @ vectors.T)
        weights = min_norm_weights(gram)
        assert_on_simplex(weights)
        # Optimality (KKT) on the simplex: (G a)_t >= a^T G a for every task t.
        slack = gram @ weights - weights @ gram @ weights
        scale = max(gram.diagonal().max().item(), 1.0)
        assert slack.min().item() >= -1e-5 * scale


class TestNormalizeGradients:
    TASK = [torch.tensor([3.0]), torch.tensor([[4.0]])]  # L2 norm over both tensors = 5

    @pytest.mark.parametrize(
        ("mode", "expected"),
        [("loss+", (0.3, 0.4)), ("l2", (0.6, 0.8)), ("loss", (1.5, 2.0)), ("none", (3.0, 4.0))],
    )
    def test_modes(self, mode: str, expected: tuple[float, float]) -> None:
        (task,) = normalize_gradients([self.TASK], [2.0], mode=mode)  # type: ignore[arg-type]
        assert task[0].shape == (1,) and task[1].shape == (1, 1)
        assert task[0].item() == pytest.approx(expected[0])
        assert task[1].item() == pytest.approx(expected[1])

    def test_zero_gradient_stays_zero(self) -> None:
        (task,) = normalize_gradients([[torch.zeros(2), torch.zeros(1)]], [1.5], mode="loss+")
        assert all(torch.equal(g, torch.zeros_like(g)) for g in task)

    def test_rejects_unknown_mode_and_length_mismatch(self) -> None:
        with pytest.raises(ValueError, match="unknown normalization mode 'l1'"):
            normalize_gradients([self.TASK], [1.0], mode="l1")  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="2 losses"):
            normalize_gradients([self.TASK], [1.0, 2.0])

    def test_loss_plus_then_min_norm(self) -> None:
        # loss+ turns (2, 0) with L=1 into (1, 0) and (0, 5) with L=2 into (0, 0.5) -> weights 0.2, 0.8.
        grads = [[torch.tensor([2.0, 0.0])], [torch.tensor([0.0, 5.0])]]
        weights = min_norm_weights(gram_matrix(normalize_gradients(grads, [1.0, 2.0])))
        torch.testing.assert_close(weights, torch.tensor([0.2, 0.8], dtype=torch.float64))


class TestGramMatrix:
    def test_inner_products_summed_over_tensors(self) -> None:
        task_a = [torch.tensor([1.0, 2.0]), torch.tensor([[3.0]])]
        task_b = [torch.tensor([0.0, 1.0]), torch.tensor([[-1.0]])]
        gram = gram_matrix([task_a, task_b])
        expected = torch.tensor([[14.0, -1.0], [-1.0, 2.0]], dtype=torch.float64)
        torch.testing.assert_close(gram, expected)

    def test_rejects_mismatched_shapes_and_empty_input(self) -> None:
        with pytest.raises(ValueError, match="same tensor shapes"):
            gram_matrix([[torch.zeros(2)], [torch.zeros(3)]])
        with pytest.raises(ValueError, match="at least one task"):
            gram_matrix([])
