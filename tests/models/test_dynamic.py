"""knn_edges, DynBlock, LevelReadout and TemporalGLU on a hand-built 12-reach river tree with positions on a plane."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
import torch_geometric.typing
from torch_geometric.nn import DynamicEdgeConv, knn_graph

from msgl_core.graph import RiverEdges, river_edges
from msgl_core.graph.river import FROM_DOWNSTREAM, FROM_UPSTREAM, KNN
from msgl_core.models.layers_dynamic import DynBlock, LevelReadout, knn_edges
from msgl_core.models.temporal_glu import TemporalGLU

#: 12 reaches: two sub-trees joining at 9, then 9 -> 10 -> 11 (outlet).
TO_INDEX = np.array([2, 2, 5, 4, 5, 9, 7, 8, 9, 10, 11, -1])
NODES, DAYS, HIDDEN = 12, 6, 4


def tree() -> RiverEdges:
    return river_edges(TO_INDEX, 1000.0 * (1.0 + np.arange(NODES) % 3))


def plane_positions() -> torch.Tensor:
    """(12, 2) km, a 4 x 3 grid with 2 km spacing, slightly jittered so no two distances tie."""
    grid = torch.stack(torch.meshgrid(torch.arange(4.0), torch.arange(3.0), indexing="ij"), -1).reshape(-1, 2)
    return 2.0 * grid + 0.01 * torch.arange(NODES)[:, None] ** 1.5 * torch.tensor([1.0, -0.7])


def reference_knn(features: np.ndarray, k: int, exclude: set[tuple[int, int]]) -> list[tuple[int, int]]:
    """Brute force: for each i, the k_eff = min(k, N-1) allowed j sorted by (squared distance, j); [(j, i)]."""
    nodes = len(features)
    k_eff = min(k, nodes - 1)
    edges = []
    for i in range(nodes):
        allowed = [j for j in range(nodes) if j != i and (i, j) not in exclude]
        square = [float(((features[i] - features[j]) ** 2).sum()) for j in allowed]
        ranked = sorted(zip(square, allowed, strict=True))[:k_eff]
        edges += [(j, i) for _, j in ranked]
    return edges


def as_pairs(edge_index: torch.Tensor) -> list[tuple[int, int]]:
    return [(int(s), int(t)) for s, t in edge_index.T]


class TestKnnEdges:
    @pytest.mark.parametrize("k", [1, 3, 8, 11, 30])
    @pytest.mark.parametrize("exclude_river", [False, True])
    def test_equals_brute_force(self, k: int, exclude_river: bool) -> None:
        features = torch.randn(NODES, 5, dtype=torch.float64)
        river = tree().edge_index
        exclude = {(int(t), int(s)) for s, t in river.T} if exclude_river else set()
        edges = knn_edges(features, k, river if exclude_river else None)
        assert as_pairs(edges) == reference_knn(features.numpy(), k, exclude)

    def test_ties_are_broken_by_index(self) -> None:
        features = torch.tensor([[0.0], [1.0], [1.0], [2.0], [0.0], [3.0], [-1.0]])  # many equal distances
        for k in (1, 2, 3, 6):
            assert as_pairs(knn_edges(features, k)) == reference_knn(features.numpy(), k, set())
        # Node 0 sees 4 at distance 0, then 1, 2 and 6 at distance 1: the smaller indices come first.
        first = knn_edges(features, 3)
        assert first[0, first[1] == 0].tolist() == [4, 1, 2]

    def test_in_degree_self_loops_and_river_pairs(self) -> None:
        river = tree().edge_index
        edges = knn_edges(torch.randn(NODES, 3), 4, river)
        assert (torch.bincount(edges[1], minlength=NODES) == 4).all()  # every reach has >= 4 non-river others
        assert not (edges[0] == edges[1]).any()
        assert not set(as_pairs(edges)) & set(as_pairs(river))

    def test_k_at_least_nodes_gives_every_other_node(self) -> None:
        edges = knn_edges(torch.randn(NODES, 3), NODES + 5)
        assert (torch.bincount(edges[1], minlength=NODES) == NODES - 1).all()
        assert knn_edges(torch.randn(1, 3), 8).shape == (2, 0)  # a single node has no neighbour

    def test_a_node_with_fewer_candidates_gets_all_of_them(self) -> None:
        exclude = torch.tensor([[1, 2], [0, 0]])  # 1 -> 0 and 2 -> 0 excluded: node 0 keeps only 3
        edges = knn_edges(torch.randn(4, 2), 3, exclude)
        assert edges[0, edges[1] == 0].tolist() == [3]
        assert (torch.bincount(edges[1], minlength=4)[1:] == 3).all()

    def test_indices_are_not_differentiable(self) -> None:
        features = torch.randn(NODES, 3, requires_grad=True)
        edges = knn_edges(features * 2.0, 3)
        assert edges.dtype == torch.int64 and not edges.requires_grad and edges.grad_fn is None

    def test_rejects_bad_input(self) -> None:
        with pytest.raises(ValueError, match="features must be"):
            knn_edges(torch.randn(3), 2)
        with pytest.raises(ValueError, match="k must be"):
            knn_edges(torch.randn(3, 2), 0)

    def test_matches_pyg_or_pyg_cannot_search(self) -> None:
        """Where pyg-lib is installed the neighbour sets equal ``knn_graph``'s; without it PyG's search raises,
        which is why the plain-torch search is the one used."""
        features = torch.randn(NODES, 3)
        if torch_geometric.typing.WITH_KNN:
            expected = knn_graph(features, 3, loop=False, flow="source_to_target")
            assert set(as_pairs(knn_edges(features, 3))) == set(as_pairs(expected))
        else:
            with pytest.raises(ImportError, match="pyg-lib"):
                DynamicEdgeConv(torch.nn.Linear(6, 2), k=3)
            with pytest.raises(ImportError, match="pyg-lib"):
                knn_graph(features, 3)


def block(edges: str = "union", temporal_kernel: int = 1, seed: int = 0) -> DynBlock:
    """A block in float64 and evaluation mode (no dropout) with every parameter random."""
    torch.manual_seed(seed)
    layer = DynBlock(HIDDEN, k=3, edges=edges, temporal_kernel=temporal_kernel).double().eval()
    with torch.no_grad():
        for parameter in layer.parameters():
            if parameter.ndim:
                parameter.normal_(0.0, 0.5)
    return layer


def states() -> torch.Tensor:
    return torch.randn(NODES, DAYS, HIDDEN, dtype=torch.float64)


class TestDynBlock:
    def test_shape_and_no_warning(self) -> None:
        layer = block()
        h = states().requires_grad_()
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # e.g. torch's "Sparse invariant checks are implicitly disabled"
            out = layer(h, tree(), plane_positions().double())
            out.sum().backward()
        assert out.shape == (NODES, DAYS, HIDDEN)

    def test_relation_edges_and_weights(self) -> None:
        layer, river, positions = block(), tree(), plane_positions().double()
        x = layer.norm(states())
        for relation in (FROM_UPSTREAM, FROM_DOWNSTREAM):
            edge_index, weight = layer.relation_edges(relation, x, river, positions)
            assert torch.equal(edge_index, river.edge_index[:, river.edge_type == relation])  # every river edge, typed
            sums = torch.zeros(NODES, dtype=weight.dtype).index_add_(0, edge_index[1], weight)
            torch.testing.assert_close(sums[torch.bincount(edge_index[1], minlength=NODES) > 0],
                                       torch.ones(int((torch.bincount(edge_index[1], minlength=NODES) > 0).sum()),
                                                  dtype=weight.dtype))
        edge_index, weight = layer.relation_edges(KNN, x, river, positions)
        assert (weight >= 0).all() and (torch.bincount(edge_index[1], minlength=NODES) == 3).all()
        torch.testing.assert_close(torch.zeros(NODES, dtype=weight.dtype).index_add_(0, edge_index[1], weight),
                                   torch.ones(NODES, dtype=weight.dtype))
        assert not set(as_pairs(edge_index)) & set(as_pairs(river.edge_index))  # kNN adds links the river lacks

    def test_river_weights_prefer_the_shorter_channel(self) -> None:
        layer, river = block("river"), tree()
        edge_index, weight = layer.relation_edges(FROM_UPSTREAM, layer.norm(states()), river, plane_positions().double())
        into_two = edge_index[1] == 2  # 0 (1 km long) and 1 (2 km) flow into 2 (3 km): 2 and 2.5 km between midpoints
        expected = torch.softmax(-torch.tensor([2.0, 2.5], dtype=torch.float64) / 5.0, 0)  # l_c starts at 5 km
        torch.testing.assert_close(weight[into_two], expected)

    @pytest.mark.parametrize("edges", ["union", "knn", "river"])
    def test_permutation_equivariance(self, edges: str) -> None:
        layer, river, positions, h = block(edges), tree(), plane_positions().double(), states()
        order = torch.randperm(NODES)
        out = layer(h, river, positions)
        permuted = layer(h[order], river.permuted(order), positions[order])
        torch.testing.assert_close(permuted, out[order])

    def test_river_edges_only_ignore_the_feature_and_length_scales(self) -> None:
        layer, river, positions, h = block("river"), tree(), plane_positions().double(), states()
        out = layer(h, river, positions)
        with torch.no_grad():
            layer.log_temperature.add_(1.3)
            layer.log_length_km.add_(-0.8)
        assert torch.equal(layer(h, river, positions), out)

    def test_river_block_equals_the_static_formula(self) -> None:
        """With river edges only, m = W_self x + b + sum_r A_r x W_r with fixed A_r: a static typed stack."""
        layer, river, h = block("river"), tree(), states()
        x = layer.norm(h)
        messages = layer.self_weight(x)
        for relation, weight in zip((FROM_UPSTREAM, FROM_DOWNSTREAM), layer.relation_weights, strict=True):
            mask = river.edge_type == relation
            source, target = river.edge_index[:, mask]
            logits = -river.channel_km[mask].double() / 5.0
            dense = torch.zeros(NODES, NODES, dtype=torch.float64)
            for t in target.unique():
                rows = target == t
                dense[t, source[rows]] = torch.softmax(logits[rows], 0)
            messages = messages + torch.einsum("ij,jtc->itc", dense, x) @ weight.weight.T
        expected = h + torch.nn.functional.silu(messages)
        torch.testing.assert_close(layer(h, river, plane_positions().double()), expected)

    def test_gradients_reach_the_scales_and_the_embeddings(self) -> None:
        layer = block()
        h = states().requires_grad_()
        layer(h, tree(), plane_positions().double()).pow(2).sum().backward()
        for parameter in (layer.log_temperature, layer.log_length_km, layer.log_channel_length_km):
            assert parameter.grad is not None and parameter.grad.abs() > 0
        assert h.grad is not None and h.grad.abs().sum() > 0

    def test_causal_in_time_with_river_edges(self) -> None:
        layer, river, positions, h = block("river", temporal_kernel=3), tree(), plane_positions().double(), states()
        day = 2
        changed = h.clone()
        changed[:, day + 1 :] += 1.0
        out, out_changed = layer(h, river, positions), layer(changed, river, positions)
        assert torch.equal(out_changed[:, : day + 1], out[:, : day + 1])
        assert (out_changed[:, day + 1 :] != out[:, day + 1 :]).any()

    def test_rejects_bad_input(self) -> None:
        with pytest.raises(ValueError, match="edges must be one of"):
            DynBlock(HIDDEN, edges="all")
        layer = block()
        with pytest.raises(ValueError, match="h must be"):
            layer(torch.randn(NODES, DAYS, HIDDEN + 1, dtype=torch.float64), tree(), plane_positions().double())
        with pytest.raises(ValueError, match="must match"):
            layer(states()[:5], tree(), plane_positions()[:5].double())


class TestLevelReadout:
    def test_cat_concatenates_every_level(self) -> None:
        levels = [torch.randn(NODES, DAYS, HIDDEN) for _ in range(4)]
        readout = LevelReadout(HIDDEN, 4, "cat")
        assert readout.jumping is not None and readout.jumping(levels).shape == (NODES, DAYS, 4 * HIDDEN)
        assert readout.projection is not None and readout.projection.in_features == 4 * HIDDEN
        assert readout(levels).shape == (NODES, DAYS, HIDDEN)

    def test_max_and_none(self) -> None:
        levels = [torch.randn(NODES, DAYS, HIDDEN) for _ in range(3)]
        torch.testing.assert_close(LevelReadout(HIDDEN, 3, "max")(levels), torch.stack(levels).amax(0))
        assert LevelReadout(HIDDEN, 3, "none")(levels) is levels[-1]
        assert not list(LevelReadout(HIDDEN, 3, "none").parameters())

    def test_rejects_bad_input(self) -> None:
        with pytest.raises(ValueError, match="mode must be"):
            LevelReadout(HIDDEN, 3, "lstm")
        with pytest.raises(ValueError, match="expected 3 levels"):
            LevelReadout(HIDDEN, 3)([torch.randn(NODES, DAYS, HIDDEN)])


class TestTemporalGLU:
    @pytest.mark.parametrize(("kernel", "dilation"), [(1, 1), (3, 1), (2, 4)])
    def test_equals_the_gated_causal_convolution(self, kernel: int, dilation: int) -> None:
        glu = TemporalGLU(3, 5, kernel, dilation).double()
        z = torch.randn(NODES, 20, 3, dtype=torch.float64)
        span = dilation * (kernel - 1)
        padded = torch.cat([torch.zeros(NODES, span, 3, dtype=torch.float64), z], dim=1)
        weight = glu.conv.weight  # (10, 3, kernel); the last tap is the current day
        conv = sum(padded[:, span - dilation * (kernel - 1 - tap) :][:, :20] @ weight[:, :, tap].T
                   for tap in range(kernel)) + glu.conv.bias
        values, gates = conv.chunk(2, dim=-1)
        residual = torch.cat([z, torch.zeros(NODES, 20, 2, dtype=torch.float64)], dim=-1)
        torch.testing.assert_close(glu(z), (values + residual) * torch.sigmoid(gates))

    def test_projects_a_wider_input_and_rejects_bad_sizes(self) -> None:
        glu = TemporalGLU(6, 2, 3)
        assert glu.align is not None and glu(torch.randn(NODES, 7, 6)).shape == (NODES, 7, 2)
        with pytest.raises(ValueError, match="kernel and dilation"):
            TemporalGLU(2, 2, 0)
