"""The registry of model variants: ``msgl train --variant NAME`` looks names up here.

A :class:`Variant` says how to build the model for a prepared domain, how to take one training
step on a window, and how to predict fine-scale (and, where it can, coarse-scale) temperature.
Variants are registered in :mod:`msgl_core.variants`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from msgl_core.config import RunConfig
from msgl_core.data.dataset import Batch, PreparedData
from msgl_core.train.steps import StepResult

Builder = Callable[[PreparedData, RunConfig], nn.Module]
Stepper = Callable[[nn.Module, Batch, torch.optim.Optimizer, RunConfig], "StepResult | None"]
Predictor = Callable[[nn.Module, Batch], Tensor]


@dataclass(frozen=True)
class Variant:
    """A trainable model variant.

    Attributes:
        name, description, citation: registry key, one line, reference.
        uses_fine_obs, uses_coarse_obs, uses_simulation: which data it trains on.
        build: ``(prepared, cfg) -> nn.Module`` (on CPU; the loop moves it).
        step: ``(model, batch, optimizer, cfg) -> StepResult | None`` (None: window skipped).
        predict_fine: ``(model, batch) -> (reaches, time)`` standardised fine prediction.
        predict_coarse: ``(model, batch) -> (segments, time)`` standardised, or None.
    """

    name: str
    description: str
    citation: str
    uses_fine_obs: bool
    uses_coarse_obs: bool
    uses_simulation: bool
    build: Builder
    step: Stepper
    predict_fine: Predictor
    predict_coarse: Predictor | None = None


VARIANTS: dict[str, Variant] = {}


def register(variant: Variant) -> Variant:
    """Add ``variant`` to :data:`VARIANTS`. Raises ValueError if the name is taken."""
    if variant.name in VARIANTS:
        raise ValueError(f"variant {variant.name!r} is already registered")
    VARIANTS[variant.name] = variant
    return variant


def get_variant(name: str) -> Variant:
    """The variant called ``name``. Raises ValueError with a did-you-mean for unknown names."""
    import msgl_core.variants  # noqa: F401  (registers the built-in variants)

    if name not in VARIANTS:
        hint = difflib.get_close_matches(name, list(VARIANTS), n=1)
        raise ValueError(f"unknown variant {name!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
                         + f" choices: {', '.join(sorted(VARIANTS))}")
    return VARIANTS[name]


def variant_names() -> list[str]:
    """Registered variant names, sorted."""
    import msgl_core.variants  # noqa: F401

    return sorted(VARIANTS)
