"""The unreliable-run rule: too few kept fine observations, or test skill no better than climatology."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from msgl_core import MIN_KEPT_OBS, Reliability, observation_counts, reliability
from msgl_core.config import RunConfig
from msgl_core.data import MultiscaleData
from msgl_core.evaluate.metrics import Scores
from msgl_core.evaluate.record import RunMetrics, SkillSection
from msgl_core.runs import Run
from tests.tiny_bundle import PERIODS

BASE = RunConfig.from_dict({"basin": "drb", "window": 20, "epochs": 1, "device": "cpu", "threads": 1, **PERIODS})


def _run(data: MultiscaleData, nse: float, fingerprint: str | None = None, n_obs: int = 28,
         **overrides: object) -> Run:
    """A saved run's record with the given test NSE (the other scores do not matter to the rule)."""
    cfg = BASE.with_overrides(**overrides)
    scores = Scores(1.0, 0.8, 0.1, nse, 0.5, n_obs)
    return Run(Path("runs/x"), cfg, data.path.name if fingerprint is None else fingerprint, "0",
               RunMetrics(cfg.test_periods, SkillSection(scores, {}, {})))


def test_a_skilful_run_with_enough_observations_is_reliable(tiny_data: MultiscaleData) -> None:
    verdict = reliability(_run(tiny_data, 0.8, variant="rgcn_fine", sparsity=1.0), tiny_data)
    assert verdict == Reliability(True, (), observation_counts(tiny_data, BASE).kept)
    assert verdict.kept_obs >= MIN_KEPT_OBS and verdict.text() == "reliable"


def test_too_few_kept_fine_observations_is_unreliable(tiny_data: MultiscaleData) -> None:
    run = _run(tiny_data, 0.8, variant="rgcn_fine", sparsity=0.05)
    kept = observation_counts(tiny_data, run.config).kept
    assert 0 < kept < MIN_KEPT_OBS  # 5 of the tiny record's 94 fit-day observations
    verdict = reliability(run, tiny_data)
    assert not verdict.ok and verdict.kept_obs == kept
    assert verdict.reasons == (f"learnt from {kept} fine observations (fewer than {MIN_KEPT_OBS})",)
    # A variant that never trains on fine observations is not judged by their number.
    assert reliability(_run(tiny_data, 0.8, variant="remap", sparsity=0.05), tiny_data).ok


@pytest.mark.parametrize(("nse", "n_obs", "reason"), [
    (-0.25, 28, "worse than climatology: test NSE -0.25 < 0"),
    (math.nan, 0, "no test skill: NSE undefined on 0 test observations"),
])
def test_skill_no_better_than_climatology_is_unreliable(tiny_data: MultiscaleData, nse: float, n_obs: int,
                                                        reason: str) -> None:
    verdict = reliability(_run(tiny_data, nse, n_obs=n_obs, variant="rgcn_fine"), tiny_data)
    assert not verdict.ok and verdict.reasons == (reason,)
    assert verdict.text() == f"unreliable: {reason}"
    assert reliability(_run(tiny_data, 0.0, variant="rgcn_fine"), tiny_data).ok  # as good as climatology: not worse


def test_both_reasons_are_given_and_other_data_is_not_trusted(tiny_data: MultiscaleData) -> None:
    both = reliability(_run(tiny_data, -1.0, variant="rgcn_fine", sparsity=0.05), tiny_data)
    assert len(both.reasons) == 2 and both.reasons[0].startswith("learnt from")
    other = reliability(_run(tiny_data, 0.8, fingerprint="drb-other", variant="rgcn_fine"), tiny_data)
    assert not other.ok and other.kept_obs is None
    assert other.reasons == ("kept fine observations unknown: made on other data (drb-other)",)
