"""Repeated spatial K-fold cross-validation × seeds with a variance decomposition (``msgl cv``, docs/cv.md).

* :mod:`~msgl_core.cv.folds`: spatial folds of NHM segments that respect the river tree, ``folds.json``;
* :mod:`~msgl_core.cv.variance`: crossed and nested random-effects components, intervals, paired comparisons;
* :mod:`~msgl_core.cv.analysis`: the table of runs → ``variance_components.json``;
* :mod:`~msgl_core.cv.run`: the grid of (variant, repeat, fold, seed) runs through ``msgl compare``'s runner.
* :mod:`~msgl_core.cv.outputs`: the written files read back into the tables the dashboard's tab shows.
"""
