"""Load a cached run (from `msgl train`, `msgl compare` or this dashboard), listed with settings and test RMSE.

The browser sees run folder names only (relative to the run cache), never a server path; they are
resolved to runs here. Unreliable runs (:func:`msgl_core.reliability`) are marked in the list and say why.
"""

from __future__ import annotations

import math
from pathlib import Path

import panel as pn
import param
from panel.viewable import Viewer

from dashboard.state import AppState
from msgl_core import Reliability, Run

#: Marks an unreliable run in lists and tables.
UNRELIABLE = "⚠ unreliable"
#: Colour of the text that explains why a run is unreliable (amber, never green).
WARNING_COLOUR = "#a15c00"


def option_label(run: Run, verdict: Reliability) -> str:
    """A run's line in a list: :meth:`msgl_core.Run.label`, prefixed by :data:`UNRELIABLE` when ``verdict`` says so."""
    return run.label() if verdict.ok else f"{UNRELIABLE} · {run.label()}"


def verdict_markdown(verdict: Reliability) -> str:
    """Why a run is unreliable, as coloured Markdown/HTML ("" for a reliable run)."""
    if verdict.ok:
        return ""
    return f'<span style="color:{WARNING_COLOUR}">**{UNRELIABLE}**: {"; ".join(verdict.reasons)}.</span>'


def without_folder(text: str, folder: Path) -> str:
    """``text`` with the server path of ``folder`` replaced by the folder's name."""
    for prefix in {str(folder.resolve()), str(folder)}:
        text = text.replace(prefix, folder.name)
    return text


class RunPicker(Viewer):
    """A list of the run cache's complete runs (unreliable ones marked) and a Load button."""

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

    def _runs(self) -> dict[str, Run]:
        """The cached runs by folder name (the values sent to the browser)."""
        return {run.path.name: run for run in self.state.cached_runs}

    def _list(self, *events: object) -> None:
        runs = self._runs()
        options = {option_label(run, self.state.resources.reliability(run)): name for name, run in runs.items()}
        current = None if self.state.results is None else self.state.results.name
        value = current if current in runs else self._select.value
        self._select.param.update(options=options, value=value if value in runs else next(iter(runs), None))
        self._load.disabled = not runs
        folder = self.state.runs_folder
        note = f"{len(runs)} run(s) in the run cache `{folder.name}`."
        if not runs:
            note += " Train one, or run `msgl train` / `msgl compare`."
        if self.state.skipped_runs:
            note += (f" {len(self.state.skipped_runs)} unreadable folder(s) skipped: "
                     + "; ".join(without_folder(text, folder) for text in self.state.skipped_runs[:3]))
        self._note.object = note
        self._describe()

    def _describe(self, *events: object) -> None:
        run = self._runs().get(self._select.value)
        if run is None:
            self._details.object = ""
            return
        cfg, overall, training = run.config, run.metrics.fine.overall, run.metrics.training
        best = "?" if training is None else training.best_epoch
        rmse = f"{overall.rmse:.2f} °C" if math.isfinite(overall.rmse) else "n/a"
        held = f", hold-out segments {', '.join(map(str, cfg.holdout_segments))}" if cfg.holdout_segments else ""
        verdict = verdict_markdown(self.state.resources.reliability(run))
        self._details.object = (
            f"**{run.path.name}**  \n{cfg.variant} on **{cfg.basin}**, ρ = {cfg.sparsity:g}, seed {cfg.seed}, "
            f"{cfg.epochs} epochs (best {best}), window {cfg.window} d, lr {cfg.learning_rate:g}{held}. "
            f"Test RMSE **{rmse}** on {overall.n_obs:,} observations of the gauged reaches."
            + (f"  \n{verdict}" if verdict else ""))

    def _on_load(self, event: object) -> None:
        run = self._runs().get(self._select.value)
        if run is not None:
            self.state.load(run.path)

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self._select, self._details, pn.Row(self._load, self._refresh), self._note,
                         sizing_mode="stretch_width")
