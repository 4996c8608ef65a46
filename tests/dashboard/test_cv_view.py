"""The cross-validation tab on a tiny ``msgl cv`` grid: it reads the files and never trains."""

from __future__ import annotations

from pathlib import Path

import pytest
from bokeh.document import Document

from dashboard.resources import Resources
from dashboard.state import AppState
from dashboard.views.cross_validation import CrossValidation, fold_map_values
from msgl_core import PARENT_SEGMENT
from msgl_core.config import RunConfig
from msgl_core.cv.analysis import AnalysisOptions
from msgl_core.cv.folds import FoldRules
from msgl_core.cv.outputs import cv_grids, read_cv
from msgl_core.cv.run import CVPlan, run_cv
from msgl_core.data import MultiscaleData


@pytest.fixture(scope="module")
def comparisons(dash_data: MultiscaleData, base_config: RunConfig, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("comparisons")
    plan = CVPlan(base_config.with_overrides(epochs=1), ("remap", "rgcn_fine"), (1, 2), "segment", 2, 1, 0,
                  rules=FoldRules(1, 1, 1.0), analysis=AnalysisOptions(replicates=50))
    run_cv(plan, dash_data, root / "drb" / "cv_rho1", root / "runs", workers=0)
    (root / "rancocas" / "cv_rho0.01").mkdir(parents=True)  # a grid that wrote nothing yet: not listed
    return root


def _view(resources: Resources, runs: Path, comparisons: Path) -> CrossValidation:
    state = AppState(resources, None, runs, comparisons_dir=comparisons)
    state.view = "cv"
    view = CrossValidation(state=state)
    view.__panel__().server_doc(Document())
    return view


def test_the_tab_shows_the_grid_tables_and_maps(resources: Resources, comparisons: Path) -> None:
    view = _view(resources, comparisons / "runs", comparisons)
    assert cv_grids(comparisons) == ["drb/cv_rho1"] and view._domain.value == "drb/cv_rho1"
    assert list(view._means.value["variant"]) == ["remap", "rgcn_fine"]
    assert list(view._paired.value[["a", "b"]].iloc[0]) == ["remap", "rgcn_fine"]
    assert "**8 runs** of remap, rgcn_fine · 2 folds × 1 repeat(s) × 2 seed(s)" in view._note.object
    assert len(view._bars.objects) == 1 and len(view._maps.objects) == 2
    view._variant.value = "rgcn_fine"
    assert "rgcn_fine: out-of-fold test RMSE" in str(view._maps.objects[1].object.opts.get().kwargs["title"])


def test_fold_map_values_follow_folds_json(resources: Resources, comparisons: Path) -> None:
    outputs = read_cv(comparisons / "drb" / "cv_rho1")
    reaches = resources.domain_reaches("drb")
    folds = fold_map_values(outputs, reaches)
    fold_of = outputs.folds[0].fold_of()
    expected = [fold_of[int(s)] + 1 if int(s) in fold_of else None for s in reaches[PARENT_SEGMENT]]
    assert [None if f != f else int(f) for f in folds["fold"]] == expected


def test_no_outputs_says_how_to_make_them(resources: Resources, tmp_path: Path) -> None:
    view = _view(resources, tmp_path / "runs", tmp_path)
    assert view._domain.options == [] and "Run `msgl cv --basin B" in view._note.object
    assert view._means.value.empty and view._maps.objects == []
