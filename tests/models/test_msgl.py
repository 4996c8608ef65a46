"""MSGL on a hand-built two-scale river.

Fine graph (5 reaches): 0 -> 2, 1 -> 2, 2 -> 3, 3 -> 4. Coarse graph (3 segments): c0 -> c2, c1 -> c2,
with c0 = {0}, c1 = {1}, c2 = {2, 3, 4} (outlet reach 4).
"""

import numpy as np
import pytest
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from msgl_core.graph import mixed_matrix, to_sparse, updown_adjacency
from msgl_core.models import MSGL, MSGLOutput
from msgl_core.models.msgl import _self_attend
from tests.graphs import INF
from tests.graphs import Y_UPDOWN as FINE_UPDOWN

COARSE_UPDOWN = np.array(
    [
        [0.0, INF, 4500.0],
        [INF, 0.0, 6500.0],
        [-4500.0, -6500.0, 0.0],
    ]
)
PARENT = np.array([0, 1, 2, 2, 2])
N_COARSE, N_FINE, DAYS, FEATURES, HIDDEN = 3, 5, 8, 3, 8


def graphs(sparse: bool = False) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Coarse adjacency, fine adjacency and M (columns = outlets of c0, c1, c2 = reaches 0, 1, 4)."""

    def convert(matrix: np.ndarray) -> torch.Tensor:
        return to_sparse(matrix) if sparse else torch.as_tensor(matrix, dtype=torch.float32)

    return (
        convert(updown_adjacency(COARSE_UPDOWN)),
        convert(updown_adjacency(FINE_UPDOWN)),
        convert(mixed_matrix(FINE_UPDOWN[:, [0, 1, 4]], PARENT)),
    )


def build(sparse: bool = False, seed: int = 0) -> MSGL:
    torch.manual_seed(seed)
    return MSGL(FEATURES, *graphs(sparse), hidden=HIDDEN, heads=2, dropout=0.1)


def inputs(seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return (
        torch.randn(N_COARSE, DAYS, FEATURES, generator=generator),
        torch.randn(N_FINE, DAYS, FEATURES, generator=generator),
    )


def test_output_shapes() -> None:
    model = build()
    x_coarse, x_fine = inputs()
    y_coarse, h_coarse = model.forward_coarse(x_coarse)
    assert y_coarse.shape == (N_COARSE, DAYS, 1)
    assert h_coarse.shape == (N_COARSE, DAYS, HIDDEN)
    out = model(x_coarse, x_fine)
    assert isinstance(out, MSGLOutput)
    assert out.y_coarse.shape == (N_COARSE, DAYS, 1)
    assert out.y_interp.shape == (N_FINE, DAYS, 1)
    assert out.y_fine.shape == (N_FINE, DAYS, 1)
    assert out.h_mixed.shape == (N_FINE, DAYS, HIDDEN)


def test_h_mixed_is_mixed_matrix_times_coarse_states() -> None:
    model = build()
    _, h_coarse = model.forward_coarse(inputs()[0])
    _, h_mixed = model.forward_interp(h_coarse)
    expected = torch.einsum("fc,cth->fth", model.mixed, h_coarse)
    torch.testing.assert_close(h_mixed, expected)


def test_task2_loss_does_not_reach_coarse_path() -> None:
    model = build()
    x_coarse, x_fine = inputs()
    _, h_coarse = model.forward_coarse(x_coarse)
    y_interp, h_mixed = model.forward_interp(h_coarse)
    y_fine = model.forward_fine(x_fine, h_mixed)
    shared = model.shared_parameters()
    task2 = torch.autograd.grad(
        y_fine.square().mean(), [h_coarse, *shared], allow_unused=True, retain_graph=True
    )
    assert task2[0] is None  # nothing flows back through H_m = M H_c
    assert all(g is not None and g.abs().sum() > 0 for g in task2[1:])  # but the fine pass trains theta_s
    task1 = torch.autograd.grad(y_interp.square().mean(), [h_coarse], allow_unused=True)
    assert task1[0] is not None and task1[0].abs().sum() > 0  # the task-1 path is connected


def test_forward_runs_the_shared_rgcn_once_per_scale() -> None:
    model = build()
    calls: list[int] = []
    model.rgcn.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[0]))
    model(*inputs())
    assert sorted(calls) == [N_COARSE, N_FINE]


def test_forward_equals_the_three_task_methods() -> None:
    model = build().eval()
    x_coarse, x_fine = inputs()
    out = model(x_coarse, x_fine)
    y_coarse, h_coarse = model.forward_coarse(x_coarse)
    y_interp, h_mixed = model.forward_interp(h_coarse)
    torch.testing.assert_close(out.y_coarse, y_coarse)
    torch.testing.assert_close(out.y_interp, y_interp)
    torch.testing.assert_close(out.y_fine, model.forward_fine(x_fine, h_mixed))


@pytest.mark.parametrize("train", [False, True])
def test_forward_without_task1_changes_no_other_output(train: bool) -> None:
    """``interp=False`` skips the task-1 head only; in training mode it draws the same random numbers."""
    model = build().train(train)
    x_coarse, x_fine = inputs()
    torch.manual_seed(7)
    full = model(x_coarse, x_fine)
    after_full = torch.get_rng_state()
    model = build().train(train)  # fresh BatchNorm statistics
    torch.manual_seed(7)
    lean = model(x_coarse, x_fine, interp=False)
    assert lean.y_interp is None
    assert torch.equal(torch.get_rng_state(), after_full)
    for name in ("y_coarse", "y_fine", "h_mixed"):
        torch.testing.assert_close(getattr(lean, name), getattr(full, name), rtol=0, atol=0)


def test_skipping_the_task1_head_never_runs_its_attention() -> None:
    model = build().train()
    calls: list[str] = []
    for name in ("local_attention", "interaction_attention", "local_norm", "output"):
        getattr(model.interp_head, name).register_forward_pre_hook(lambda module, args, name=name: calls.append(name))
    model(*inputs(), interp=False)
    assert calls == []
    model(*inputs())
    assert "local_norm" in calls and "output" in calls


@pytest.mark.parametrize(("heads", "block"), [(1, 64), (2, 64), (4, 64), (4, 2)])
def test_attention_matches_multihead_attention_forward(heads: int, block: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The blocked, zero-padded SDPA path equals ``nn.MultiheadAttention``'s own forward, values and
    gradients (block 2: the 5 reaches run as blocks of 2, 2 and 1)."""
    monkeypatch.setattr("msgl_core.models.msgl._ATTENTION_BLOCK", block)
    attention = torch.nn.MultiheadAttention(HIDDEN, heads, batch_first=True)
    with torch.no_grad():
        attention.in_proj_bias.uniform_(-0.5, 0.5)  # the module initialises biases to zero
        attention.out_proj.bias.uniform_(-0.5, 0.5)
    x = torch.randn(N_FINE, DAYS, HIDDEN, requires_grad=True)
    weight = torch.randn(N_FINE, DAYS, HIDDEN)
    expected = attention(x, x, x, need_weights=False)[0]
    got = _self_attend(attention, x)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)
    params = [x, *attention.parameters()]
    grads_expected = torch.autograd.grad((expected * weight).sum(), params)
    grads_got = torch.autograd.grad((got * weight).sum(), params)
    for g, e in zip(grads_got, grads_expected):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)
    attention.eval()  # the module's inference fast path
    with torch.no_grad():
        torch.testing.assert_close(_self_attend(attention, x), attention(x, x, x, need_weights=False)[0],
                                   atol=1e-6, rtol=1e-5)


def test_attention_gradients_with_the_math_kernel_over_head_width_days() -> None:
    """The fallback kernel saves (nodes, heads, time, time) weights; at 16 days they have the shape of
    the padded inputs and must not lose columns."""
    attention = torch.nn.MultiheadAttention(HIDDEN, 2, batch_first=True)
    x = torch.randn(N_FINE, 16, HIDDEN, requires_grad=True)
    weight = torch.randn(N_FINE, 16, HIDDEN)
    params = [x, *attention.parameters()]
    expected = torch.autograd.grad((attention(x, x, x, need_weights=False)[0] * weight).sum(), params)
    with sdpa_kernel(SDPBackend.MATH):
        got = torch.autograd.grad((_self_attend(attention, x) * weight).sum(), params)
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, atol=1e-5, rtol=1e-5)
    attention.eval()
    with torch.no_grad():
        torch.testing.assert_close(_self_attend(attention, x), attention(x, x, x, need_weights=False)[0],
                                   atol=1e-6, rtol=1e-5)


def test_sparse_graphs_match_dense_graphs() -> None:
    dense, sparse = build(sparse=False).eval(), build(sparse=True).eval()
    out_dense, out_sparse = dense(*inputs()), sparse(*inputs())
    for name in ("y_coarse", "y_interp", "y_fine", "h_mixed"):
        torch.testing.assert_close(getattr(out_sparse, name), getattr(out_dense, name), atol=1e-5, rtol=1e-5)


def test_interpolation_attends_over_time_within_each_reach() -> None:
    model = build().eval()  # eval: BatchNorm uses running statistics, so reaches are independent
    h_mixed = torch.randn(N_FINE, DAYS, HIDDEN)
    perturbed = h_mixed.clone()
    perturbed[0, -1] += 1.0  # last day of reach 0
    base, changed = model.interp_head(h_mixed), model.interp_head(perturbed)
    torch.testing.assert_close(changed[1:], base[1:], rtol=0, atol=0)
    assert (changed[0, 0] - base[0, 0]).abs() > 0  # non-causal: the first day sees the last one


def test_heads_follow_the_spec_equations() -> None:
    model = build().eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so every normalisation matters
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.running_mean.uniform_(-1.0, 1.0)
                module.running_var.uniform_(0.5, 2.0)
    h_mixed, h_fine = torch.randn(N_FINE, DAYS, HIDDEN), torch.randn(N_FINE, DAYS, HIDDEN)

    def bn(norm: torch.nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
        return (x - norm.running_mean) / torch.sqrt(norm.running_var + norm.eps) * norm.weight + norm.bias

    def mha(attention: torch.nn.MultiheadAttention, x: torch.Tensor) -> torch.Tensor:
        """Multi-head self-attention over days, written out per reach."""
        heads = attention.num_heads
        q, k, v = (x @ attention.in_proj_weight.T + attention.in_proj_bias).chunk(3, dim=-1)
        q, k, v = (t.reshape(N_FINE, DAYS, heads, -1).transpose(1, 2) for t in (q, k, v))
        scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5  # (reaches, heads, days, days)
        mixed = (scores.softmax(dim=-1) @ v).transpose(1, 2).reshape(N_FINE, DAYS, HIDDEN)
        return attention.out_proj(mixed)

    head = model.interp_head
    local = bn(head.local_norm, h_mixed + mha(head.local_attention, h_mixed))
    interaction = bn(head.interaction_norm, h_mixed + mha(head.interaction_attention, h_mixed))
    expected_interp = head.output(bn(head.output_norm, local + interaction))
    torch.testing.assert_close(head(h_mixed), expected_interp, atol=1e-5, rtol=1e-5)

    fusion = model.fine_head
    z = torch.cat([h_mixed, h_fine], dim=-1)
    u = torch.nn.functional.gelu(fusion.hidden_layer(bn(fusion.norm, z)))
    expected_fine = fusion.output(u + fusion.residual(z))
    torch.testing.assert_close(fusion(h_mixed, h_fine), expected_fine, atol=1e-5, rtol=1e-5)


def test_graphs_are_non_persistent_buffers() -> None:
    model = build()
    assert {"adjacency_coarse", "adjacency_fine", "mixed"} <= set(dict(model.named_buffers()))
    assert not any(key.startswith(("adjacency", "mixed")) for key in model.state_dict())
    clone = build(seed=5)
    clone.load_state_dict(model.state_dict())
    model.eval()
    clone.eval()
    torch.testing.assert_close(clone(*inputs()).y_fine, model(*inputs()).y_fine)


def test_shared_parameters_are_the_rgcn_cell_only() -> None:
    model = build()
    shared = model.shared_parameters()
    assert len(shared) == 5
    assert {id(p) for p in shared} == {id(p) for p in model.rgcn.parameters()}
    heads = (model.coarse_head, model.interp_head, model.fine_head)
    head_ids = {id(p) for head in heads for p in head.parameters()}
    assert head_ids.isdisjoint(id(p) for p in shared)


def test_rejects_mismatched_graphs_and_inputs() -> None:
    coarse, fine, mixed = graphs()
    with pytest.raises(ValueError, match="mixed must be"):
        MSGL(FEATURES, coarse, fine, mixed.T, hidden=HIDDEN, heads=2)
    with pytest.raises(ValueError, match="adjacency_fine must be square"):
        MSGL(FEATURES, coarse, fine[:, :3], mixed, hidden=HIDDEN, heads=2)
    model = build()
    x_coarse, x_fine = inputs()
    with pytest.raises(ValueError, match="same days"):
        model(x_coarse, x_fine[:, :-1])
    with pytest.raises(ValueError, match="h_mixed must have shape"):
        model.forward_fine(x_fine, torch.zeros(N_FINE, DAYS, HIDDEN + 1))
