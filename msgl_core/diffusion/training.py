"""The masked denoising loss and one optimisation step of the residual prior.

The loss is the preconditioned denoising score-matching loss of Karras et al., NeurIPS 2022 (as in the
swirl-dynamics library of Wan et al., NeurIPS 2023, arXiv 2305.15618), with reach weights m ≥ 0:

    L = Σ_b λ(σ_b) Σ_i m_bi (D(r₀ + σ_b ε, σ_b; c)_bi − r₀_bi)² / Σ_bi m_bi

A reach-day with m = 0 takes no part at all: its clean value is replaced by 0 (the residual's prior mean)
in the noisy input and it has no weight, so its target may be anything, NaN included. This is what lets
fine-tuning use sparse observations (m = 1) beside anchor fields (m = λ_u) and nothing elsewhere.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from msgl_core.diffusion.schedule import Network, VPSchedule


@dataclass(frozen=True)
class DenoiserBatch:
    """B days of clean residuals to learn from.

    Shapes: target (B, N_f) standardised residual r₀ (NaN allowed where weight is 0); weight (B, N_f) ≥ 0;
    cond (B, N_f, F_c).
    """

    target: Tensor
    weight: Tensor
    cond: Tensor

    def to(self, device: torch.device) -> DenoiserBatch:
        """The same batch on ``device``."""
        return DenoiserBatch(self.target.to(device), self.weight.to(device), self.cond.to(device))


def masked_denoising_loss(schedule: VPSchedule, network: Network, batch: DenoiserBatch, sigma: Tensor,
                          noise: Tensor) -> Tensor:
    """The weighted loss above for given noise levels ``sigma`` (B,) and standard-normal ``noise`` (B, N_f).

    Returns a scalar; 0 (connected to the network's graph) when every weight is 0.
    Raises ValueError if a weight is negative or a weighted target is not finite.
    """
    weight = batch.weight
    if bool((weight < 0).any()):
        raise ValueError("reach weights must be >= 0")
    used = weight > 0
    if not bool(torch.isfinite(batch.target[used]).all()):
        raise ValueError("every target with a positive weight must be finite")
    clean = torch.where(used, batch.target, torch.zeros_like(batch.target))
    denoised = schedule.denoise(network, clean + sigma[:, None] * noise, sigma, batch.cond)
    error = torch.where(used, weight * (denoised - clean) ** 2, torch.zeros_like(denoised))
    total = weight.sum()
    if float(total) == 0:
        return denoised.sum() * 0.0
    return (schedule.loss_weight(sigma) * error.sum(dim=1)).sum() / total


def denoiser_step(network: nn.Module, schedule: VPSchedule, batch: DenoiserBatch, optimizer: torch.optim.Optimizer,
                  generator: torch.Generator | None = None, grad_clip: float | None = 1.0) -> float:
    """One Adam step on ``batch`` with stratified log-uniform σ and fresh noise from ``generator``.

    Returns the loss before the step. Raises ValueError from :func:`masked_denoising_loss`.
    """
    network.train()
    sigma = schedule.training_sigmas(len(batch.target), generator).to(batch.target.device)
    noise = torch.randn(batch.target.shape, generator=generator).to(batch.target.device)
    loss = masked_denoising_loss(schedule, network, batch, sigma, noise)
    optimizer.zero_grad()
    loss.backward()
    if grad_clip is not None:
        nn.utils.clip_grad_norm_(network.parameters(), grad_clip)
    optimizer.step()
    return float(loss.detach())
