"""msgl: Multi-Scale Graph Learning for fine-scale stream temperature in the Delaware River Basin.

Fan et al., "Multi-Scale Graph Learning for Anti-Sparse Downscaling", AAAI-25, arXiv 2505.01948.

The public API is the names in ``__all__``, importable from ``msgl_core`` itself (the dashboard and
the benchmarks import nothing else). They load on first use, so ``import msgl_core`` stays light.

Example:
    >>> import msgl_core
    >>> cfg = msgl_core.RunConfig(basin="rancocas", sparsity=0.01, epochs=10)
    >>> cfg.variant in msgl_core.variant_names()
    True
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("msgl")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0.0.0+local"

#: Public name → module that defines it.
_EXPORTS = {
    **dict.fromkeys(("RunConfig", "Period", "DEVICES", "WHOLE_BASIN", "RUN_FORMAT", "METADATA_KEYS"), "config"),
    **dict.fromkeys(("TIME", "SEGMENT", "REACH", "PARENT_SEGMENT", "DAY_OF_YEAR"), "dims"),
    **dict.fromkeys(("DataError",), "errors"),
    **dict.fromkeys(("MultiscaleData", "MapLayers", "PRESETS", "available_presets", "load_dataset",
                     "build_dataset", "map_layers", "reach_table", "subnetwork"), "data"),
    **dict.fromkeys(("check_domain",), "data.basins"),
    **dict.fromkeys(("SPLITS", "SPLIT_NAMES", "period_mask", "split_days", "split_labels"), "data.splits"),
    **dict.fromkeys(("ObservationCounts", "observation_counts", "prepare"), "data.dataset"),
    **dict.fromkeys(("kept_count",), "data.masking"),
    **dict.fromkeys(("Scores", "skill", "MIN_GROUP_OBS"), "evaluate.metrics"),
    **dict.fromkeys(("monthly_scores",), "evaluate.report"),
    **dict.fromkeys(("days_above", "days_above_column", "expected_days_above", "expected_days_above_column",
                     "climatology", "anomaly"), "evaluate.management"),
    **dict.fromkeys(("RunMetrics", "SkillSection", "TrainingSummary"), "evaluate.record"),
    **dict.fromkeys(("Reliability", "reliability", "MIN_KEPT_OBS"), "evaluate.reliability"),
    **dict.fromkeys(("Variant", "Stage", "FAMILIES", "get_variant", "variant_names", "variants_by_family"), "registry"),
    **dict.fromkeys(("EpochReport", "TrainingDiverged"), "train.loop"),
    **dict.fromkeys(("resolve_device", "set_threads"), "train.runtime"),
    **dict.fromkeys(("Run", "RunListing", "train_or_load", "load_run", "list_runs", "run_path", "runs_root",
                     "is_complete", "check_output_file", "write_predictions", "METRICS", "PREDICTIONS", "HISTORY",
                     "CONFIG"), "runs"),
    **dict.fromkeys(("RunOutcome", "run_outcome", "grid", "run_grid", "summarise", "format_table", "ComparisonOutputs",
                     "read_comparison", "comparisons_root"), "compare"),
    **dict.fromkeys(("SegmentTree", "FoldRules", "Fold", "Folds", "SCHEMES", "segment_tree", "make_folds",
                     "write_folds", "read_folds"), "cv.folds"),
    **dict.fromkeys(("Interval", "MeanSquares", "Components", "Shares", "Decomposition", "BootstrapIntervals",
                     "PairedComparison", "anova_decomposition", "reml_decomposition", "pigeonhole_bootstrap",
                     "paired_comparison", "nadeau_bengio_interval", "residual_interval"), "cv.variance"),
    **dict.fromkeys(("AnalysisOptions", "VariantAnalysis", "CVAnalysis", "analyse", "write_analysis"), "cv.analysis"),
    **dict.fromkeys(("CVPlan", "CVCell", "CVResult", "plan_folds", "cv_cells", "run_cv"), "cv.run"),
    **dict.fromkeys(("setup_difference", "prior_learned_from"), "ensemble_runs"),
    **dict.fromkeys(("exceedance_variable", "quantile_variable"), "evaluate.ensemble"),
    **dict.fromkeys(("THRESHOLDS",), "evaluate.probabilistic"),
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'msgl_core' has no attribute {name!r}")
    value = getattr(import_module(f"msgl_core.{_EXPORTS[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return __all__
