"""The registry of model variants: ``msgl train --variant NAME`` looks names up here.

A :class:`Variant` says how to build the model for a prepared domain, which training stages it runs
(each a step on one window and a rule for choosing the stage's checkpoint), and how to predict
fine-scale (and, where it can, coarse-scale) temperature. Every variant trains through the same
loop (:func:`msgl_core.train.loop.fit`). Variants are registered in :mod:`msgl_core.variants`.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from msgl_core.config import RunConfig
from msgl_core.data.dataset import Batch, PreparedData
from msgl_core.train.steps import StepResult

Builder = Callable[[PreparedData, RunConfig], nn.Module]
# The first argument is the variant's own model class (an ``nn.Module`` subclass): typed Any, since a
# Callable's parameters cannot be narrowed per variant.
Stepper = Callable[[Any, Batch, torch.optim.Optimizer, RunConfig], "StepResult | None"]
Predictor = Callable[[Any, Batch], Tensor]
#: How a stage picks its weights: best validation RMSE on the (sparse) fine or on the coarse
#: validation observations, or simply the last epoch (pretraining stages, as the official code does).
Selection = Literal["fine", "coarse", "last"]
#: The families variants are grouped in (``msgl variants``, the dashboard's variant list), in display order:
#: the multi-scale models this product is about, single-scale graph models trained on fine observations
#: only, the downscaling baselines that move coarse-scale knowledge to the fine graph without MSGL, and
#: probabilistic downscaling (ensembles on top of a deterministic base run).
Family = Literal["multi-scale", "fine-only graph baselines", "downscaling baselines", "probabilistic downscaling"]
FAMILIES: tuple[str, ...] = get_args(Family)
#: Ensemble kinds: OT-debiased coarse level with a diffusion prior within segments, the same coarse level
#: broadcast to the reaches (no diffusion), the base run plus seasonal Gaussian noise, or the base runs of
#: consecutive seeds as the members.
Ensemble = Literal["diffusion", "broadcast", "gaussian_noise", "seeds"]
ENSEMBLES: tuple[str, ...] = get_args(Ensemble)


@dataclass(frozen=True)
class Stage:
    """One training stage: ``cfg.epochs`` epochs of ``step`` over the training windows.

    Attributes:
        name: shown in progress and written to ``history.csv`` (e.g. ``pretrain``, ``finetune``).
        step: ``(model, batch, optimizer, cfg) -> StepResult | None`` (None: window skipped).
        select: which weights the stage hands on (see :data:`Selection`).
    """

    name: str
    step: Stepper
    select: Selection = "fine"


@dataclass(frozen=True)
class Variant:
    """A trainable model variant.

    Attributes:
        name, description, citation: registry key, one line, reference.
        title: a plain-language name for people (e.g. "MSGL (multi-scale graph learning)").
        family: one of :data:`FAMILIES`.
        uses_fine_obs, uses_coarse_obs, uses_simulation: which data it trains on.
        build: ``(prepared, cfg) -> nn.Module`` (on CPU; the loop moves it).
        stages: the training stages, in order; each starts from the weights the previous one chose,
            with a fresh optimiser. The last stage's choice is the run's model.
        predict_fine: ``(model, batch) -> (reaches, time)`` standardised fine prediction.
        predict_coarse: ``(model, batch) -> (segments, time)`` standardised, or None.
        ensemble: for an ensemble variant, which members it draws (:data:`ENSEMBLES`): it trains on top of a
            cached deterministic base run (:mod:`msgl_core.ensemble_runs`) instead of through the loop, has no
            stages, and its ``build`` and ``predict_fine`` raise. None for a deterministic variant.
    """

    name: str
    description: str
    citation: str
    title: str
    family: Family
    uses_fine_obs: bool
    uses_coarse_obs: bool
    uses_simulation: bool
    build: Builder
    stages: tuple[Stage, ...]
    predict_fine: Predictor
    predict_coarse: Predictor | None = None
    ensemble: Ensemble | None = None

    @property
    def probabilistic(self) -> bool:
        """Whether the variant is an ensemble (see ``ensemble``)."""
        return self.ensemble is not None

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"variant {self.name!r}: family {self.family!r} is not one of {', '.join(FAMILIES)}")
        if self.probabilistic and self.stages:
            raise ValueError(f"variant {self.name!r} is probabilistic: it trains through its own flow, not stages")
        if not self.stages and not self.probabilistic:
            raise ValueError(f"variant {self.name!r} needs at least one training stage")
        if any(s.select == "coarse" for s in self.stages) and self.predict_coarse is None:
            raise ValueError(f"variant {self.name!r} selects on coarse validation but has no predict_coarse")


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


def variants_by_family() -> dict[str, list[Variant]]:
    """Registered variants grouped by :data:`FAMILIES` (in that order, empty families left out), each
    group in registration order (the order of the paper's tables)."""
    import msgl_core.variants  # noqa: F401

    groups = {family: [v for v in VARIANTS.values() if v.family == family] for family in FAMILIES}
    return {family: members for family, members in groups.items() if members}
