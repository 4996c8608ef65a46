"""The training loop: Adam, one step per window, best-validation checkpoint (nanoGPT-style, linear).

Validation RMSE is in °C over the (sparsity-masked) validation observations, pooled over windows.
When the validation periods hold no observation, the last epoch is kept.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from tqdm.auto import tqdm

from msgl_core.config import RunConfig
from msgl_core.data.dataset import Batch, PreparedData, batch
from msgl_core.registry import Variant
from msgl_core.train.runtime import seed_everything


@dataclass(frozen=True)
class EpochReport:
    """What one epoch did: mean training loss (standardised), validation RMSE (°C), timing."""

    epoch: int
    epochs: int
    train_loss: float
    val_rmse: float
    best: bool
    seconds: float


#: Called after every epoch; returning False cancels training (the best checkpoint so far is kept).
Callback = Callable[[EpochReport], "bool | None"]


@dataclass(frozen=True)
class FitResult:
    """Best model weights (on CPU), the per-epoch history, and whether training was cancelled."""

    state_dict: dict[str, torch.Tensor]
    history: list[EpochReport]
    best_epoch: int
    cancelled: bool


def fit(cfg: RunConfig, prepared: PreparedData, variant: Variant, device: torch.device,
        callback: Callback | None = None, checkpoint: Path | None = None, progress: bool = True) -> FitResult:
    """Train ``variant`` on ``prepared`` for ``cfg.epochs`` epochs.

    The best-validation weights are written to ``checkpoint`` (atomically) whenever they improve;
    the first epoch always counts as an improvement, so a finished fit has always written it.
    """
    seed_everything(cfg.seed)
    model = variant.build(prepared, cfg).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
    train = [batch(prepared, w).to(device) for w in prepared.windows["train"]]
    val = [batch(prepared, w).to(device) for w in prepared.windows["val"]]
    fine_std = float(prepared.target_scalers["fine"].std)
    history: list[EpochReport] = []
    best_rmse, best_epoch, best_state, since_best = math.inf, 0, _cpu_state(model), 0
    bar = tqdm(range(1, cfg.epochs + 1), desc=f"{variant.name} {cfg.basin}", unit="epoch", disable=not progress)
    for epoch in bar:
        start = time.perf_counter()
        model.train()
        losses = [r.loss for b in train if (r := variant.step(model, b, optimizer, cfg)) is not None]
        val_rmse = validation_rmse(model, variant, val) * fine_std
        improved = math.isnan(val_rmse) or val_rmse < best_rmse
        if improved:
            best_rmse = best_rmse if math.isnan(val_rmse) else val_rmse
            best_epoch, best_state, since_best = epoch, _cpu_state(model), 0
            if checkpoint is not None:
                save_state(best_state, checkpoint)
        else:
            since_best += 1
        report = EpochReport(epoch, cfg.epochs, sum(losses) / len(losses) if losses else math.nan,
                             val_rmse, improved, time.perf_counter() - start)
        history.append(report)
        bar.set_postfix(loss=f"{report.train_loss:.3f}", val_rmse=f"{val_rmse:.2f}°C")
        cancelled = callback is not None and callback(report) is False
        if cancelled or (cfg.early_stopping is not None and since_best >= cfg.early_stopping):
            return FitResult(best_state, history, best_epoch, cancelled)
    return FitResult(best_state, history, best_epoch, False)


@torch.no_grad()
def validation_rmse(model: torch.nn.Module, variant: Variant, batches: list[Batch]) -> float:
    """Pooled RMSE (standardised units) of the fine prediction over observed targets; NaN if none."""
    model.eval()
    squared, count = 0.0, 0
    for b in batches:
        observed = ~torch.isnan(b.y_fine)
        if not bool(observed.any()):
            continue
        error = variant.predict_fine(model, b)[observed] - b.y_fine[observed]
        squared += float((error**2).sum())
        count += int(observed.sum())
    return math.sqrt(squared / count) if count else math.nan


def save_state(state: dict[str, torch.Tensor], path: Path) -> None:
    """``torch.save`` a state dict to ``path`` via a temporary file and an atomic rename."""
    tmp = path.with_name(f".{path.name}.tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
