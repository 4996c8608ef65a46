"""The one rule that says whether a run's results can be trusted (the CLI and the dashboard flag the others).

A run is **unreliable** when either holds:

* it learnt from fewer than :data:`MIN_KEPT_OBS` fine observations: the observed fine reach-days of its
  domain on fit days (training and validation periods) that the sparsity mask kept, outside the hold-out
  (:attr:`msgl_core.ObservationCounts.kept`). Only for variants that train on fine observations
  (:attr:`msgl_core.Variant.uses_fine_obs`); the others never see them.
* its test skill is no better than climatology: the overall test-period NSE of the gauged fine reaches
  (:attr:`msgl_core.RunMetrics.fine`) is below 0, or undefined (no test pair, or constant observations).
  NSE = 1 − Σ(ŷ−y)²/Σ(y−ȳ)² over every gauged test reach-day, so NSE < 0 means the run's squared error
  is larger than that of predicting ȳ, the mean of all those test observations, everywhere and every
  day. That constant is the climatology used here: a day-of-year climatology would need the
  observations themselves, and the run record (``metrics.json``) stores scores only, so the rule can be
  applied to any saved run without reading its predictions.

The run record does not store the kept count. It is recomputed from the dataset with
:func:`msgl_core.observation_counts` and the run's config: the sparsity mask is seeded and nested, so on
the data the run was trained on (same fingerprint) this is exactly the number of fine targets training
had, in milliseconds and without re-running anything. For a run made on other data the count is
unknown, and the run is flagged as such.

Example:
    >>> Reliability(False, ("test NSE -0.30 < 0",)).text()
    'unreliable: test NSE -0.30 < 0'
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

from msgl_core.data.dataset import observation_counts
from msgl_core.registry import get_variant

if TYPE_CHECKING:
    from msgl_core.data.build import MultiscaleData
    from msgl_core.runs import Run

#: Fewest kept fine observations (reach-days on fit days) for a reliable run: the number of test pairs a
#: single reach needs for a score (:data:`msgl_core.MIN_GROUP_OBS`). A model whose fine loss and early
#: stopping rest on fewer reach-days than it takes to score one reach has learnt nothing measurable at
#: the fine scale (e.g. Rancocas at ρ = 0.1 % keeps 2, at ρ = 1 % keeps 15).
MIN_KEPT_OBS = 10
#: Test NSE below this is worse than climatology (the mean of the test observations).
MIN_TEST_NSE = 0.0


@dataclass(frozen=True)
class Reliability:
    """Whether a run is reliable, and why not.

    Attributes:
        ok: True when none of the rule's conditions holds.
        reasons: one plain sentence per condition that holds (empty when ``ok``).
        kept_obs: the kept fine observations the rule checked (None when unknown: other data).
    """

    ok: bool
    reasons: tuple[str, ...]
    kept_obs: int | None = None

    def text(self) -> str:
        """``"reliable"``, or ``"unreliable: "`` and the reasons joined by ``"; "``."""
        return "reliable" if self.ok else "unreliable: " + "; ".join(self.reasons)


def reliability(run: Run, data: MultiscaleData) -> Reliability:
    """Apply the rule of this module to ``run``.

    Args:
        run: a complete run (its config and ``metrics.json`` record).
        data: the processed dataset, for the kept-observation count; it counts only when it is the
            run's own (``data.path.name == run.data_fingerprint``); otherwise the count is unknown
            and that is a reason.

    Returns: :class:`Reliability`. Never raises for a complete run.
    """
    reasons = []
    kept = None
    if get_variant(run.config.variant).uses_fine_obs:
        if run.data_fingerprint != data.path.name:
            reasons.append(f"kept fine observations unknown: made on other data ({run.data_fingerprint or '?'})")
        else:
            kept = observation_counts(data, run.config).kept
            if kept < MIN_KEPT_OBS:
                reasons.append(f"learnt from {kept} fine observations (fewer than {MIN_KEPT_OBS})")
    scores = run.metrics.fine.overall
    if not math.isfinite(scores.nse):
        reasons.append(f"no test skill: NSE undefined on {scores.n_obs} test observations")
    elif scores.nse < MIN_TEST_NSE:
        reasons.append(f"worse than climatology: test NSE {scores.nse:.2f} < {MIN_TEST_NSE:g}")
    return Reliability(not reasons, tuple(reasons), kept)
