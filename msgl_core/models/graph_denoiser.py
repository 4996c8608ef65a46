"""Graph denoiser F_θ of the residual diffusion prior on the fine river graph.

The raw network inside the preconditioned denoiser D(x̂, σ; c) = c_skip x̂ + c_out F_θ(c_in x̂, c_noise, c)
(Karras et al., NeurIPS 2022, arXiv 2206.00364; the preconditioning is
:meth:`msgl_core.diffusion.schedule.VPSchedule.denoise`) of the probabilistic downscaling after Wan et al.,
"Debias Coarsely, Sample Conditionally", NeurIPS 2023, arXiv 2305.15618, whose prior is a U-Net on a grid.
On a river graph (docs/probabilistic.md §3.3):

1. ``h = Linear(1 + F_c → H)([x, c])`` per reach;
2. a noise embedding ``e ∈ R^H``: 16 log-spaced Fourier frequencies of c_noise (sin and cos, 32 numbers) and a
   2-layer SiLU MLP;
3. ``blocks`` residual blocks ``h = h + SiLU(FiLM_e(Conv(LayerNorm(h))))``, ``FiLM_e(u) = u (1 + a(e)) + b(e)``,
   where Conv is PyTorch Geometric's ``GraphConv`` (Morris et al., AAAI 2019) per relation (messages from the
   upstream and from the downstream neighbour, summed), and, with ``segment_pool``, ``h = h + W_seg R C'h``:
   the length-weighted segment mean broadcast back, so every reach sees its whole segment in one hop;
4. ``F = Linear(H → 1)``.

Days (and members) in a batch are independent copies of the graph (block-diagonal batching by index
offsets); no parameter depends on the number of reaches. Graph tensors are non-persistent buffers.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch_geometric.nn import GraphConv

from msgl_core.graph.coarsening import segment_sum

FOURIER_FREQUENCIES = 16


def segment_pool(h: Tensor, parent: Tensor, weights: Tensor, n_segments: int) -> Tensor:
    """R C'h: each reach gets the length-weighted mean of its segment's reaches.

    Shapes: h (B, N_f, H); parent (N_f,) int64; weights (N_f,) summing to 1 per segment → (B, N_f, H).
    """
    pooled = segment_sum((weights[:, None] * h).transpose(1, 2), parent, n_segments)  # (B, H, N_c)
    return pooled.index_select(-1, parent).transpose(1, 2)


class GraphDenoiser(nn.Module):
    """F_θ(x, c_noise, c) on the fine river graph.

    Args:
        in_cond: F_c, conditioning features per reach (0: unconditional).
        downstream_edges: (2, E) int64 reach → downstream reach (used in both directions).
        parent: (N_f,) int64 segment position of each reach; weights: (N_f,) C' weights (sum 1 per segment).
        n_segments: N_c.
        hidden: H; blocks: L; segment_pool: add the segment-mean term in every block.

    Shapes:
        x: (B, N_f) preconditioned noisy residual c_in·x̂ (B = days × members);
        c_noise: (B,) ¼ ln σ; cond: (B, N_f, F_c);
        returns: (B, N_f), dimensionless (scaled by c_out in the denoiser).

    Raises ValueError for edges outside the graph, a parent/weights shape mismatch, or hidden/blocks < 1.
    """

    down: Tensor
    up: Tensor
    parent: Tensor
    weights: Tensor
    frequencies: Tensor

    def __init__(self, in_cond: int, downstream_edges: Tensor, parent: Tensor, weights: Tensor, n_segments: int,
                 hidden: int = 32, blocks: int = 3, segment_pool: bool = True) -> None:
        super().__init__()
        n_reaches = int(parent.numel())
        if hidden < 1 or blocks < 1:
            raise ValueError(f"hidden and blocks must be >= 1, got {hidden}, {blocks}")
        if weights.shape != parent.shape:
            raise ValueError(f"weights {tuple(weights.shape)} must match parent {tuple(parent.shape)}")
        if downstream_edges.ndim != 2 or downstream_edges.shape[0] != 2 or (
                downstream_edges.numel() and not 0 <= int(downstream_edges.min()) <= int(downstream_edges.max())
                < n_reaches):
            raise ValueError(f"downstream_edges must be (2, E) reach positions in [0, {n_reaches})")
        self.n_reaches, self.n_segments, self.in_cond = n_reaches, n_segments, in_cond
        self.register_buffer("down", downstream_edges.long(), persistent=False)  # message source → downstream
        self.register_buffer("up", downstream_edges.long().flip(0), persistent=False)
        self.register_buffer("parent", parent.long(), persistent=False)
        self.register_buffer("weights", weights.float(), persistent=False)
        self.register_buffer("frequencies", math.pi * torch.logspace(-1, 1, FOURIER_FREQUENCIES), persistent=False)
        self.encode = nn.Linear(1 + in_cond, hidden)
        self.noise_mlp = nn.Sequential(nn.Linear(2 * FOURIER_FREQUENCIES, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(blocks))
        self.conv_down = nn.ModuleList(GraphConv(hidden, hidden, aggr="mean") for _ in range(blocks))
        self.conv_up = nn.ModuleList(GraphConv(hidden, hidden, aggr="mean") for _ in range(blocks))
        self.film = nn.ModuleList(nn.Linear(hidden, 2 * hidden) for _ in range(blocks))
        self.pool = (nn.ModuleList(nn.Linear(hidden, hidden, bias=False) for _ in range(blocks)) if segment_pool
                     else None)
        self.decode = nn.Linear(hidden, 1)

    def _batched(self, edges: Tensor, batch: int) -> Tensor:
        """(2, B·E) edges of ``batch`` block-diagonal copies of the graph."""
        offsets = torch.arange(batch, device=edges.device) * self.n_reaches
        return (edges[:, None, :] + offsets[None, :, None]).reshape(2, -1)

    def forward(self, x: Tensor, c_noise: Tensor, cond: Tensor) -> Tensor:
        batch = x.shape[0]
        if x.shape != (batch, self.n_reaches) or cond.shape != (batch, self.n_reaches, self.in_cond):
            raise ValueError(f"expected x (B, {self.n_reaches}) and cond (B, {self.n_reaches}, {self.in_cond}), got "
                             f"{tuple(x.shape)} and {tuple(cond.shape)}")
        angles = c_noise[:, None] * self.frequencies[None, :]
        e = self.noise_mlp(torch.cat([torch.sin(angles), torch.cos(angles)], dim=-1))  # (B, H)
        h = self.encode(torch.cat([x[..., None], cond], dim=-1))  # (B, N_f, H)
        down, up = self._batched(self.down, batch), self._batched(self.up, batch)
        for k, norm in enumerate(self.norms):
            u = norm(h).reshape(batch * self.n_reaches, -1)
            u = (self.conv_down[k](u, down) + self.conv_up[k](u, up)).reshape(h.shape)
            scale, shift = self.film[k](e).chunk(2, dim=-1)
            h = h + nn.functional.silu(u * (1 + scale[:, None]) + shift[:, None])
            if self.pool is not None:
                h = h + self.pool[k](segment_pool(h, self.parent, self.weights, self.n_segments))
        return self.decode(h).squeeze(-1)
