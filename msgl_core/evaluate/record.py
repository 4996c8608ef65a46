"""The typed record of a run's results, saved as ``metrics.json`` and read by the CLI, ``msgl compare``
and the dashboard (nobody reads that file by string paths).

A :class:`RunMetrics` holds test-period :class:`~msgl_core.evaluate.metrics.Scores` of the gauged
fine reaches (``fine``), of the held-out reaches (``holdout``, with ``--holdout-segments``) and of the
coarse segments (``coarse``, for variants that predict them), a :class:`TrainingSummary`, and for a
probabilistic variant the ensemble scores (``probabilistic``, a :class:`ProbabilisticRecord`). New
scores extend :class:`Scores` or add a section here, with their units.

Example:
    >>> from msgl_core.evaluate.metrics import Scores
    >>> s = Scores(1.5, 1.2, 0.1, 0.9, 0.8, 120)
    >>> section = SkillSection(s, {7: s}, {"r1": s})
    >>> m = RunMetrics((("2010-10-01", "2015-09-30"),), section)
    >>> RunMetrics.from_json(m.to_json()) == m
    True
    >>> m.test_rmse
    1.5
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, replace

import pandas as pd

from msgl_core.config import Period
from msgl_core.evaluate.metrics import NAMES, Scores
from msgl_core.evaluate.probabilistic import ProbabilisticScores, ReliabilityBins


@dataclass(frozen=True)
class SkillSection:
    """Test-period scores of one group of nodes: overall, per calendar month (1–12) and per node id
    (reach id, or ``seg_id_nat`` as text). Groups below the minimum-observations policy have NaN scores;
    nodes without any test observation are absent from ``per_node``."""

    overall: Scores
    per_month: dict[int, Scores]
    per_node: dict[str, Scores]

    def per_node_frame(self) -> pd.DataFrame:
        """(nodes × scores) table indexed by node id (sorted); NaN where undefined."""
        frame = pd.DataFrame([vars(s) for s in self.per_node.values()], index=pd.Index(list(self.per_node), dtype=str),
                             columns=list(NAMES))
        return frame.astype({"n_obs": int}).sort_index()

    def per_month_frame(self) -> pd.DataFrame:
        """(month × scores) table indexed by calendar month 1–12."""
        return pd.DataFrame([vars(s) for s in self.per_month.values()], index=pd.Index(list(self.per_month),
                                                                                      name="month"))

    def to_dict(self) -> dict:
        return {"overall": self.overall.to_dict(),
                "per_month": {str(m): s.to_dict() for m, s in self.per_month.items()},
                "per_node": {k: s.to_dict() for k, s in self.per_node.items()}}

    @classmethod
    def from_dict(cls, values: dict) -> SkillSection:
        return cls(Scores.from_dict(values["overall"]),
                   {int(m): Scores.from_dict(s) for m, s in values["per_month"].items()},
                   {str(k): Scores.from_dict(s) for k, s in values["per_node"].items()})


def _nullable(values: tuple[float, ...]) -> list[float | None]:
    """JSON-ready floats: NaN → None."""
    return [None if math.isnan(v) else v for v in values]


@dataclass(frozen=True)
class ProbabilisticSection:
    """Test-period ensemble scores of one group of reaches (docs/probabilistic.md §5): overall, per calendar
    month and per reach (NaN below the minimum-observations policy), the overall rank-histogram counts
    (M + 1 bins) and the reliability bins of each exceedance threshold."""

    overall: ProbabilisticScores
    per_month: dict[int, ProbabilisticScores]
    per_node: dict[str, ProbabilisticScores]
    rank_histogram: tuple[int, ...]
    reliability: tuple[ReliabilityBins, ...]

    def per_node_frame(self) -> pd.DataFrame:
        """(reaches × scores) table indexed by reach id (sorted)."""
        frame = pd.DataFrame([vars(s) for s in self.per_node.values()], index=pd.Index(list(self.per_node), dtype=str),
                             columns=list(ProbabilisticScores.UNITS))
        return frame.astype({"n_obs": int}).sort_index()

    def to_dict(self) -> dict:
        return {"overall": self.overall.to_dict(),
                "per_month": {str(m): s.to_dict() for m, s in self.per_month.items()},
                "per_node": {k: s.to_dict() for k, s in self.per_node.items()},
                "rank_histogram": list(self.rank_histogram),
                "reliability": [{**vars(r), "forecast": _nullable(r.forecast), "observed": _nullable(r.observed)}
                                for r in self.reliability]}

    @classmethod
    def from_dict(cls, values: dict) -> ProbabilisticSection:
        def floats(items: list) -> tuple[float, ...]:
            return tuple(float("nan") if f is None else float(f) for f in items)

        return cls(ProbabilisticScores.from_dict(values["overall"]),
                   {int(m): ProbabilisticScores.from_dict(s) for m, s in values["per_month"].items()},
                   {str(k): ProbabilisticScores.from_dict(s) for k, s in values["per_node"].items()},
                   tuple(int(c) for c in values["rank_histogram"]),
                   tuple(ReliabilityBins(float(r["threshold"]), tuple(int(c) for c in r["count"]),
                                         floats(r["forecast"]), floats(r["observed"])) for r in values["reliability"]))


@dataclass(frozen=True)
class ProbabilisticRecord:
    """Ensemble scores of a probabilistic run: its member count, the gauged reaches (``fine``) and the
    reaches of the hold-out segments (``holdout``, None without a hold-out)."""

    n_members: int
    fine: ProbabilisticSection
    holdout: ProbabilisticSection | None = None

    def to_dict(self) -> dict:
        return {"units": ProbabilisticScores.UNITS, "n_members": self.n_members, "fine": self.fine.to_dict(),
                "holdout": None if self.holdout is None else self.holdout.to_dict()}

    @classmethod
    def from_dict(cls, values: dict) -> ProbabilisticRecord:
        return cls(int(values["n_members"]), ProbabilisticSection.from_dict(values["fine"]),
                   None if values.get("holdout") is None else ProbabilisticSection.from_dict(values["holdout"]))


@dataclass(frozen=True)
class TrainingSummary:
    """How the run was trained: the epoch whose weights were kept (counted over all stages), epochs run,
    wall seconds of training and prediction, and the torch device."""

    best_epoch: int
    epochs_run: int
    seconds: float
    device: str


#: The overall ensemble scores ``msgl compare`` tabulates (fields of :class:`ProbabilisticScores`).
ENSEMBLE_SCORES = ("crps", "crpss", "ssr", "coverage_90", "brier_20", "brier_25")


@dataclass(frozen=True)
class RunMetrics:
    """A run's results (``metrics.json``).

    Attributes:
        test_periods: the inclusive ISO test periods the scores cover.
        fine: scores of the fine reaches that were not held out (per node = per reach).
        holdout: scores of the reaches of the hold-out segments, or None without a hold-out.
        coarse: overall scores of the coarse segments (hold-out excluded), or None when the variant
            does not predict the coarse scale.
        training: :class:`TrainingSummary`, None until the run is saved.
        probabilistic: ensemble scores (:class:`ProbabilisticRecord`) of a probabilistic variant, else None.
    """

    test_periods: tuple[Period, ...]
    fine: SkillSection
    holdout: SkillSection | None = None
    coarse: Scores | None = None
    training: TrainingSummary | None = None
    probabilistic: ProbabilisticRecord | None = None

    @property
    def test_rmse(self) -> float:
        """Overall fine-scale test RMSE of the gauged reaches, °C."""
        return self.fine.overall.rmse

    def ensemble_scores(self) -> dict[str, float]:
        """Overall gauged test scores of :data:`ENSEMBLE_SCORES` (docs/probabilistic.md §5): an ensemble's own,
        or for a deterministic run its CRPS, which is its MAE (°C), and NaN for the others."""
        if self.probabilistic is not None:
            scores = vars(self.probabilistic.fine.overall)
            return {name: float(scores[name]) for name in ENSEMBLE_SCORES}
        return {name: float(self.fine.overall.mae) if name == "crps" else math.nan for name in ENSEMBLE_SCORES}

    def sections(self) -> dict[str, Scores]:
        """Overall scores by section name (``fine``, ``holdout``, ``coarse``), those present only."""
        out = {"fine": self.fine.overall}
        if self.holdout is not None:
            out["holdout"] = self.holdout.overall
        if self.coarse is not None:
            out["coarse"] = self.coarse
        return out

    def per_reach_frame(self) -> pd.DataFrame:
        """Test scores per reach with a test observation (index ``reach``), gauged and held-out, with a
        bool ``holdout`` column."""
        frames = [self.fine.per_node_frame().assign(holdout=False)]
        if self.holdout is not None:
            frames.append(self.holdout.per_node_frame().assign(holdout=True))
        table = pd.concat(frames).sort_index()
        table.index.name = "reach"
        return table

    def with_training(self, training: TrainingSummary) -> RunMetrics:
        """A copy with ``training`` set."""
        return replace(self, training=training)

    def to_json(self) -> str:
        """JSON text (NaN scores as null), see :meth:`from_json`."""
        values = {"units": Scores.UNITS, "test_periods": [list(p) for p in self.test_periods],
                  "fine": self.fine.to_dict(),
                  "holdout": None if self.holdout is None else self.holdout.to_dict(),
                  "coarse": None if self.coarse is None else self.coarse.to_dict(),
                  "training": None if self.training is None else vars(self.training),
                  "probabilistic": None if self.probabilistic is None else self.probabilistic.to_dict()}
        return json.dumps(values, indent=2)

    @classmethod
    def from_json(cls, text: str, source: str = "metrics.json") -> RunMetrics:
        """Parse :meth:`to_json` output. Raises ValueError naming ``source`` for malformed content."""
        try:
            values = json.loads(text)
            return cls(tuple((str(a), str(b)) for a, b in values["test_periods"]),
                       SkillSection.from_dict(values["fine"]),
                       None if values.get("holdout") is None else SkillSection.from_dict(values["holdout"]),
                       None if values.get("coarse") is None else Scores.from_dict(values["coarse"]),
                       None if values.get("training") is None else TrainingSummary(**values["training"]),
                       None if values.get("probabilistic") is None
                       else ProbabilisticRecord.from_dict(values["probabilistic"]))
        except (json.JSONDecodeError, KeyError, TypeError, ValueError, AttributeError) as error:
            raise ValueError(f"{source}: not a msgl metrics record ({type(error).__name__}: {error})") from None
