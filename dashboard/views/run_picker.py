"""Load a cached run (from `msgl train`, `msgl compare` or this dashboard), listed with settings and test RMSE."""

from __future__ import annotations

import math

import panel as pn
import param
from panel.viewable import Viewer

from dashboard.state import AppState


class RunPicker(Viewer):
    """A list of the run cache's complete runs and a Load button."""

    state = param.ClassSelector(class_=AppState, doc="Session state shared by all views.")

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._select = pn.widgets.Select(label="Cached runs", sizing_mode="stretch_width", size=6)
        self._load = pn.widgets.Button(label="Load", color="primary", sizing_mode="stretch_width")
        self._refresh = pn.widgets.Button(label="Refresh list", sizing_mode="stretch_width")
        self._note = pn.pane.Markdown(styles={"font-size": "0.85em"}, margin=(0, 10))
        self._details = pn.pane.Markdown(styles={"font-size": "0.85em"}, margin=(0, 10))
        self._select.param.watch(self._describe, "value")
        self._load.on_click(self._on_load)
        self._refresh.on_click(lambda event: self.state.refresh_runs())
        self.state.param.watch(self._list, ["cached_runs", "skipped_runs", "results"])
        self._list()

    def _list(self, *events: object) -> None:
        runs = self.state.cached_runs
        options = {run.label(): str(run.path) for run in runs}
        current = None if self.state.results is None else str(self.state.results.run.path)
        value = current if current in options.values() else self._select.value
        self._select.param.update(options=options, value=value if value in options.values() else
                                  next(iter(options.values()), None))
        self._load.disabled = not options
        note = f"{len(runs)} run(s) in `{self.state.runs_folder}`."
        if not runs:
            note += " Train one, or run `msgl train` / `msgl compare`."
        if self.state.skipped_runs:
            note += f" {len(self.state.skipped_runs)} unreadable folder(s) skipped: " + "; ".join(self.state.skipped_runs[:3])
        self._note.object = note
        self._describe()

    def _describe(self, *events: object) -> None:
        run = next((r for r in self.state.cached_runs if str(r.path) == self._select.value), None)
        if run is None:
            self._details.object = ""
            return
        cfg, overall, training = run.config, run.metrics.fine.overall, run.metrics.training
        best = "?" if training is None else training.best_epoch
        rmse = f"{overall.rmse:.2f} °C" if math.isfinite(overall.rmse) else "n/a"
        held = f", hold-out segments {', '.join(map(str, cfg.holdout_segments))}" if cfg.holdout_segments else ""
        self._details.object = (
            f"**{run.path.name}**  \n{cfg.variant} on **{cfg.basin}**, ρ = {cfg.sparsity:g}, seed {cfg.seed}, "
            f"{cfg.epochs} epochs (best {best}), window {cfg.window} d, lr {cfg.learning_rate:g}{held}. "
            f"Test RMSE **{rmse}** on {overall.n_obs:,} observations of the gauged reaches.")

    def _on_load(self, event: object) -> None:
        if self._select.value:
            self.state.load(self._select.value)

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self._select, self._details, pn.Row(self._load, self._refresh), self._note,
                         sizing_mode="stretch_width")
