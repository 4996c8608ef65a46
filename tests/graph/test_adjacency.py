"""Within-scale adjacency, cross-scale matrix and sparse products on a hand-built Y-shaped river.

Fine network (reach -> downstream reach, channel distance in metres)::

    0 --1000--> 2 --2000--> 3 --1500--> 4
    1 --3000--> 2

Coarse segments: c0 = {0} (outlet 0), c1 = {1} (outlet 1), c2 = {2, 3, 4} (outlet 4).
"""

import math

import numpy as np
import pytest
import torch

from msgl_core.graph import matmul_operator, mixed_matrix, to_sparse, updown_adjacency
from tests.graphs import INF, Y_UPDOWN

# Columns 0, 1, 4 of Y_UPDOWN: distance from each reach to the outlet reach of c0, c1, c2.
Y_TO_OUTLETS = Y_UPDOWN[:, [0, 1, 4]]
Y_PARENT = np.array([0, 1, 2, 2, 2])


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


class TestUpdownAdjacency:
    def test_rows_sum_to_one(self) -> None:
        adjacency = updown_adjacency(Y_UPDOWN)
        np.testing.assert_allclose(adjacency.sum(axis=1), np.ones(5), atol=1e-12)

    def test_self_loops_weigh_one_before_normalisation(self) -> None:
        adjacency = updown_adjacency(Y_UPDOWN)
        off_diagonal = adjacency - np.diag(np.diag(adjacency))
        # A = D^-1 (W + I): the diagonal is 1 / row sum of (W + I), i.e. 1 - sum of the off-diagonal part.
        np.testing.assert_allclose(np.diag(adjacency), 1.0 - off_diagonal.sum(axis=1), atol=1e-12)
        assert (np.diag(adjacency) > 0).all()

    def test_zero_exactly_where_unconnected(self) -> None:
        adjacency = updown_adjacency(Y_UPDOWN)
        assert adjacency[0, 1] == 0.0 and adjacency[1, 0] == 0.0
        connected = np.isfinite(Y_UPDOWN)
        assert (adjacency[connected] > 0).all()

    def test_weight_grows_with_upstream_distance(self) -> None:
        adjacency = updown_adjacency(Y_UPDOWN)
        # Row 4: every other reach is upstream, at 6500 (1) > 4500 (0) > 3500 (2) > 1500 (3) metres.
        assert adjacency[4, 1] > adjacency[4, 0] > adjacency[4, 2] > adjacency[4, 3]
        # Row 0: every connected reach is downstream, at 1000 (2) < 3000 (3) < 4500 (4) metres.
        assert adjacency[0, 2] > adjacency[0, 3] > adjacency[0, 4]
        # Row 3: the upstream neighbour (2000 m) outweighs the nearer downstream one (1500 m).
        assert adjacency[3, 2] > adjacency[3, 4]

    def test_two_node_values_by_hand(self) -> None:
        # S = [[0, -10], [10, 0]]: non-zeros -10 and 10 have mean 0 and population std 10 -> z = -1, +1.
        adjacency = updown_adjacency(np.array([[0.0, 10.0], [-10.0, 0.0]]))
        down, up = sigmoid(-1.0), sigmoid(1.0)
        expected = np.array([[1.0, down], [up, 1.0]]) / np.array([[1.0 + down], [1.0 + up]])
        np.testing.assert_allclose(adjacency, expected, rtol=1e-8)

    def test_no_connections_gives_identity(self) -> None:
        updown = np.full((3, 3), INF)
        np.fill_diagonal(updown, 0.0)
        np.testing.assert_array_equal(updown_adjacency(updown), np.eye(3))

    @pytest.mark.parametrize("bad", [np.zeros((2, 3)), np.zeros(4), np.zeros((2, 2, 2))])
    def test_rejects_non_square(self, bad: np.ndarray) -> None:
        with pytest.raises(ValueError, match="square"):
            updown_adjacency(bad)

    def test_rejects_nan(self) -> None:
        updown = Y_UPDOWN.copy()
        updown[0, 1] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            updown_adjacency(updown)


class TestMixedMatrix:
    def test_shape_and_rows_sum_to_one(self) -> None:
        mixed = mixed_matrix(Y_TO_OUTLETS, Y_PARENT)
        assert mixed.shape == (5, 3)
        np.testing.assert_allclose(mixed.sum(axis=1), np.ones(5), atol=1e-12)

    def test_zero_where_unconnected_and_own_outlet_weighted(self) -> None:
        mixed = mixed_matrix(Y_TO_OUTLETS, Y_PARENT)
        assert mixed[0, 1] == 0.0 and mixed[1, 0] == 0.0
        # Distance 0 to the reach's own parent outlet still counts as connected (official quirk a fixed).
        assert mixed[0, 0] > 0 and mixed[1, 1] > 0 and mixed[4, 2] > 0

    def test_weight_grows_with_upstream_distance(self) -> None:
        mixed = mixed_matrix(Y_TO_OUTLETS, Y_PARENT)
        # Reach 2: outlet of c1 is 3000 m upstream, outlet of c0 1000 m upstream, outlet of c2 downstream.
        assert mixed[2, 1] > mixed[2, 0] > mixed[2, 2]

    def test_values_by_hand(self) -> None:
        # S = [-10, 10] -> z = [-1, 1] -> W = [sigmoid(-1), sigmoid(1)], which already sums to 1.
        mixed = mixed_matrix(np.array([[10.0, -10.0]]), np.array([0]))
        np.testing.assert_allclose(mixed, [[sigmoid(-1.0), sigmoid(1.0)]], rtol=1e-8)

    def test_row_without_connection_goes_to_parent(self) -> None:
        distances = np.vstack([Y_TO_OUTLETS, np.full((1, 3), INF)])
        mixed = mixed_matrix(distances, np.append(Y_PARENT, 1))
        np.testing.assert_array_equal(mixed[5], [0.0, 1.0, 0.0])
        assert np.isfinite(mixed).all()

    def test_rejects_parent_of_wrong_length(self) -> None:
        with pytest.raises(ValueError, match="parent must have shape"):
            mixed_matrix(Y_TO_OUTLETS, Y_PARENT[:4])

    def test_rejects_parent_out_of_range(self) -> None:
        with pytest.raises(ValueError, match="parent indices"):
            mixed_matrix(Y_TO_OUTLETS, np.array([0, 1, 2, 2, 3]))

    def test_rejects_float_parent(self) -> None:
        with pytest.raises(ValueError, match="integer"):
            mixed_matrix(Y_TO_OUTLETS, Y_PARENT.astype(float))

    def test_rejects_non_matrix_and_nan(self) -> None:
        with pytest.raises(ValueError, match="fine, coarse"):
            mixed_matrix(Y_TO_OUTLETS[0], Y_PARENT)
        distances = Y_TO_OUTLETS.copy()
        distances[2, 2] = np.nan
        with pytest.raises(ValueError, match="NaN"):
            mixed_matrix(distances, Y_PARENT)


class TestSparse:
    def test_to_sparse_drops_zeros_and_round_trips(self) -> None:
        adjacency = updown_adjacency(Y_UPDOWN)
        sparse = to_sparse(adjacency)
        assert sparse.layout == torch.sparse_csr
        assert sparse.dtype == torch.float32
        assert sparse._nnz() == int((adjacency != 0).sum()) == 23
        np.testing.assert_allclose(sparse.to_dense().numpy(), adjacency, rtol=1e-6)

    def test_to_sparse_rejects_non_matrix(self) -> None:
        with pytest.raises(ValueError, match="2-D"):
            to_sparse(np.zeros(3))

    @pytest.mark.parametrize("layout", ["csr", "coo", "dense"])
    def test_matmul_operator_matches_dense_product_and_gradient(self, layout: str) -> None:
        dense = torch.as_tensor(mixed_matrix(Y_TO_OUTLETS, Y_PARENT))
        layouts = {"csr": to_sparse(dense.numpy(), torch.float64), "coo": dense.to_sparse(), "dense": dense}
        matrix = layouts[layout]
        x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
        weight = torch.randn(5, 4, dtype=torch.float64)
        out = matmul_operator(matrix)(x)
        torch.testing.assert_close(out, dense @ x)
        (grad,) = torch.autograd.grad((out * weight).sum(), x)
        torch.testing.assert_close(grad, dense.T @ weight)

    def test_matmul_operator_keeps_gradient_of_trainable_sparse_matrix(self) -> None:
        dense = torch.tensor([[1.0, 0.0, 2.0], [0.0, 3.0, 0.0]], dtype=torch.float64)
        matrix = dense.to_sparse().requires_grad_()
        x = torch.randn(3, 2, dtype=torch.float64)
        matmul_operator(matrix)(x).sum().backward()
        assert matrix.grad is not None
        # d sum(A x) / dA_ij = sum_k x_jk, on the stored (non-zero) entries only.
        expected = x.sum(dim=1).expand(2, 3) * (dense != 0)
        torch.testing.assert_close(matrix.grad.to_dense(), expected)
