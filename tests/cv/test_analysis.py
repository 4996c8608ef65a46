"""The table of CV runs → the analysis and ``variance_components.json``."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from msgl_core.cv.analysis import VARIANCE_FILE, AnalysisOptions, analyse, format_analysis, write_analysis
from msgl_core.cv.variance import anova_decomposition

OPTIONS = AnalysisOptions(n_folds=3, replicates=200)


def results(repeats: int = 2, folds: int = 3, seeds: tuple[int, ...] = (1, 2, 3), seed: int = 0) -> pd.DataFrame:
    """A table shaped like ``cv_results.parquet`` for variants a and b (b = a + 0.2 °C + noise)."""
    rng = np.random.default_rng(seed)
    rows = []
    partition = rng.normal(0, 0.3, (repeats, folds))
    seed_effect = rng.normal(0, 0.1, len(seeds))
    for variant, shift in (("a", 0.0), ("b", 0.2)):
        for r in range(repeats):
            for k in range(folds):
                for j, s in enumerate(seeds):
                    rmse = 2.0 + shift + partition[r, k] + seed_effect[j] + rng.normal(0, 0.05)
                    rows.append({"variant": variant, "repeat": r, "fold": k, "seed": s, "rmse": rmse,
                                 "n_obs_test": 100 + 50 * k, "status": "ok"})
    return pd.DataFrame(rows)


def test_analysis_decomposes_each_variant_and_pairs_them() -> None:
    table = results()
    analysis = analyse(table, OPTIONS)
    a, b = analysis.variants
    y = table[table["variant"] == "a"].pivot_table(index=["repeat", "fold"], columns="seed", values="rmse").to_numpy()
    assert a.fold.components == anova_decomposition(y).components
    assert a.fold.n_partitions == 6 and a.fold.n_seeds == 3
    assert a.fold_log.mean == pytest.approx(np.log(y).mean())
    assert a.bootstrap is not None and a.nadeau_bengio is not None
    (pair,) = analysis.paired
    assert (pair.a, pair.b, pair.fraction_a_better) == ("a", "b", 1.0)
    assert pair.difference.mean == pytest.approx(-0.2, abs=0.05)
    assert analysis.missing_cells == () and analysis.warnings == ()
    text = format_analysis(analysis)
    assert "| a | 2." in text and "a − b: Δ RMSE -0.2" in text
    ratio = pair.partition_ratio_interval
    assert ratio is not None
    assert f"σ²_P(a)/σ²_P(b) {pair.partition_ratio:.2f} [{ratio.low:.2f}, {ratio.high:.2f}] (90 %)" in text



def test_too_few_partitions_for_the_bootstrap_are_named() -> None:
    few = analyse(results(repeats=1, folds=2), AnalysisOptions(n_folds=2, replicates=200))
    assert any(w.startswith("only 2 partitions: a pigeonhole-bootstrap replicate") for w in few.warnings)
    assert "warning: only 2 partitions" in format_analysis(few)
    assert not any("partitions:" in w for w in analyse(results(repeats=2, folds=2), OPTIONS).warnings)

def test_repeat_level_analysis_pools_the_folds_of_each_repeat_and_seed() -> None:
    table = results()
    analysis = analyse(table, OPTIONS)
    rows = table[(table["variant"] == "a") & (table["repeat"] == 1) & (table["seed"] == 2)]
    pooled = math.sqrt((rows["rmse"] ** 2 * rows["n_obs_test"]).sum() / rows["n_obs_test"].sum())
    repeat = analysis.variants[0].repeat
    assert repeat is not None and repeat.n_partitions == 2 and repeat.n_seeds == 3
    a = table[table["variant"] == "a"]
    grid = a.assign(sse=a["rmse"] ** 2 * a["n_obs_test"]).groupby(["repeat", "seed"])
    expected = np.sqrt(grid["sse"].sum() / grid["n_obs_test"].sum())
    assert expected.loc[(1, 2)] == pytest.approx(pooled)
    assert repeat.mean == pytest.approx(expected.mean())
    assert analyse(results(repeats=1), OPTIONS).variants[0].repeat is None


def test_failed_cells_stop_the_analysis_unless_unbalanced_is_allowed() -> None:
    table = results()
    table.loc[(table["variant"] == "b") & (table["repeat"] == 1) & (table["fold"] == 2) & (table["seed"] == 3),
              ["status", "rmse"]] = ["failed", np.nan]
    with pytest.raises(ValueError, match=r"1 of 36 cross-validation runs failed, so the grid is unbalanced: "
                                         r"b repeat 1 fold 2 seed 3; .*--allow-unbalanced"):
        analyse(table, OPTIONS)
    analysis = analyse(table, AnalysisOptions(n_folds=3, replicates=200, allow_unbalanced=True))
    a, b = analysis.variants
    assert a.fold.method == "anova" and b.fold.method == "reml" and b.bootstrap is None
    assert analysis.missing_cells == ("b repeat 1 fold 2 seed 3",)
    assert analysis.warnings[0] == "1 failed cells: variance components by REML instead of ANOVA"
    assert analysis.paired[0].difference.method == "reml" and analysis.paired[0].difference.n_cells == 17


def test_seeds_not_crossed_with_partitions_are_refused_unless_nested() -> None:
    table = results()
    shifted = (table["repeat"] == 1) & (table["fold"] == 0)
    table.loc[shifted, "seed"] += 10  # that partition ran other seeds
    with pytest.raises(ValueError, match=r"a: seeds are not crossed with partitions \(partition 0/0 has seeds "
                                         r"\[1, 2, 3\], partition 1/0 has \[11, 12, 13\]\)"):
        analyse(table, OPTIONS)
    nested = analyse(table, AnalysisOptions(design="nested", n_folds=3, replicates=200))
    assert nested.variants[0].fold.design == "nested" and math.isnan(nested.variants[0].fold.components.seed)
    with pytest.raises(ValueError, match="at least 2 seeds per partition"):
        analyse(results(seeds=(1,)), OPTIONS)
    with pytest.raises(ValueError, match="miss column"):
        analyse(table.drop(columns=["status"]), OPTIONS)
    with pytest.raises(ValueError, match="unknown design 'split-plot'"):
        AnalysisOptions(design="split-plot")


def test_variance_file_is_strict_json_with_shares_and_the_caveat(tmp_path: Path) -> None:
    analysis = analyse(results(), OPTIONS)
    path = write_analysis(tmp_path / VARIANCE_FILE, analysis, {"basin": "tiny", "mask_resampled": True})
    values = json.loads(path.read_text())
    fold = values["variants"]["a"]["fold"]
    assert set(fold["components"]) >= {"partition", "seed", "residual", "training", "total", "shares"}
    assert fold["components"]["shares"]["partition"] + fold["components"]["shares"]["training"] == pytest.approx(1)
    assert values["settings"]["mask_resampled"] is True and "Bengio & Grandvalet" in values["caveat"]
    assert values["variants"]["a"]["bootstrap"]["seed"] == 0 and values["paired"][0]["a"] == "a"
    assert not list(tmp_path.glob(".*.tmp"))
