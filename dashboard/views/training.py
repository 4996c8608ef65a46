"""Progress of the background training: bar, epoch, loss, validation RMSE by epoch (°C), cancel, and the
other trainings running on this server."""

from __future__ import annotations

import panel as pn
import param
from bokeh.models import ColumnDataSource, HoverTool
from bokeh.palettes import Category10
from bokeh.plotting import figure
from panel.viewable import Viewer

from dashboard.jobs import Progress, running_jobs
from dashboard.state import AppState

#: How often the page polls its training job, ms.
POLL_MS = 500
#: How often the page looks for other trainings on the server, ms.
SERVER_POLL_MS = 3000
#: Columns of the validation curve's data.
CURVE_COLUMNS = ["epoch", "rmse", "stage"]


def validation_curve(source: ColumnDataSource) -> figure:
    """Validation RMSE (°C) by epoch from ``source`` (:data:`CURVE_COLUMNS` and ``color``, the stage's colour): a
    line with points coloured by training stage. Its ranges follow the data as epochs arrive."""
    fig = figure(height=200, sizing_mode="stretch_width", toolbar_location=None, tools="",
                 title="Validation RMSE by epoch", x_axis_label="epoch", y_axis_label="RMSE (°C)", min_border_left=50)
    fig.line("epoch", "rmse", source=source, color="#1f77b4")
    points = fig.scatter("epoch", "rmse", source=source, size=6, color="color")
    fig.add_tools(HoverTool(renderers=[points], tooltips=[("epoch", "@epoch"), ("stage", "@stage"),
                                                          ("RMSE", "@rmse{0.00} °C")]))
    return fig


def curve_data(history: list[tuple[int, float, float, str]]) -> dict[str, list]:
    """The validated epochs of a training's ``history`` ((epoch, loss, validation RMSE °C, stage) rows) as
    :func:`validation_curve` data, one colour per stage in order of appearance."""
    rows = [(epoch, val, stage) for epoch, _, val, stage in history if val == val]
    stages = list(dict.fromkeys(stage for _, _, stage in rows))
    colors = Category10[10]
    return {**{name: [row[i] for row in rows] for i, name in enumerate(CURVE_COLUMNS)},
            "color": [colors[stages.index(stage) % len(colors)] for _, _, stage in rows]}


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
        # The curve is drawn once, on the second validated epoch, and then fed new rows: replacing a plot from
        # the periodic callback failed in Bokeh (stylesheet validation) and drew it only after training ended;
        # building it with the page cost every first render for a plot few pages show.
        self._source = ColumnDataSource(curve_data([]))
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
        data = curve_data(p.history)
        self._source.data = data
        if len(data["epoch"]) >= 2 and not self._curve.objects:
            self._curve.append(pn.pane.Bokeh(validation_curve(self._source), sizing_mode="stretch_width"))
        self._curve.visible = len(data["epoch"]) >= 2

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self._layout, self._server, sizing_mode="stretch_width")
