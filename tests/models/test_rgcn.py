"""RGCNLayer and the single-scale RGCN on a hand-built 5-reach Y-shaped river (0->2, 1->2, 2->3, 3->4)."""

import pytest
import torch

from msgl_core.graph import to_sparse, updown_adjacency
from msgl_core.models import RGCN, RGCNLayer
from tests.graphs import Y_UPDOWN

NODES, DAYS, FEATURES, HIDDEN = 5, 6, 3, 4


def dense_adjacency(dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.as_tensor(updown_adjacency(Y_UPDOWN), dtype=dtype)


def layer_with_random_biases(seed: int = 0) -> RGCNLayer:
    """A layer whose biases are non-zero too, so every parameter takes part in the output."""
    generator = torch.Generator().manual_seed(seed)
    layer = RGCNLayer(FEATURES, HIDDEN)
    with torch.no_grad():
        for parameter in layer.parameters():
            parameter.copy_(0.5 * torch.randn(parameter.shape, generator=generator))
    return layer


def reference_forward(layer: RGCNLayer, x: torch.Tensor, adjacency: torch.Tensor) -> torch.Tensor:
    """docs/methods.md §5.1 written step by step, without the fused products of RGCNLayer."""
    h = torch.zeros(x.shape[0], layer.hidden, dtype=x.dtype)
    c = torch.zeros_like(h)
    outputs = []
    for t in range(x.shape[1]):
        gates = x[:, t] @ layer.weight_ih + h @ layer.weight_hh + layer.bias
        i, f, g, o = gates.chunk(4, dim=1)
        q = torch.tanh(h @ layer.weight_q + layer.bias_q)
        c = torch.sigmoid(f) * (c + adjacency @ q) + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
        outputs.append(h)
    return torch.stack(outputs, dim=1)


class TestRGCNLayer:
    def test_output_shape(self) -> None:
        h = RGCNLayer(FEATURES, HIDDEN)(torch.randn(NODES, DAYS, FEATURES), dense_adjacency())
        assert h.shape == (NODES, DAYS, HIDDEN)

    def test_matches_step_by_step_equations(self) -> None:
        layer = layer_with_random_biases().double()
        x = torch.randn(NODES, DAYS, FEATURES, dtype=torch.float64)
        adjacency = dense_adjacency(torch.float64)
        torch.testing.assert_close(layer(x, adjacency), reference_forward(layer, x, adjacency))

    @pytest.mark.parametrize("layout", ["csr", "coo"])
    @pytest.mark.parametrize("dense_up_to", [0, NODES], ids=["sparse-product", "densified"])
    def test_sparse_and_dense_adjacency_agree_on_outputs_and_gradients(
        self, layout: str, dense_up_to: int, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """A sparse graph gives the dense graph's results, whether propagated sparse or made dense."""
        monkeypatch.setattr("msgl_core.models.rgcn_layer.DENSE_GRAPH_NODES", dense_up_to)
        layer = layer_with_random_biases()
        dense = dense_adjacency()
        sparse = to_sparse(dense.numpy()) if layout == "csr" else dense.to_sparse()
        x = torch.randn(NODES, DAYS, FEATURES)
        weight = torch.randn(NODES, DAYS, HIDDEN)
        results = []
        for adjacency in (dense, sparse):
            x_leaf = x.clone().requires_grad_()
            out = layer(x_leaf, adjacency)
            grads = torch.autograd.grad((out * weight).sum(), [x_leaf, *layer.parameters()])
            results.append((out, grads))
        (out_dense, grads_dense), (out_sparse, grads_sparse) = results
        torch.testing.assert_close(out_sparse, out_dense, atol=1e-5, rtol=1e-5)
        for grad_sparse, grad_dense in zip(grads_sparse, grads_dense, strict=True):
            assert grad_dense.abs().sum() > 0
            torch.testing.assert_close(grad_sparse, grad_dense, atol=1e-5, rtol=1e-5)

    def test_messages_follow_the_graph_and_time(self) -> None:
        layer = layer_with_random_biases()
        # Two components: {0, 1, 2} and {3, 4}.
        adjacency = torch.zeros(NODES, NODES)
        adjacency[:3, :3] = 1.0 / 3.0
        adjacency[3:, 3:] = 0.5
        x = torch.randn(NODES, DAYS, FEATURES)
        perturbed = x.clone()
        perturbed[0, 2] += 1.0  # node 0 on day 2
        base, changed = layer(x, adjacency), layer(perturbed, adjacency)
        torch.testing.assert_close(changed[3:], base[3:], rtol=0, atol=0)  # other component untouched
        torch.testing.assert_close(changed[:, :2], base[:, :2], rtol=0, atol=0)  # earlier days untouched
        assert (changed[1, 3:] - base[1, 3:]).abs().min() > 0  # reaches a neighbour the next days

    def test_initialisation(self) -> None:
        layer = RGCNLayer(FEATURES, HIDDEN)
        assert torch.count_nonzero(layer.bias) == 0 and torch.count_nonzero(layer.bias_q) == 0
        bound = (6.0 / (FEATURES + 4 * HIDDEN)) ** 0.5  # Xavier-uniform bound of W_ih
        assert layer.weight_ih.abs().max() <= bound and layer.weight_ih.std() > 0.2 * bound
        assert len(list(layer.parameters())) == 5

    def test_recurrent_dropout_only_in_training(self) -> None:
        layer = layer_with_random_biases()
        dropped = RGCNLayer(FEATURES, HIDDEN, recurrent_dropout=0.5)
        dropped.load_state_dict(layer.state_dict())
        x, adjacency = torch.randn(NODES, DAYS, FEATURES), dense_adjacency()
        torch.testing.assert_close(dropped.eval()(x, adjacency), layer(x, adjacency))
        assert not torch.allclose(dropped.train()(x, adjacency), layer(x, adjacency))

    def test_rejects_mismatched_shapes(self) -> None:
        layer = RGCNLayer(FEATURES, HIDDEN)
        with pytest.raises(ValueError, match="adjacency must be"):
            layer(torch.randn(4, DAYS, FEATURES), dense_adjacency())
        with pytest.raises(ValueError, match="x must be"):
            layer(torch.randn(NODES, DAYS, FEATURES + 1), dense_adjacency())


class TestRGCN:
    """The contract RGCN shares with the other fine-only models is in test_fine_baselines.py."""

    def test_equals_layer_plus_linear(self) -> None:
        adjacency = dense_adjacency()
        model = RGCN(FEATURES, adjacency, hidden=HIDDEN)
        x = torch.randn(NODES, DAYS, FEATURES)
        expected = model.rgcn(x, adjacency) @ model.output.weight.T + model.output.bias
        torch.testing.assert_close(model(x), expected)
