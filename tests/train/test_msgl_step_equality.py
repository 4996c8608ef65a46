"""The MSGL training step and prediction compute what they computed before the speed work (issue 11).

Two identically initialised models train side by side on the tiny dataset, one with the library's
step, one with the pinned copy of the step at commit 2c3b086 (``benchmarks/reference/msgl_2c3b086.py``), each
with its own copy of the global random stream. The windows include one without fine targets (the
library skips the task-1 head there) and one without coarse targets. After every step the losses,
task weights, gradients, parameters and buffers must agree to 1e-5, and so must the predictions.

With Adam, the task-1 head's parameter values are left out of the comparison (their gradients are
still compared). Several of them have a zero gradient in exact arithmetic, being biases that a
BatchNorm (in training mode) or the softmax cancels: the key and value biases, the attention output
biases, the first two BatchNorm shifts. Their gradients are rounding noise (~1e-9) in both
implementations, and Adam rescales noise to full-size steps, so these parameters drift apart, in
directions that no loss and no prediction depends on. With SGD every parameter is compared.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pytest
import torch

from benchmarks.reference import msgl_2c3b086 as reference
from msgl_core.config import RunConfig
from msgl_core.data import MultiscaleData
from msgl_core.data.dataset import Batch, PreparedData, batch, prepare
from msgl_core.models import MSGL
from msgl_core.train.steps import msgl_step
from msgl_core.variants.msgl import build, predict_fine
from tests.tiny_bundle import PERIODS

TOLERANCE = {"atol": 1e-5, "rtol": 1e-5}
#: BatchNorm statistics of the task-1 head: nothing reads them, and a skipped head leaves them alone.
TASK1_STATS = ("interp_head.local_norm.", "interp_head.interaction_norm.", "interp_head.output_norm.")


@pytest.fixture(scope="module")
def prepared(tiny_data: MultiscaleData) -> PreparedData:
    cfg = RunConfig.from_dict({"basin": "drb", "window": 20, "device": "cpu", **PERIODS})
    return prepare(tiny_data, cfg)


def _model(prepared: PreparedData) -> MSGL:
    torch.manual_seed(3)
    return build(prepared, RunConfig(hidden=8))


def _windows(prepared: PreparedData) -> list[Batch]:
    """Training windows, plus copies without fine targets and without coarse targets."""
    train = [batch(prepared, w) for w in prepared.windows["train"]]
    first = train[0]
    no_fine = dataclasses.replace(first, y_fine=torch.full_like(first.y_fine, float("nan")))
    no_coarse = dataclasses.replace(train[-1], y_coarse=torch.full_like(train[-1].y_coarse, float("nan")))
    assert not torch.isnan(first.y_fine).all() and not torch.isnan(first.y_coarse).all()
    return [train[0], no_fine, train[-1], no_coarse, no_fine, *train]


class Trainer:
    """One model, its optimiser and its own copy of the global random stream."""

    def __init__(self, model: MSGL, step: Callable[[MSGL, Batch, torch.optim.Optimizer], object],
                 optimizer: type[torch.optim.Optimizer]) -> None:
        self.model, self.step = model.train(), step
        self.optimizer = optimizer(model.parameters(), lr=0.02)
        self.rng = torch.get_rng_state()

    def __call__(self, window: Batch) -> object:
        torch.set_rng_state(self.rng)
        result = self.step(self.model, window, self.optimizer)
        self.rng = torch.get_rng_state()
        return result


def _library_step(model: MSGL, window: Batch, optimizer: torch.optim.Optimizer) -> object:
    result = msgl_step(model, window, optimizer, 3.0)
    return None if result is None else (result.loss, result.weights)


def _assert_same_state(new: MSGL, old: MSGL, skip_task1_stats: bool, all_parameters: bool = True) -> None:
    for (name, a), (_, b) in zip(new.named_parameters(), old.named_parameters()):
        torch.testing.assert_close(a.grad, b.grad, **TOLERANCE, msg=lambda m, name=name: f"gradient of {name}: {m}")
        if all_parameters or not name.startswith("interp_head."):
            torch.testing.assert_close(a, b, **TOLERANCE, msg=lambda m, name=name: f"parameter {name}: {m}")
    for (name, a), (_, b) in zip(new.named_buffers(), old.named_buffers()):
        if not (skip_task1_stats and name.startswith(TASK1_STATS)):
            torch.testing.assert_close(a, b, **TOLERANCE, msg=lambda m, name=name: f"buffer {name}: {m}")


@pytest.mark.parametrize("optimizer", [torch.optim.SGD, torch.optim.Adam])
def test_steps_and_predictions_match_the_pinned_reference(prepared: PreparedData,
                                                          optimizer: type[torch.optim.Optimizer]) -> None:
    torch.manual_seed(11)
    new = Trainer(_model(prepared), _library_step, optimizer)
    old = Trainer(_model(prepared), reference.step, optimizer)
    skipped_task1 = False
    for window in _windows(prepared):
        result_new, result_old = new(window), old(window)
        assert result_new is not None and result_old is not None
        torch.testing.assert_close(result_new[0], result_old[0], **TOLERANCE)
        torch.testing.assert_close(result_new[1], result_old[1], **TOLERANCE)
        assert torch.equal(new.rng, old.rng)  # the same random draws, skipped head or not
        skipped_task1 |= bool(torch.isnan(window.y_fine).all())
        _assert_same_state(new.model, old.model, skipped_task1, all_parameters=optimizer is torch.optim.SGD)
    new.model.eval()
    old.model.eval()
    with torch.no_grad():
        for w in prepared.windows["val"] + prepared.windows["test"]:
            b = batch(prepared, w)
            torch.testing.assert_close(predict_fine(new.model, b), reference.predict_fine(old.model, b), **TOLERANCE)


def test_a_window_without_fine_targets_skips_only_the_task1_statistics(prepared: PreparedData) -> None:
    """After a coarse-only window every buffer but the task-1 head's BatchNorm statistics matches."""
    new = Trainer(_model(prepared), _library_step, torch.optim.SGD)
    old = Trainer(_model(prepared), reference.step, torch.optim.SGD)
    no_fine = _windows(prepared)[1]
    new(no_fine)
    old(no_fine)
    _assert_same_state(new.model, old.model, skip_task1_stats=True)
    fine_stats = new.model.fine_head.norm.running_mean
    assert not torch.equal(fine_stats, torch.zeros_like(fine_stats))  # the fine head still saw the window
    untouched = new.model.interp_head.output_norm
    assert int(untouched.num_batches_tracked) == 0 and int(old.model.interp_head.output_norm.num_batches_tracked) == 1
