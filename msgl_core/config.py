"""The run configuration: one strict, frozen dataclass shared by the CLI, dashboard and tests.

Unknown keys raise (with a did-you-mean), values are validated, and the config is saved with every
run as ``config.yaml``. Its :meth:`RunConfig.key` (with the data fingerprint) names the run cache.
"""

from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import yaml

Period = tuple[str, str]

#: Temporal splits of the MSGL paper (spec §2.5), inclusive ISO dates.
TRAIN_PERIODS: tuple[Period, ...] = (("1984-10-01", "2005-09-30"), ("2015-10-01", "2020-09-30"))
VAL_PERIODS: tuple[Period, ...] = (("2005-10-01", "2010-09-30"),)
TEST_PERIODS: tuple[Period, ...] = (("1979-10-01", "1984-09-30"), ("2010-10-01", "2015-09-30"),
                                    ("2020-10-01", "2021-09-30"))
DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a training run.

    Attributes:
        variant: registry key of the model variant (``msgl variants`` lists them).
        basin: ``"drb"``, a preset name or an outlet ``seg_id_nat`` (as text).
        sparsity: kept fraction ρ ∈ (0, 1] of fine observations in the training and validation
            periods (reach-days, seeded by ``mask_seed``, nested across ρ).
        seed: model seed (weights, dropout).
        mask_seed: seed of the sparsity mask.
        epochs, learning_rate, hidden, window: Adam training for ``epochs`` epochs at
            ``learning_rate``; hidden size; window length in days.
        early_stopping: stop after this many epochs without a better validation RMSE (None: never).
        faithful_step: MSGL only: reproduce the official 6-pass MGDA step instead of the 2-pass one.
        holdout_segments: ``seg_id_nat`` whose observations (both scales) are withheld from training
            and validation, for ungauged evaluation.
        device: ``auto`` (CUDA when present), ``cpu`` or ``cuda``. Not part of the run's identity.
        threads: torch CPU threads (None: torch's default). Not part of the run's identity.
        train_periods, val_periods, test_periods: inclusive ISO date ranges.

    Raises ValueError on an invalid value (see :meth:`validate`).
    """

    variant: str = "msgl"
    basin: str = "rancocas"
    sparsity: float = 1.0
    seed: int = 1
    mask_seed: int = 42
    epochs: int = 40
    learning_rate: float = 5e-3
    hidden: int = 20
    window: int = 365
    early_stopping: int | None = None
    faithful_step: bool = False
    holdout_segments: tuple[int, ...] = ()
    device: str = "auto"
    threads: int | None = None
    train_periods: tuple[Period, ...] = TRAIN_PERIODS
    val_periods: tuple[Period, ...] = VAL_PERIODS
    test_periods: tuple[Period, ...] = TEST_PERIODS
    #: Fields that do not change results and are left out of :meth:`key`.
    RUNTIME_ONLY: ClassVar[tuple[str, ...]] = ("device", "threads")

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ValueError if a value is out of range (sparsity not in (0, 1], unknown device, ...)."""
        if not 0.0 < self.sparsity <= 1.0:
            raise ValueError(f"sparsity must be in (0, 1] (kept fraction of fine observations), got {self.sparsity}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        for name in ("epochs", "hidden", "window"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.learning_rate <= 0:
            raise ValueError(f"learning_rate must be > 0, got {self.learning_rate}")
        for name in ("train_periods", "val_periods", "test_periods"):
            for start, end in getattr(self, name):
                if str(start) > str(end):
                    raise ValueError(f"{name}: period {start}..{end} ends before it starts")

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> RunConfig:
        """Build from plain values (YAML/JSON/CLI). Raises ValueError for unknown keys."""
        known = [f.name for f in dataclasses.fields(cls)]
        for key in values:
            if key not in known:
                hint = difflib.get_close_matches(key, known, n=1)
                raise ValueError(f"unknown config key {key!r}" + (f"; did you mean {hint[0]!r}?" if hint else "")
                                 + f" Valid keys: {', '.join(known)}")
        converted = dict(values)
        for name in ("train_periods", "val_periods", "test_periods"):
            if name in converted:
                converted[name] = tuple((str(a), str(b)) for a, b in converted[name])
        if "holdout_segments" in converted:
            converted["holdout_segments"] = tuple(sorted(int(s) for s in converted["holdout_segments"]))
        if "basin" in converted:
            converted["basin"] = str(converted["basin"])
        return cls(**converted)

    def to_dict(self) -> dict[str, Any]:
        """Plain values (lists for tuples), ready for YAML/JSON."""
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def with_overrides(self, **overrides: Any) -> RunConfig:
        """A copy with ``overrides`` applied (same validation as :meth:`from_dict`)."""
        return RunConfig.from_dict({**self.to_dict(), **overrides})

    @classmethod
    def from_yaml(cls, path: str | Path) -> RunConfig:
        """Read a YAML config. Raises ValueError naming the file for bad content."""
        values = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(values, dict):
            raise ValueError(f"{path}: expected a mapping of config keys")
        values.pop("msgl_version", None)
        try:
            return cls.from_dict(values)
        except (TypeError, ValueError) as error:
            raise ValueError(f"{path}: {error}") from error

    def to_yaml(self, version: str) -> str:
        """YAML text of the config plus the package version."""
        return yaml.safe_dump({**self.to_dict(), "msgl_version": version}, sort_keys=False)

    def key(self, data_fingerprint: str) -> str:
        """16-hex-digit hash of the result-defining fields and the dataset fingerprint."""
        identity = {k: v for k, v in self.to_dict().items() if k not in self.RUNTIME_ONLY}
        text = json.dumps({"config": identity, "data": data_fingerprint}, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

