"""Progress of the background training: bar, epoch, loss, validation RMSE (°C), cancel."""

from __future__ import annotations

import holoviews as hv
import panel as pn
import param
from panel.viewable import Viewer

from dashboard.jobs import Progress
from dashboard.state import AppState

#: How often the page polls the training job, ms.
POLL_MS = 500


class TrainingProgress(Viewer):
    """Polls the session's training job from a periodic callback (the worker never touches widgets)."""

    state = param.ClassSelector(class_=AppState, doc="Session state shared by all views.")

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._bar = pn.indicators.Progress(value=0, max=1, sizing_mode="stretch_width", bar_color="primary")
        self._text = pn.pane.Markdown(styles={"font-size": "0.85em"}, margin=(0, 10))
        self._cancel = pn.widgets.Button(label="Cancel training", color="warning", sizing_mode="stretch_width")
        self._cancel.on_click(lambda event: self.state.cancel())
        self._curve = pn.pane.HoloViews(linked_axes=False, visible=False, sizing_mode="stretch_width")
        self._epochs_drawn = -1
        self._poller: pn.io.callbacks.PeriodicCallback | None = None
        self._layout = pn.Column(self._bar, self._text, self._cancel, self._curve, visible=False,
                                 sizing_mode="stretch_width")
        self.state.param.watch(self._job_changed, "job")
        self.state.param.watch(self._show, "progress")

    def _job_changed(self, event: param.parameterized.Event) -> None:
        if event.new is not None and self._poller is None:
            self._poller = pn.state.add_periodic_callback(self._tick, period=POLL_MS)

    def _tick(self) -> None:
        if not self.state.poll() and self._poller is not None:
            self._poller.stop()
            self._poller = None

    def _show(self, event: param.parameterized.Event) -> None:
        p: Progress | None = event.new
        if p is None:
            self._layout.visible = False
            return
        self._layout.visible = True
        running = not p.finished
        if p.status in ("queued", "preparing"):
            self._bar.param.update(value=-1, active=True)
        else:
            self._bar.max = max(p.epochs, 1)  # before the value, which must stay within it
            self._bar.param.update(value=min(p.epoch, p.epochs), active=False,
                                   bar_color={"done": "success", "failed": "danger", "cancelled": "warning"}.get(p.status, "primary"))
        cancelling = self.state.job is not None and self.state.job.cancelling
        self._text.object = p.summary() + (" · stopping after this epoch" if cancelling and running else "")
        self._cancel.param.update(visible=running, disabled=cancelling)
        if len(p.history) != self._epochs_drawn:
            self._epochs_drawn = len(p.history)
            self._draw_history(p)

    def _draw_history(self, p: Progress) -> None:
        rows = [(epoch, val) for epoch, _, val in p.history if val == val]
        if len(rows) < 2:
            self._curve.visible = False
            return
        curve = hv.Curve(rows, "epoch", "validation RMSE (°C)") * hv.Scatter(rows, "epoch", "validation RMSE (°C)")
        self._curve.object = curve.opts(hv.opts.Curve(color="#1f77b4"), hv.opts.Scatter(size=5, color="#1f77b4"),
                                        hv.opts.Overlay(height=160, responsive=True, toolbar=None,
                                                        title="validation RMSE by epoch"))
        self._curve.visible = True

    def __panel__(self) -> pn.viewable.Viewable:
        return self._layout
