"""MSGL: multi-scale graph learning for anti-sparse downscaling of stream temperature.

Reference: Y. Fan, R. Yu, J. R. Barclay, A. P. Appling, Y. Sun, Y. Xie, X. Jia, "Multi-Scale Graph
Learning for Anti-Sparse Downscaling", AAAI-25, pp. 27969-27977, doi:10.1609/aaai.v39i27.35014,
arXiv:2505.01948 (official ``RGCN_Multi``, ``Task1Module`` and ``Task2Module``; docs/methods.md §5.2). The unused
``global_attention`` modules of the official code are omitted.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional

from msgl_core.graph import matmul_operator
from msgl_core.models.rgcn_layer import RGCNLayer


@dataclass(frozen=True)
class MSGLOutput:
    """Predictions of the three MSGL tasks for one window.

    Attributes:
        y_coarse: (segments, time, 1), task 0, standardised coarse-scale water temperature.
        y_interp: (reaches, time, 1), task 1, fine temperature from coarse states only; None when the
            task-1 head was not run (``MSGL.forward(..., interp=False)``).
        y_fine: (reaches, time, 1), task 2, the model's prediction (standardised).
        h_mixed: (reaches, time, hidden), coarse hidden states interpolated to the fine reaches.
    """

    y_coarse: Tensor
    y_interp: Tensor | None
    y_fine: Tensor
    h_mixed: Tensor


class MSGL(nn.Module):
    r"""Multi-scale graph model: one RGCN shared by the coarse and the fine river graph, three tasks.

    * Task 0 (coarse): :math:`H_c = \mathrm{RGCN}(X_c, A_c)`, :math:`\hat y_c = \mathrm{Linear}(H_c)`.
    * Task 1 (interpolation): :math:`H_m = M H_c`, :math:`\hat y^{(1)} = \mathrm{InterpolationHead}(H_m)`.
    * Task 2 (fine, the prediction): :math:`H_f = \mathrm{RGCN}(X_f, A_f)`,
      :math:`\hat y^{(2)} = \mathrm{FusionHead}(\mathrm{stopgrad}(H_m), H_f)`.

    The graph matrices are non-persistent buffers (they move with ``.to(device)`` and are not part of
    the ``state_dict``). Sub-modules are built in the official order (shared cell, task 0, task 1,
    task 2) so that a seeded construction draws the same initial weights.

    Args:
        in_features: number of input features F per node and day, in the same semantic order at both
            scales (the RGCN weights are shared).
        adjacency_coarse: (segments, segments) row-stochastic coarse adjacency, dense or sparse.
        adjacency_fine: (reaches, reaches) row-stochastic fine adjacency, dense or sparse.
        mixed: (reaches, segments) row-stochastic cross-scale matrix M, dense or sparse.
        hidden: hidden size H.
        heads: attention heads of the task-1 head; must divide ``hidden``.
        dropout: dropout probability of the task-1 and task-2 heads.

    Shapes:
        x_coarse: (segments, time, in_features), standardised coarse inputs; time steps are days.
        x_fine: (reaches, time, in_features), standardised fine inputs for the same days.
        returns: :class:`MSGLOutput`.

    Task 1 is an auxiliary training task: predictions (task 2) and training windows without fine
    targets do not need it, and ``forward(..., interp=False)`` skips its head, the costliest part of
    the model (self-attention over all days of every reach).
    """

    adjacency_coarse: Tensor
    adjacency_fine: Tensor
    mixed: Tensor

    def __init__(
        self,
        in_features: int,
        adjacency_coarse: Tensor,
        adjacency_fine: Tensor,
        mixed: Tensor,
        hidden: int = 20,
        heads: int = 4,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        n_coarse, n_fine = adjacency_coarse.shape[0], adjacency_fine.shape[0]
        if tuple(adjacency_coarse.shape) != (n_coarse, n_coarse):
            raise ValueError(f"adjacency_coarse must be square, got {tuple(adjacency_coarse.shape)}")
        if tuple(adjacency_fine.shape) != (n_fine, n_fine):
            raise ValueError(f"adjacency_fine must be square, got {tuple(adjacency_fine.shape)}")
        if tuple(mixed.shape) != (n_fine, n_coarse):
            expected = (n_fine, n_coarse)
            raise ValueError(f"mixed must be (reaches, segments) = {expected}, got {tuple(mixed.shape)}")
        self.hidden = hidden
        self.register_buffer("adjacency_coarse", adjacency_coarse, persistent=False)
        self.register_buffer("adjacency_fine", adjacency_fine, persistent=False)
        self.register_buffer("mixed", mixed, persistent=False)
        self.rgcn = RGCNLayer(in_features, hidden)
        self.coarse_head = nn.Linear(hidden, 1)
        self.interp_head = InterpolationHead(hidden, heads, dropout)
        self.fine_head = FusionHead(hidden, dropout)

    def forward_coarse(self, x_coarse: Tensor) -> tuple[Tensor, Tensor]:
        """Task 0: run the shared RGCN on the coarse graph.

        Shapes:
            x_coarse: (segments, time, in_features).
            returns: y_coarse (segments, time, 1) and h_coarse (segments, time, hidden).
        """
        h_coarse = self.rgcn(x_coarse, self.adjacency_coarse)
        return self.coarse_head(h_coarse), h_coarse

    def forward_interp(self, h_coarse: Tensor) -> tuple[Tensor, Tensor]:
        """Task 1: interpolate coarse states to the reaches (``H_m = M H_c``) and predict from them.

        Shapes:
            h_coarse: (segments, time, hidden).
            returns: y_interp (reaches, time, 1) and h_mixed (reaches, time, hidden).
        """
        h_mixed = self.interpolate(h_coarse)
        return self.interp_head(h_mixed), h_mixed

    def interpolate(self, h_coarse: Tensor) -> Tensor:
        """Coarse states interpolated to the reaches, ``H_m = M H_c`` (no parameters, no head).

        Shapes:
            h_coarse: (segments, time, hidden).
            returns: h_mixed (reaches, time, hidden).
        """
        segments, steps, hidden = h_coarse.shape
        if segments != self.mixed.shape[1]:
            raise ValueError(f"h_coarse must have {self.mixed.shape[1]} segments, got {segments}")
        flat = matmul_operator(self.mixed)(h_coarse.reshape(segments, steps * hidden))
        return flat.reshape(self.mixed.shape[0], steps, hidden)

    def forward_fine(self, x_fine: Tensor, h_mixed: Tensor) -> Tensor:
        """Task 2: run the shared RGCN on the fine graph and fuse it with the detached ``h_mixed``.

        ``h_mixed`` is detached here, so the task-2 loss reaches the shared RGCN only through the fine
        pass, never the coarse path through M (docs/methods.md §5.2).

        Shapes:
            x_fine: (reaches, time, in_features).
            h_mixed: (reaches, time, hidden).
            returns: y_fine (reaches, time, 1).
        """
        expected = (*x_fine.shape[:2], self.hidden)
        if tuple(h_mixed.shape) != expected:
            raise ValueError(f"h_mixed must have shape {expected}, got {tuple(h_mixed.shape)}")
        return self.fine_head(h_mixed.detach(), self.fine_states(x_fine))

    def fine_states(self, x_fine: Tensor) -> Tensor:
        """The fine-branch states the task-2 head reads: here ``H_f``, the shared RGCN on the fine graph
        (:class:`~msgl_core.models.msgl_dyn.MSGLDyn` adds dynamic graph blocks on top).

        Shapes:
            x_fine: (reaches, time, in_features).
            returns: (reaches, time, hidden).
        """
        return self.rgcn(x_fine, self.adjacency_fine)

    def forward(self, x_coarse: Tensor, x_fine: Tensor, interp: bool = True) -> MSGLOutput:
        """The three tasks, running the shared RGCN once per scale; see the class docstring.

        With ``interp=False`` the task-1 head is not run and ``y_interp`` is None; the other outputs
        are unchanged. In training mode the skipped head still draws its dropout mask
        (:meth:`InterpolationHead.skip`), so the random stream, and with it every later dropout mask,
        is the same as with ``interp=True``. Only the task-1 head's BatchNorm running statistics then
        differ, and nothing uses them: task 1 is never evaluated (in training mode BatchNorm
        normalises with the batch's own statistics).

        Shapes:
            x_coarse: (segments, time, in_features); x_fine: (reaches, time, in_features), same days.
            returns: :class:`MSGLOutput`.
        """
        if x_coarse.ndim != 3 or x_fine.ndim != 3 or x_coarse.shape[1] != x_fine.shape[1]:
            raise ValueError(
                "x_coarse and x_fine must be (nodes, time, features) over the same days, got "
                f"{tuple(x_coarse.shape)} and {tuple(x_fine.shape)}"
            )
        y_coarse, h_coarse = self.forward_coarse(x_coarse)
        h_mixed = self.interpolate(h_coarse)
        if interp:
            y_interp = self.interp_head(h_mixed)
        else:
            y_interp = None
            self.interp_head.skip(h_mixed)
        y_fine = self.forward_fine(x_fine, h_mixed)
        return MSGLOutput(y_coarse=y_coarse, y_interp=y_interp, y_fine=y_fine, h_mixed=h_mixed)

    def shared_parameters(self) -> list[nn.Parameter]:
        """Parameters of the RGCN cell shared by both scales (the θ_s that MGDA balances)."""
        return list(self.rgcn.parameters())


class InterpolationHead(nn.Module):
    r"""Task-1 head: self-attention over days on the coarse states interpolated to the fine reaches.

    .. math::
        L &= \mathrm{BN}(H_m + \mathrm{MHA}_a(H_m)) \\
        C &= \mathrm{BN}(H_m + \mathrm{MHA}_b(H_m)) \\
        \hat y^{(1)} &= \mathrm{Linear}(\mathrm{Dropout}(\mathrm{BN}(L + C)))

    Both attentions are full (non-causal) self-attention over the days of each reach, batched over
    reaches; there is no attention across reaches. ``local_attention`` and ``interaction_attention`` are
    the official "local attention" and "CrossBatchInteraction" blocks, which have identical structure
    and separate weights. Each BatchNorm normalises over reaches x days. The attention itself has no
    dropout, as in the official code.

    The two ``nn.MultiheadAttention`` modules hold the weights (their ``state_dict`` layout), but the
    attention is computed by :func:`_self_attend`, which gives the same result (to float rounding)
    without materialising the (reaches, heads, time, time) attention weights.

    Args:
        hidden: hidden size H (the attention embedding size).
        heads: number of attention heads; must divide ``hidden``.
        dropout: dropout probability before the read-out.

    Shapes:
        h_mixed: (reaches, time, hidden), coarse hidden states interpolated to fine reaches.
        returns: (reaches, time, 1), standardised fine-scale water temperature.
    """

    def __init__(self, hidden: int = 20, heads: int = 4, dropout: float = 0.1) -> None:
        super().__init__()
        self.local_attention = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.local_norm = nn.BatchNorm1d(hidden)
        self.interaction_attention = nn.MultiheadAttention(hidden, heads, batch_first=True)
        self.interaction_norm = nn.BatchNorm1d(hidden)
        self.output_norm = nn.BatchNorm1d(hidden)
        self.dropout = nn.Dropout(dropout)
        self.output = nn.Linear(hidden, 1)

    def forward(self, h_mixed: Tensor) -> Tensor:
        """Predict fine temperatures from interpolated coarse states; see the class docstring."""
        local = _normalise_features(self.local_norm, h_mixed + _self_attend(self.local_attention, h_mixed))
        interaction = _normalise_features(
            self.interaction_norm, h_mixed + _self_attend(self.interaction_attention, h_mixed)
        )
        fused = self.dropout(_normalise_features(self.output_norm, local + interaction))
        return self.output(fused)

    def skip(self, h_mixed: Tensor) -> None:
        """Stand in for :meth:`forward` when its output is not needed: compute nothing, but draw the
        random numbers that ``forward(h_mixed)`` would draw (its dropout mask, in training mode).

        Runs the head's own dropout on a placeholder of the same shape, dtype and device, so the
        generator advances exactly as in :meth:`forward` whatever dropout's implementation. BatchNorm
        running statistics are not updated.

        Shapes:
            h_mixed: (reaches, time, hidden); only its shape, dtype and device are used.
        """
        if self.training:
            self.dropout(h_mixed.new_empty(h_mixed.shape))


class FusionHead(nn.Module):
    r"""Task-2 head: fuses the interpolated coarse states with the fine-graph states.

    With :math:`Z = [H_m \,\|\, H_f]`:

    .. math::
        u &= \mathrm{GELU}(\mathrm{Linear}_{2H \to H}(\mathrm{BN}_{2H}(Z))) \\
        \hat y^{(2)} &= \mathrm{Linear}_{H \to 1}(\mathrm{Dropout}(u) + \mathrm{Linear}_{2H \to H}(Z))

    The residual branch uses the un-normalised ``Z``. The head does not detach ``H_m``; the caller
    decides (``MSGL.forward_fine`` does).

    Args:
        hidden: hidden size H of each input.
        dropout: dropout probability on the GELU branch.

    Shapes:
        h_mixed: (reaches, time, hidden), interpolated coarse states.
        h_fine: (reaches, time, hidden), fine-graph RGCN states.
        returns: (reaches, time, 1), standardised fine-scale water temperature.
    """

    def __init__(self, hidden: int = 20, dropout: float = 0.1) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(2 * hidden)
        self.hidden_layer = nn.Linear(2 * hidden, hidden)
        self.dropout = nn.Dropout(dropout)
        self.residual = nn.Linear(2 * hidden, hidden)
        self.output = nn.Linear(hidden, 1)

    def forward(self, h_mixed: Tensor, h_fine: Tensor) -> Tensor:
        """Predict fine temperatures from both scales; see the class docstring for shapes."""
        fused = torch.cat([h_mixed, h_fine], dim=-1)
        hidden = functional.gelu(self.hidden_layer(_normalise_features(self.norm, fused)))
        return self.output(self.dropout(hidden) + self.residual(fused))


#: Head size the attention runs at: smaller heads are zero-padded to it. Zero columns change no
#: score and no output, and PyTorch's CPU flash-attention kernel is ~1.7x faster (forward and
#: backward) at head size 16 than at MSGL's 20 / 4 = 5 (AVX-512, torch 2.13).
_HEAD_WIDTH = 16
#: Nodes per attention block. Blocks bound the zero-padded temporaries (~18 MB each at 365 days and
#: 4 heads; 0.9 GB per attention when the whole DRB is padded at once): on the whole DRB the task-1
#: head ran 1.2x (forward) and 1.4x (backward) faster and a training step peaked 2.4 GB lower.
_ATTENTION_BLOCK = 64


def _self_attend(attention: nn.MultiheadAttention, x: Tensor) -> Tensor:
    """``attention(x, x, x, need_weights=False)[0]``: self-attention over the time axis of ``x``.

    Same weights and result as the module's own forward (to float rounding), but always through
    ``scaled_dot_product_attention`` (flash attention: no (nodes, heads, time, time) weights are
    materialised, which ``nn.MultiheadAttention``'s inference fast path does), in blocks of
    ``_ATTENTION_BLOCK`` nodes, with heads smaller than ``_HEAD_WIDTH`` zero-padded to it and the
    softmax scale kept at 1/sqrt(head size). Autograd keeps the attention's inputs and output
    without their zero columns (:func:`_saved_without_padding`). Assumes the module's defaults that
    MSGL uses: packed in-projection with bias, no attention dropout, no bias_k/bias_v, no zero-attention.

    Shapes:
        x: (nodes, time, embed), batch-first.
        returns: (nodes, time, embed).
    """
    nodes, steps, embed = x.shape
    heads = attention.num_heads
    size = embed // heads
    width = max(size, _HEAD_WIDTH)
    qkv = functional.linear(x, attention.in_proj_weight, attention.in_proj_bias).view(nodes, steps, 3 * heads, size)
    blocks = []
    for block in qkv.split(_ATTENTION_BLOCK):  # split, not slicing: one backward node, one gradient copy
        count = block.shape[0]
        padded = functional.pad(block, (0, width - size)).view(count, steps, 3, heads, width)
        query, key, value = padded.permute(2, 0, 3, 1, 4).unbind(0)  # (count, heads, steps, width)
        with _saved_without_padding((count, heads, steps, width), size):
            mixed = functional.scaled_dot_product_attention(query, key, value, scale=size**-0.5)
        blocks.append(mixed[..., :size].transpose(1, 2))  # (count, steps, heads, size)
    return attention.out_proj(torch.cat(blocks).reshape(nodes, steps, embed))


class _Unpadded:
    """A saved tensor stored without its zero padding: ``tensor`` is its first ``size`` columns."""

    def __init__(self, tensor: Tensor, width: int) -> None:
        self.tensor, self.width = tensor, width


def _saved_without_padding(shape: tuple[int, ...], size: int) -> torch.autograd.graph.saved_tensors_hooks:
    """Autograd hooks that save tensors of ``shape`` (zero beyond column ``size``) without the zeros.

    Attention's query, key and value are zero beyond ``size`` by construction, and so is its output
    (weighted sums of zero value columns), so dropping the columns when saving and padding them back
    for the backward pass is exact; it saves ``width / size`` times less memory (3.2x for MSGL).
    Nothing is dropped when the time axis is as long as ``width`` (a fallback attention kernel then
    saves (nodes, heads, time, time) weights of the same shape).
    """
    width = shape[-1]
    active = size < width != shape[-2]

    def pack(tensor: Tensor) -> Tensor | _Unpadded:
        if active and tuple(tensor.shape) == shape:
            return _Unpadded(tensor[..., :size].contiguous(), width)
        return tensor

    def unpack(saved: Tensor | _Unpadded) -> Tensor:
        if isinstance(saved, _Unpadded):
            return functional.pad(saved.tensor, (0, saved.width - saved.tensor.shape[-1]))
        return saved

    return torch.autograd.graph.saved_tensors_hooks(pack, unpack)


def _normalise_features(norm: nn.BatchNorm1d, x: Tensor) -> Tensor:
    """Apply ``BatchNorm1d`` over the last axis of ``x`` (nodes, time, features)."""
    return norm(x.transpose(1, 2)).transpose(1, 2)
