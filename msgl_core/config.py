"""The run configuration: one strict, frozen dataclass shared by the CLI, dashboard and tests.

Unknown keys raise (with a did-you-mean), values are type- and range-checked, and the config is
saved with every run as ``config.yaml`` together with the declared :data:`METADATA_KEYS`; that file
reads back with :meth:`RunConfig.from_yaml`. :meth:`RunConfig.key` (with the data fingerprint and
:data:`RUN_FORMAT`) names the run cache.

Example:
    >>> cfg = RunConfig(variant="rgcn_fine", sparsity=0.1, epochs=2)
    >>> RunConfig.from_yaml_text(cfg.to_yaml({"msgl_version": "0.1.0"})) == cfg
    True
    >>> RunConfig.from_dict({"epochs": 2.5})
    Traceback (most recent call last):
    ...
    ValueError: epochs must be an integer, got 2.5
"""

from __future__ import annotations

import dataclasses
import datetime
import difflib
import hashlib
import json
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal

import yaml

Period = tuple[str, str]

#: Version of everything a run's results depend on beyond its config (model code, run files). Bump it
#: when a change alters what training computes or how a run folder is laid out: runs cached under
#: another format are trained again (the format is part of :meth:`RunConfig.key`).
RUN_FORMAT = 2

#: Keys written to a run's ``config.yaml`` beside the config itself; :meth:`RunConfig.from_yaml` accepts
#: and ignores them.
METADATA_KEYS = ("msgl_version", "run_format", "data_fingerprint")

#: Temporal splits of the MSGL paper (docs/methods.md §3.1), inclusive ISO dates.
TRAIN_PERIODS: tuple[Period, ...] = (("1984-10-01", "2005-09-30"), ("2015-10-01", "2020-09-30"))
VAL_PERIODS: tuple[Period, ...] = (("2005-10-01", "2010-09-30"),)
TEST_PERIODS: tuple[Period, ...] = (("1979-10-01", "1984-09-30"), ("2010-10-01", "2015-09-30"),
                                    ("2020-10-01", "2021-09-30"))
DEVICES = ("auto", "cpu", "cuda")
#: The whole Delaware River Basin as a ``basin`` value.
WHOLE_BASIN = "drb"
#: What a ``basin`` may look like: ``drb``, a preset name or an outlet ``seg_id_nat`` (it names folders).
BASIN_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")

_INT, _FLOAT, _BOOL, _STR = "an integer", "a number", "true or false", "text"
#: Expected kind of every scalar field; ``None`` is allowed where the field's default is None-able.
_KINDS = {"variant": _STR, "basin": _STR, "sparsity": _FLOAT, "seed": _INT, "mask_seed": _INT, "epochs": _INT,
          "learning_rate": _FLOAT, "hidden": _INT, "heads": _INT, "dropout": _FLOAT, "grad_clip": _FLOAT,
          "window": _INT, "early_stopping": _INT, "faithful_step": _BOOL, "reservoir_features": _BOOL, "device": _STR,
          "threads": _INT}
_OPTIONAL = ("early_stopping", "grad_clip", "threads")

#: Variants whose model reads :class:`DynamicGraphConfig`; for every other variant ``dynamic_graph`` is left
#: out of :meth:`RunConfig.key` (it changes nothing there), so their run names stay as they were.
DYNAMIC_GRAPH_VARIANTS = ("msgl_dyn", "dyn_stgcn")
#: Choices of the ``dynamic_graph`` options (docs/dynamic_graph.md).
DYNAMIC_EDGES = ("union", "river", "knn")
DYNAMIC_JK = ("cat", "max", "none")
DYNAMIC_KNN_FEATURES = ("fine",)
_DYNAMIC_KINDS = {"blocks": _INT, "k": _INT, "edges": _STR, "jk": _STR, "knn_features": _STR,
                  "temporal_kernel": _INT, "init_length_km": _FLOAT, "init_channel_length_km": _FLOAT,
                  "dropout": _FLOAT}

#: The ensemble variants, which read :class:`OTDiffusionConfig`; for every other variant ``ot_diffusion`` is left
#: out of :meth:`RunConfig.key`.
ENSEMBLE_VARIANTS = ("ot_diffusion", "ot_broadcast", "msgl_gaussian", "msgl_seeds")
#: Choices of the ``ot_diffusion`` and ``debias`` options (docs/probabilistic.md §2, §6).
DEBIAS_METHODS = ("none", "linear", "quantile_mapping", "ot")
DEBIAS_GROUPINGS = ("doy_features", "season")
DEBIAS_MODES = ("barycentric", "sample")
Population = Literal["matched", "all"]
POPULATIONS: tuple[str, ...] = ("matched", "all")
COARSE_SOURCES = ("model", "simulation")
CONDITIONING = ("coarse", "static", "doy")
SAMPLER_NAMES = ("heun", "euler_maruyama")
_OT_DIFFUSION_KINDS = {"base_variant": _STR, "coarse_source": _STR, "members": _INT, "hidden": _INT, "blocks": _INT,
                       "segment_pool": _BOOL, "pretrain_epochs": _INT, "finetune_epochs": _INT, "batch_days": _INT,
                       "learning_rate": _FLOAT, "finetune_learning_rate": _FLOAT, "ema": _FLOAT,
                       "unobserved_weight": _FLOAT, "sampler": _STR, "steps": _INT, "common_noise": _BOOL,
                       "coarse_noise": _BOOL, "spread_inflation": _BOOL, "calibration_days": _INT}



def check_keys(cls: type, values: dict[str, Any], what: str) -> None:
    """Raise ValueError naming the first key of ``values`` that is not a field of the dataclass ``cls``
    (``unknown {what} key 'x'; did you mean 'y'? Valid keys: ...``)."""
    known = [f.name for f in dataclasses.fields(cls)]
    for key in values:
        if key not in known:
            hint = difflib.get_close_matches(str(key), known, n=1)
            raise ValueError(f"unknown {what} key {key!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
                             + f" Valid keys: {', '.join(known)}")


def block_values(cls: type, values: Any, what: str) -> dict[str, Any]:
    """The options of the config block ``what`` (a nested mapping such as ``dynamic_graph``) as a new dict, checked
    against the fields of the dataclass ``cls``.

    Raises ValueError for a non-mapping or an unknown key (see :func:`check_keys`).
    """
    if not isinstance(values, dict):
        raise ValueError(f"{what} must be a mapping of its options, got {values!r}")
    check_keys(cls, values, what)
    return dict(values)


@dataclass(frozen=True)
class DynamicGraphConfig:
    """The dynamic graph blocks of ``msgl_dyn`` and ``dyn_stgcn`` (config key ``dynamic_graph``; docs/dynamic_graph.md).

    Attributes:
        blocks: number L of dynamic graph blocks, >= 1.
        k: feature-space neighbours per reach and block, >= 1 (at most reaches - 1 are used).
        edges: ``union`` (river and kNN edges, typed), ``river`` (river edges only) or ``knn`` (kNN only).
        jk: jumping knowledge over the L + 1 levels: ``cat`` (concatenated, then a linear map to H),
            ``max`` (element-wise maximum) or ``none`` (the last level only).
        knn_features: what neighbours are chosen on: ``fine``, the fine-scale states.
        temporal_kernel: taps of the gated causal temporal convolutions, >= 1 (1: none in ``msgl_dyn``);
            None: the variant's default (1 for ``msgl_dyn``, 3 for ``dyn_stgcn``).
        init_length_km: initial geometric length scale ℓ_g of the kNN distance, km, > 0.
        init_channel_length_km: initial channel length scale ℓ_c of the river-edge weights, km, > 0.
        dropout: dropout probability on each block's update, in [0, 1).

    Raises ValueError on a value of the wrong type, out of range or not among the choices.
    """

    blocks: int = 3
    k: int = 8
    edges: str = "union"
    jk: str = "cat"
    knn_features: str = "fine"
    temporal_kernel: int | None = None
    init_length_km: float = 10.0
    init_channel_length_km: float = 5.0
    dropout: float = 0.1

    def __post_init__(self) -> None:
        for name, kind in _DYNAMIC_KINDS.items():
            _check_kind(f"dynamic_graph.{name}", getattr(self, name), kind, name == "temporal_kernel")
        for name, choices in (("edges", DYNAMIC_EDGES), ("jk", DYNAMIC_JK), ("knn_features", DYNAMIC_KNN_FEATURES)):
            if getattr(self, name) not in choices:
                raise ValueError(f"dynamic_graph.{name} must be one of {', '.join(choices)}, "
                                 f"got {getattr(self, name)!r}")
        for name in ("blocks", "k", "temporal_kernel"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"dynamic_graph.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("init_length_km", "init_channel_length_km"):
            if getattr(self, name) <= 0:
                raise ValueError(f"dynamic_graph.{name} must be > 0 km, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dynamic_graph.dropout must be in [0, 1), got {self.dropout}")

    @classmethod
    def from_dict(cls, values: Any) -> DynamicGraphConfig:
        """Build from a mapping. Raises ValueError for a non-mapping, unknown keys or bad values."""
        return values if isinstance(values, cls) else cls(**block_values(cls, values, "dynamic_graph"))


@dataclass(frozen=True)
class DebiasOptions:
    """How Stage 1 of ``ot_diffusion`` debiases the coarse source (config key ``ot_diffusion.debias``;
    docs/probabilistic.md §2).

    Attributes:
        method: ``none``, ``linear`` (paired per-season regression), ``quantile_mapping`` (per month) or
            ``ot`` (entropic optimal transport).
        grouping: ``ot`` only: ``doy_features`` (one map with day-of-year features) or ``season`` (4 maps).
        eps: ``ot``: entropic regularisation ε on the median-normalised cost, > 0.
        n_support: ``ot``: source and target points per group, >= 10.
        lambda_doy, lambda_static: ``ot``: weights of the day-of-year and static features, >= 0.
        mode: ``barycentric`` (the map) or ``sample`` (draw from the coupling, ``ot`` only).
        source_population: ``matched`` (source on the target's segment-days) or ``all``.

    Example:
        >>> DebiasOptions(method="ot", eps=0.05).method
        'ot'
        >>> DebiasOptions.from_dict({"methd": "ot"})
        Traceback (most recent call last):
        ...
        ValueError: unknown debias key 'methd'; did you mean 'method'? Valid keys: method, grouping, ...

    Raises ValueError for a value of the wrong kind or out of range.
    """

    method: str = "ot"
    grouping: str = "doy_features"
    eps: float = 0.05
    n_support: int = 2000
    lambda_doy: float = 3.0
    lambda_static: float = 1.0
    mode: str = "barycentric"
    source_population: Population = "matched"

    def __post_init__(self) -> None:
        for name, choices in (("method", DEBIAS_METHODS), ("grouping", DEBIAS_GROUPINGS), ("mode", DEBIAS_MODES),
                              ("source_population", POPULATIONS)):
            if getattr(self, name) not in choices:
                raise ValueError(f"debias.{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")
        for name in ("eps", "lambda_doy", "lambda_static"):
            _check_kind(f"debias.{name}", getattr(self, name), _FLOAT, False)
        if isinstance(self.n_support, bool) or not isinstance(self.n_support, int) or self.n_support < 10:
            raise ValueError(f"debias.n_support must be an integer >= 10, got {self.n_support!r}")
        if self.eps <= 0 or self.lambda_doy < 0 or self.lambda_static < 0:
            raise ValueError(f"debias.eps must be > 0 and lambda_doy, lambda_static >= 0, got {self.eps}, "
                             f"{self.lambda_doy}, {self.lambda_static}")
        if self.mode == "sample" and self.method != "ot":
            raise ValueError(f"debias.mode 'sample' needs method 'ot', got {self.method!r}")

    @classmethod
    def from_dict(cls, values: Any) -> DebiasOptions:
        """Build from plain values. Raises ValueError for unknown keys (with a did-you-mean) or bad values."""
        return values if isinstance(values, cls) else cls(**block_values(cls, values, "debias"))


@dataclass(frozen=True)
class OTDiffusionConfig:
    """The ensemble variants (:data:`ENSEMBLE_VARIANTS`; config key ``ot_diffusion``; docs/probabilistic.md §6).

    Attributes:
        base_variant: the deterministic variant whose cached run (same basin, split, sparsity, masks, seed and
            hold-out) gives the coarse source (``model`` mode) and the prior's training fields.
        coarse_source: ``model`` (the base run's fine prediction aggregated by C', debiased on validation
            observations) or ``simulation`` (PRMS-SNTemp, debiased on training observations).
        debias: Stage 1 options (:class:`DebiasOptions`).
        members: ensemble members M, >= 2.
        hidden, blocks, segment_pool: the graph denoiser (:class:`~msgl_core.models.graph_denoiser.GraphDenoiser`).
        conditioning: what the denoiser sees per reach-day, a subset of ``coarse`` (the debiased coarse value
            broadcast, standardised), ``static`` (the reach statics and its length share of the segment) and
            ``doy`` (sin/cos of the day of year); empty: the unconditional prior.
        pretrain_epochs: passes over the training days of base-run residual fields, >= 1.
        finetune_epochs: passes over the training days with kept fine observations, >= 0.
        batch_days: days per denoiser step, >= 1.
        learning_rate, finetune_learning_rate: Adam step sizes, > 0.
        ema: decay of the exponential moving average of weights used for sampling, in [0, 1).
        unobserved_weight: fine-tuning loss weight λ_u of unobserved reaches (anchored to the base run), >= 0.
        sampler: ``heun`` (probability-flow ODE) or ``euler_maruyama`` (reverse SDE); steps: its steps, >= 1.
        common_noise: a member starts from the same noise on every day.
        coarse_noise: add N(0, σ_c(season)²) per member and segment-day, σ_c fitted on validation.
        spread_inflation: choose the spread inflation γ on validation (else γ = 1).
        calibration_days: the last days of the validation periods used for calibration, >= 1.

    Raises ValueError on a value of the wrong type, out of range or not among the choices.
    """

    base_variant: str = "msgl"
    coarse_source: str = "model"
    debias: DebiasOptions = dataclasses.field(default_factory=DebiasOptions)
    members: int = 16
    hidden: int = 32
    blocks: int = 3
    segment_pool: bool = True
    conditioning: tuple[str, ...] = CONDITIONING
    pretrain_epochs: int = 25
    finetune_epochs: int = 5
    batch_days: int = 64
    learning_rate: float = 1e-3
    finetune_learning_rate: float = 1e-4
    ema: float = 0.999
    unobserved_weight: float = 0.1
    sampler: str = "heun"
    steps: int = 24
    common_noise: bool = True
    coarse_noise: bool = True
    spread_inflation: bool = True
    calibration_days: int = 365

    def __post_init__(self) -> None:
        for name, kind in _OT_DIFFUSION_KINDS.items():
            _check_kind(f"ot_diffusion.{name}", getattr(self, name), kind, False)
        for name, choices in (("coarse_source", COARSE_SOURCES), ("sampler", SAMPLER_NAMES)):
            if getattr(self, name) not in choices:
                raise ValueError(f"ot_diffusion.{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")
        if self.base_variant in ENSEMBLE_VARIANTS:
            raise ValueError(f"ot_diffusion.base_variant must be a deterministic variant, not {self.base_variant}")
        if not isinstance(self.debias, DebiasOptions):
            raise ValueError(f"ot_diffusion.debias must be a DebiasOptions, got {type(self.debias).__name__}")
        unknown = [c for c in self.conditioning if c not in CONDITIONING]
        if unknown or len(set(self.conditioning)) != len(self.conditioning):
            raise ValueError(f"ot_diffusion.conditioning must list distinct items of {', '.join(CONDITIONING)}, "
                             f"got {list(self.conditioning)}")
        for name, low in (("members", 2), ("hidden", 1), ("blocks", 1), ("pretrain_epochs", 1),
                          ("finetune_epochs", 0), ("batch_days", 1), ("steps", 1), ("calibration_days", 1)):
            if getattr(self, name) < low:
                raise ValueError(f"ot_diffusion.{name} must be >= {low}, got {getattr(self, name)}")
        for name in ("learning_rate", "finetune_learning_rate"):
            if getattr(self, name) <= 0:
                raise ValueError(f"ot_diffusion.{name} must be > 0, got {getattr(self, name)}")
        if not 0.0 <= self.ema < 1.0:
            raise ValueError(f"ot_diffusion.ema must be in [0, 1), got {self.ema}")
        if self.unobserved_weight < 0:
            raise ValueError(f"ot_diffusion.unobserved_weight must be >= 0, got {self.unobserved_weight}")

    @classmethod
    def from_dict(cls, values: Any) -> OTDiffusionConfig:
        """Build from a mapping. Raises ValueError for a non-mapping, unknown keys or bad values."""
        if isinstance(values, cls):
            return values
        converted = block_values(cls, values, "ot_diffusion")
        if "debias" in converted:
            converted["debias"] = DebiasOptions.from_dict(converted["debias"])
        if "conditioning" in converted:
            items = converted["conditioning"]
            if not isinstance(items, list | tuple) or not all(isinstance(c, str) for c in items):
                raise ValueError(f"ot_diffusion.conditioning must be a list of names, got {items!r}")
            converted["conditioning"] = tuple(items)
        return cls(**converted)


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run.

    Attributes:
        variant: registry key of the model variant (``msgl variants`` lists them).
        basin: ``"drb"``, a preset name or an outlet ``seg_id_nat`` (as text).
        sparsity: kept fraction ρ ∈ (0, 1] of fine observations in the training and validation
            periods (reach-days, seeded by ``mask_seed``, nested across ρ).
        seed: model seed (weights, dropout), >= 0.
        mask_seed: seed of the sparsity mask, >= 0.
        epochs, learning_rate, hidden, window: Adam training for ``epochs`` epochs per stage at
            ``learning_rate``; hidden size; window length in days.
        heads: attention heads of MSGL's task-1 head (must divide ``hidden``).
        dropout: dropout probability of MSGL's task-1 and task-2 heads, in [0, 1).
        grad_clip: gradient-norm clipping of every training step (None: no clipping).
        early_stopping: stop after this many epochs without a better validation RMSE (None: never).
        faithful_step: MSGL only: reproduce the official 6-pass MGDA step instead of the 2-pass one.
        reservoir_features: add the three static inputs of the nearest upstream dam (GRanD: proximity along
            the channel, log storage, degree of regulation; :mod:`msgl_core.data.reservoirs`) at both scales.
        holdout_segments: ``seg_id_nat`` whose observations (both scales) are withheld from training
            and validation, for ungauged evaluation.
        buffer_segments: ``seg_id_nat`` whose observations (both scales) are also withheld from training and
            validation but not scored apart (the buffer around a cross-validation test fold,
            :mod:`msgl_core.cv`); disjoint from ``holdout_segments``.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``. Not part of the run's identity.
        threads: torch CPU threads, >= 1 (None: torch's default). Not part of the run's identity.
        train_periods, val_periods, test_periods: inclusive ISO date ranges (``YYYY-MM-DD``).
        dynamic_graph: options of the dynamic graph blocks (:class:`DynamicGraphConfig`); part of the run's
            identity only for the variants in :data:`DYNAMIC_GRAPH_VARIANTS`.
        ot_diffusion: options of the probabilistic variant (:class:`OTDiffusionConfig`); part of the run's
            identity only for :data:`ENSEMBLE_VARIANTS`.

    Raises ValueError on a value of the wrong type or out of range (see :meth:`validate`).
    """

    variant: str = "msgl"
    basin: str = "rancocas"
    sparsity: float = 1.0
    seed: int = 1
    mask_seed: int = 42
    epochs: int = 40
    learning_rate: float = 5e-3
    hidden: int = 20
    heads: int = 4
    dropout: float = 0.1
    grad_clip: float | None = 3.0
    window: int = 365
    early_stopping: int | None = None
    faithful_step: bool = False
    reservoir_features: bool = False
    holdout_segments: tuple[int, ...] = ()
    buffer_segments: tuple[int, ...] = ()
    device: str = "auto"
    threads: int | None = None
    train_periods: tuple[Period, ...] = TRAIN_PERIODS
    val_periods: tuple[Period, ...] = VAL_PERIODS
    test_periods: tuple[Period, ...] = TEST_PERIODS
    dynamic_graph: DynamicGraphConfig = dataclasses.field(default_factory=DynamicGraphConfig)
    ot_diffusion: OTDiffusionConfig = dataclasses.field(default_factory=OTDiffusionConfig)
    #: Fields that do not change results and are left out of :meth:`key`.
    RUNTIME_ONLY: ClassVar[tuple[str, ...]] = ("device", "threads")
    #: Fields added after runs were cached: left out of :meth:`key` at their default, so older runs keep their key.
    KEYED_WHEN_SET: ClassVar[tuple[str, ...]] = ("buffer_segments", "reservoir_features")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError if a value has the wrong type or is out of range (sparsity not in (0, 1],
        unknown device, basin that is not a plain name, period that is not ISO dates, ...)."""
        for name, kind in _KINDS.items():
            _check_kind(name, getattr(self, name), kind, name in _OPTIONAL)
        if not 0.0 < self.sparsity <= 1.0:
            raise ValueError(f"sparsity must be in (0, 1] (kept fraction of fine observations), got {self.sparsity}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if not BASIN_PATTERN.fullmatch(self.basin):
            raise ValueError(f"basin must be {WHOLE_BASIN!r}, a preset name or an outlet seg_id_nat "
                             f"(lower-case letters, digits, '_' or '-'), got {self.basin!r}")
        for name in ("epochs", "hidden", "window", "heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("seed", "mask_seed"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        for name in ("threads", "early_stopping"):
            if getattr(self, name) is not None and getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1 (or unset), got {getattr(self, name)}")
        if self.hidden % self.heads:
            raise ValueError(f"heads ({self.heads}) must divide hidden ({self.hidden})")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {self.dropout}")
        if self.grad_clip is not None and self.grad_clip <= 0:
            raise ValueError(f"grad_clip must be > 0 (or unset for no clipping), got {self.grad_clip}")
        for name in ("holdout_segments", "buffer_segments"):
            for segment in getattr(self, name):
                _check_kind(name, segment, _INT, False)
        overlap = sorted(set(self.holdout_segments) & set(self.buffer_segments))
        if overlap:
            raise ValueError(f"buffer_segments must not repeat holdout_segments, got {overlap} in both")
        if not isinstance(self.dynamic_graph, DynamicGraphConfig):
            raise ValueError(f"dynamic_graph must be a DynamicGraphConfig, got {type(self.dynamic_graph).__name__}")
        if not isinstance(self.ot_diffusion, OTDiffusionConfig):
            raise ValueError(f"ot_diffusion must be an OTDiffusionConfig, got {type(self.ot_diffusion).__name__}")
        for name in ("train_periods", "val_periods", "test_periods"):
            periods = getattr(self, name)
            if not periods:
                raise ValueError(f"{name} must list at least one period")
            for period in periods:
                start, end = (_iso_date(name, day) for day in period)
                if start > end:
                    raise ValueError(f"{name}: period {period[0]}..{period[1]} ends before it starts")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        """Build from plain values (YAML/JSON/CLI). Raises ValueError for unknown keys or bad values."""
        if not isinstance(values, dict):
            raise ValueError(f"expected a mapping of config keys, got {type(values).__name__}")
        check_keys(cls, values, "config")
        converted = dict(values)
        for name in ("train_periods", "val_periods", "test_periods"):
            if name in converted:
                converted[name] = _periods(name, converted[name])
        for name in ("holdout_segments", "buffer_segments"):
            if name in converted:
                converted[name] = _segments(name, converted[name])
        if "dynamic_graph" in converted:
            converted["dynamic_graph"] = DynamicGraphConfig.from_dict(converted["dynamic_graph"])
        if "ot_diffusion" in converted:
            converted["ot_diffusion"] = OTDiffusionConfig.from_dict(converted["ot_diffusion"])
        if isinstance(converted.get("basin"), int) and not isinstance(converted["basin"], bool):
            converted["basin"] = str(converted["basin"])  # YAML reads an outlet seg_id_nat as a number
        if isinstance(converted.get("basin"), str):
            converted["basin"] = converted["basin"].strip().lower()
        return cls(**converted)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (lists for tuples), ready for YAML/JSON."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def with_overrides(self, **overrides: Any) -> RunConfig:
        """A copy with ``overrides`` applied (same validation as :meth:`from_dict`)."""
        return RunConfig.from_dict({**self.to_dict(), **overrides})

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunConfig:
        """Read a YAML config (a run's own ``config.yaml`` too: :data:`METADATA_KEYS` are ignored).

        Raises FileNotFoundError if ``path`` does not exist; ValueError naming the file for a folder,
        unreadable YAML, unknown keys or bad values.
        """
        path = Path(path)
        if path.is_dir():
            raise ValueError(f"{path} is a folder; expected a YAML config file")
        if not path.exists():
            raise FileNotFoundError(f"config file {path} does not exist")
        try:
            return cls.from_yaml_text(path.read_text())
        except (UnicodeDecodeError, ValueError) as error:
            raise ValueError(f"{path}: {error}") from error

    @classmethod
    def from_yaml_text(cls, text: str) -> RunConfig:
        """Parse YAML text (see :meth:`from_yaml`). Raises ValueError for bad YAML, keys or values."""
        try:
            values = yaml.safe_load(text) or {}
        except (yaml.YAMLError, ValueError) as error:  # YAML raises ValueError for a date like 2020-13-01
            raise ValueError(f"not valid YAML: {error}") from None
        if not isinstance(values, dict):
            raise ValueError("expected a mapping of config keys")
        return cls.from_dict({k: v for k, v in values.items() if k not in METADATA_KEYS})

    def to_yaml(self, metadata: dict[str, Any] | None = None) -> str:
        """YAML text of the config, followed by ``metadata`` (keys from :data:`METADATA_KEYS` only).

        Raises ValueError for an undeclared metadata key.
        """
        metadata = metadata or {}
        unknown = sorted(set(metadata) - set(METADATA_KEYS))
        if unknown:
            raise ValueError(f"undeclared metadata keys {unknown}; declared: {', '.join(METADATA_KEYS)}")
        return yaml.safe_dump({**self.to_dict(), **metadata}, sort_keys=False)

    def key(self, data_fingerprint: str) -> str:
        """16-hex-digit hash of the result-defining fields, :data:`RUN_FORMAT` and the dataset fingerprint."""
        identity = {k: v for k, v in self.to_dict().items() if k not in self.RUNTIME_ONLY
                    and not (k in self.KEYED_WHEN_SET and getattr(self, k) == getattr(RunConfig, k))
                    and not (k == "dynamic_graph" and self.variant not in DYNAMIC_GRAPH_VARIANTS)
                    and not (k == "ot_diffusion" and self.variant not in ENSEMBLE_VARIANTS)}
        text = json.dumps({"config": identity, "data": data_fingerprint, "run_format": RUN_FORMAT}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def _check_kind(name: str, value: Any, kind: str, optional: bool) -> None:
    """Raise ValueError unless ``value`` is of ``kind`` (bool is not a number; a float is not an integer)."""
    if value is None and optional:
        return
    ok = {_INT: isinstance(value, int) and not isinstance(value, bool),
          _FLOAT: isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value),
          _BOOL: isinstance(value, bool),
          _STR: isinstance(value, str)}[kind]
    if not ok:
        raise ValueError(f"{name} must be {kind}{' (or unset)' if optional else ''}, got {value!r}")


def _iso_date(name: str, value: Any) -> datetime.date:
    try:
        return datetime.date.fromisoformat(str(value))
    except ValueError:
        raise ValueError(f"{name}: {value!r} is not an ISO date (YYYY-MM-DD)") from None


def _periods(name: str, value: Any) -> tuple[Period, ...]:
    """``[[start, end], ...]`` → tuple of ISO-date pairs. Raises ValueError naming ``name`` otherwise."""
    if not isinstance(value, list | tuple) or not all(isinstance(p, list | tuple) and len(p) == 2 for p in value):
        raise ValueError(f"{name} must be a list of [start, end] ISO date pairs, got {value!r}")
    return tuple((str(a), str(b)) for a, b in value)


def _segments(name: str, value: Any) -> tuple[int, ...]:
    """A ``seg_id_nat`` list (field ``name``) → sorted unique ints. Raises ValueError for a non-integer item."""
    if not isinstance(value, list | tuple):
        raise ValueError(f"{name} must be a list of seg_id_nat, got {value!r}")
    try:
        return tuple(sorted({int(str(s).strip()) for s in value}))
    except ValueError:
        raise ValueError(f"{name} must be integer seg_id_nat values, got {list(value)!r}") from None
