"""Progress of the background training: bar, epoch, loss, validation RMSE by epoch (°C), cancel, and the
other trainings running on this server."""

from __future__ import annotations

import holoviews as hv
import pandas as pd
import panel as pn
import param
from panel.viewable import Viewer

from dashboard.jobs import Progress, running_jobs
from dashboard.state import AppState

#: How often the page polls its training job, ms.
POLL_MS = 500
#: How often the page looks for other trainings on the server, ms.
SERVER_POLL_MS = 3000
#: Columns of the validation curve's data.
CURVE_COLUMNS = ["epoch", "rmse", "stage"]


def validation_curve(data: pd.DataFrame) -> hv.Overlay:
    """Validation RMSE (°C) by epoch, points coloured by training stage; ``data`` has :data:`CURVE_COLUMNS`."""
    return (hv.Curve(data, "epoch", ["rmse", "stage"]).opts(color="#1f77b4")
            * hv.Scatter(data, "epoch", ["rmse", "stage"]).opts(
                size=6, color="stage", cmap="Category10", tools=["hover"],
                hover_tooltips=[("epoch", "@epoch"), ("stage", "@stage"), ("RMSE", "@rmse{0.00} °C")]))


def server_activity(jobs: list, own: object) -> str:
    """One line naming the server's other trainings (variant, basin, ρ, progress), "" when there are none."""
    others = [job for job in jobs if job is not own]
    if not others:
        return ""
    items = [f"{job.cfg.variant} on {job.cfg.basin} (ρ {job.cfg.sparsity * 100:g} %): {job.progress().summary()}"
             for job in others]
    return "**Also training on this server:** " + "; ".join(items) + ". Choose the same settings to follow one."


class TrainingProgress(Viewer):
    """Polls the session's training job from a periodic callback (the worker never touches widgets)."""

    state = param.ClassSelector(class_=AppState, doc="Session state shared by all views.")

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._bar = pn.indicators.Progress(value=0, max=1, sizing_mode="stretch_width", bar_color="primary")
        self._text = pn.pane.Markdown(styles={"font-size": "0.85em"}, margin=(0, 10))
        self._cancel = pn.widgets.Button(label="Cancel training", color="warning", sizing_mode="stretch_width")
        self._cancel.on_click(lambda event: self.state.cancel())
        # The curve is drawn once, on the second validated epoch, and then fed through a Pipe: replacing a
        # plot from the periodic callback failed in Bokeh (stylesheet validation) and drew it only after
        # training ended; building it with the page cost every first render for a plot few pages show.
        self._pipe = hv.streams.Pipe(data=pd.DataFrame(columns=CURVE_COLUMNS))
        self._curve = pn.Column(visible=False, margin=0, sizing_mode="stretch_width")
        self._epochs_drawn = -1
        self._poller: pn.io.callbacks.PeriodicCallback | None = None
        self._server = pn.pane.Markdown(styles={"font-size": "0.85em"}, margin=(0, 10))
        self._layout = pn.Column(self._bar, self._text, self._cancel, self._curve, visible=False,
                                 sizing_mode="stretch_width")
        self.state.param.watch(self._job_changed, "job")
        self.state.param.watch(self._show, "progress")
        self._look_around()
        if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
            pn.state.add_periodic_callback(self._look_around, period=SERVER_POLL_MS)
        if self.state.job is not None:  # the session follows a training that was running when it opened
            self._job_changed()
            self._show()

    def _look_around(self) -> None:
        self._server.object = server_activity(running_jobs(), self.state.job)

    def _job_changed(self, *events: object) -> None:
        if self.state.job is not None and self._poller is None and pn.state.curdoc is not None:
            self._poller = pn.state.add_periodic_callback(self._tick, period=POLL_MS)

    def _tick(self) -> None:
        if not self.state.poll() and self._poller is not None:
            self._poller.stop()
            self._poller = None

    def _show(self, *events: object) -> None:
        p: Progress | None = self.state.progress
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
        rows = pd.DataFrame([(epoch, val, stage) for epoch, _, val, stage in p.history if val == val],
                            columns=CURVE_COLUMNS)
        self._pipe.send(rows)
        if len(rows) >= 2 and not self._curve.objects:
            self._curve.append(self._curve_pane())
        self._curve.visible = len(rows) >= 2

    def _curve_pane(self) -> pn.pane.HoloViews:
        curve = hv.DynamicMap(validation_curve, streams=[self._pipe]).opts(hv.opts.Overlay(
            height=200, responsive=True, toolbar=None, title="Validation RMSE by epoch", ylabel="RMSE (°C)",
            show_legend=False, backend_opts={"plot.min_border_left": 50}))
        return pn.pane.HoloViews(curve, linked_axes=False, sizing_mode="stretch_width")

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self._layout, self._server, sizing_mode="stretch_width")
