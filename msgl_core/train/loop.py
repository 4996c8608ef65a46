"""The training loop: Adam, one step per window, best-validation checkpoint (nanoGPT-style, linear).

A variant runs one or more stages (pretraining, then fine-tuning) through this same loop.
Validation RMSE is in °C over the (sparsity-masked) validation observations, pooled over windows.
When the validation periods hold no observation, the last epoch is kept.
"""

from __future__ import annotations

import errno
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
    """What one epoch did.

    Attributes:
        epoch, epochs: this epoch's number and the total, counted over all stages.
        stage: name of the variant's training stage (see :class:`msgl_core.registry.Stage`).
        train_loss: mean training loss, standardised units.
        val_rmse: validation RMSE, °C, on the scale the stage selects on (coarse for
            ``select="coarse"``, else fine); NaN without validation observations.
        best: whether these weights are the stage's choice so far.
        seconds: wall time of the epoch.
    """

    epoch: int
    epochs: int
    stage: str
    train_loss: float
    val_rmse: float
    best: bool
    seconds: float


#: Called after every epoch; returning False cancels training (the best checkpoint so far is kept).
Callback = Callable[[EpochReport], "bool | None"]
#: Asked before every training window; returning True cancels at once, inside the epoch.
StopCheck = Callable[[], bool]


class TrainingDiverged(RuntimeError):
    """The training loss (or a prediction) is not finite: the run is stopped and never cached."""


@dataclass(frozen=True)
class FitResult:
    """Chosen weights of the last stage (on CPU), the per-epoch history of every stage, and whether
    training was cancelled."""

    state_dict: dict[str, torch.Tensor]
    history: list[EpochReport]
    best_epoch: int
    cancelled: bool


def fit(cfg: RunConfig, prepared: PreparedData, variant: Variant, device: torch.device,
        callback: Callback | None = None, checkpoint: Path | None = None, progress: bool = True,
        stop: StopCheck | None = None) -> FitResult:
    """Train ``variant`` on ``prepared``: each of its stages for ``cfg.epochs`` epochs.

    Each stage starts from the weights the previous stage chose, with a fresh Adam optimiser, and
    picks its own weights by its ``select`` rule (best validation RMSE, or the last epoch). The last
    stage's choice is written to ``checkpoint`` (atomically) whenever it improves; its first epoch
    always counts as an improvement, so a finished fit has always written it. A cancel (``callback``
    returning False) after the last epoch of the last stage no longer cancels: the fit is complete.
    ``stop`` is asked before every training window: True cancels at once, within the epoch (the
    result is then ``cancelled``, with the history of the epochs that finished).

    Raises TrainingDiverged when a step's loss is not finite (naming the stage and epoch).
    """
    seed_everything(cfg.seed)
    model = variant.build(prepared, cfg).to(device)
    train = [batch(prepared, w).to(device) for w in prepared.windows["train"]]
    val = [batch(prepared, w).to(device) for w in prepared.windows["val"]]
    total = cfg.epochs * len(variant.stages)
    history: list[EpochReport] = []
    bar = tqdm(total=total, desc=f"{variant.name} {cfg.basin}", unit="epoch", disable=not progress)
    for index, stage in enumerate(variant.stages):
        final = index == len(variant.stages) - 1
        scale = "coarse" if stage.select == "coarse" else "fine"
        target_std = float(prepared.target_scalers[scale].std)
        optimizer = torch.optim.Adam(model.parameters(), lr=cfg.learning_rate)
        best_rmse, best_epoch, best_state, since_best = math.inf, 0, _cpu_state(model), 0
        for stage_epoch in range(1, cfg.epochs + 1):
            start = time.perf_counter()
            model.train()
            losses = []
            for b in train:
                if stop is not None and stop():
                    bar.close()
                    return FitResult(best_state, history, best_epoch, True)
                if (result := stage.step(model, b, optimizer, cfg)) is not None:
                    losses.append(result.loss)
            if not all(math.isfinite(loss) for loss in losses):
                raise TrainingDiverged(f"{variant.name} {cfg.basin}: non-finite training loss in stage "
                                       f"{stage.name!r}, epoch {len(history) + 1}; check the inputs for "
                                       "non-finite values or lower learning_rate")
            val_rmse = validation_rmse(model, variant, val, scale) * target_std
            improved = stage.select == "last" or math.isnan(val_rmse) or val_rmse < best_rmse
            if improved:
                best_rmse = best_rmse if math.isnan(val_rmse) else val_rmse
                best_epoch, best_state, since_best = len(history) + 1, _cpu_state(model), 0
                if final and checkpoint is not None:
                    save_state(best_state, checkpoint)
            else:
                since_best += 1
            report = EpochReport(len(history) + 1, total, stage.name,
                                 sum(losses) / len(losses) if losses else math.nan,
                                 val_rmse, improved, time.perf_counter() - start)
            history.append(report)
            bar.update(1)
            bar.set_postfix(stage=stage.name, loss=f"{report.train_loss:.3f}", val_rmse=f"{val_rmse:.2f}°C")
            last = final and stage_epoch == cfg.epochs
            if callback is not None and callback(report) is False and not last:
                return FitResult(best_state, history, best_epoch, True)
            if cfg.early_stopping is not None and since_best >= cfg.early_stopping:
                break
        model.load_state_dict(best_state)
    bar.close()
    return FitResult(best_state, history, best_epoch, False)


@torch.no_grad()
def validation_rmse(model: torch.nn.Module, variant: Variant, batches: list[Batch], scale: str = "fine") -> float:
    """Pooled RMSE (standardised units) of the ``scale`` ("fine" or "coarse") prediction over observed
    targets; NaN if there are none."""
    model.eval()
    predict = variant.predict_fine if scale == "fine" else variant.predict_coarse
    if predict is None:
        raise ValueError(f"variant {variant.name!r} does not predict the {scale} scale")
    squared, count = 0.0, 0
    for b in batches:
        target = b.y_fine if scale == "fine" else b.y_coarse
        observed = ~torch.isnan(target)
        if not bool(observed.any()):
            continue
        error = predict(model, b)[observed] - target[observed]
        squared += float((error**2).sum())
        count += int(observed.sum())
    return math.sqrt(squared / count) if count else math.nan


def save_state(state: dict[str, torch.Tensor], path: Path) -> None:
    """``torch.save`` a state dict to ``path`` via a temporary file and an atomic rename.

    Raises OSError naming ``path`` when it cannot be written (torch reports a full disk as
    ``RuntimeError: [enforce fail at inline_container.cc]``); the temporary file is removed.
    """
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as error:
        tmp.unlink(missing_ok=True)
        raise OSError(errno.ENOSPC if "enforce fail" in str(error) else getattr(error, "errno", None) or errno.EIO,
                      f"could not write {path}: {error} (is the disk full?)") from error


def _cpu_state(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().to("cpu", copy=True) for k, v in model.state_dict().items()}
