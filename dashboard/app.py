"""The dashboard page: composes the state and the views (no logic of its own).

Run it with ``msgl serve`` (see :func:`serve`) or ``panel serve dashboard/app.py``. Data and run
locations follow msgl_core: ``$MSGL_DATA_DIR``, ``$MSGL_CACHE_DIR``, ``$MSGL_RUNS_DIR`` (else
``data/drb`` or ``../shared/data/drb``, ``~/.cache/msgl`` and ``./runs``).
"""

from __future__ import annotations

import gc
import logging
from pathlib import Path

import panel as pn
import param
from bokeh.core.validation import silence
from bokeh.core.validation.warnings import FIXED_SIZING_MODE
from bokeh.document import Document
from bokeh.settings import settings as bokeh_settings
from panel.viewable import Viewer

from dashboard import share
from dashboard.design import TEMPLATE_OPTIONS
from dashboard.resources import Resources, load_resources
from dashboard.state import VIEWS, AppState
from dashboard.views.calibration import Calibration
from dashboard.views.compare import CompareRuns
from dashboard.views.controls import RunControls
from dashboard.views.cross_validation import CrossValidation
from dashboard.views.day_map import DayMap
from dashboard.views.downloads import Downloads
from dashboard.views.error_map import ErrorMap
from dashboard.views.glossary import Glossary
from dashboard.views.management import ManagementMap
from dashboard.views.network_map import NetworkMap
from dashboard.views.reach_detail import ReachDetail
from dashboard.views.run_picker import RunPicker
from dashboard.views.tile_probe import TileProbe
from dashboard.views.training import TrainingProgress
from msgl_core import RunConfig

log = logging.getLogger(__name__)
# Maps set their frame size (equal x/y scale) rather than the figure's; Bokeh's warning about that is noise.
silence(FIXED_SIZING_MODE, True)
TITLE = "MSGL · Delaware River Basin stream temperature"
#: How long a new page's session waits for its browser to connect, ms. Under a burst of pages the server answers
#: every page request before the first websocket; with Bokeh's 15 s a session whose page had arrived could be
#: discarded first, and the page then opened without its shared link's view.
UNUSED_SESSION_MS = 120_000
#: Garbage-collector thresholds of a serving process (generation 0 allocations, then generation 1 and 2 counts).
GC_THRESHOLD = (50_000, 20, 100)
#: The view of each tab (:data:`dashboard.state.VIEWS`).
VIEW_CLASSES: dict[str, type[Viewer]] = {
    "network": NetworkMap, "day": DayMap, "errors": ErrorMap, "calibration": Calibration, "compare": CompareRuns,
    "cv": CrossValidation,
    "management": ManagementMap, "downloads": Downloads}
TAB_TITLES = {"network": "Network", "day": "Day map", "errors": "Errors", "calibration": "Calibration",
              "compare": "Compare", "cv": "Cross-validation",
              "management": "Days above 20/25 °C", "downloads": "Download"}


def _report_exception(error: BaseException) -> None:
    """Last-resort handler for errors in Panel callbacks: a short notification, never a traceback."""
    log.exception("dashboard callback failed", exc_info=error)
    if pn.state.notifications is not None:
        pn.state.notifications.error(f"Something went wrong: {type(error).__name__}: {error}", duration=8000)


def _extension() -> None:
    pn.extension("tabulator", notifications=True, exception_handler=_report_exception,
                 disconnect_notification="Connection to the server lost; reload the page.")


def create_app(resources: Resources | None = None, base: RunConfig | None = None, runs_dir: str | Path | None = None,
               data_dir: str | Path | None = None, cache_dir: str | Path | None = None,
               comparisons_dir: str | Path | None = None) -> pn.template.BaseTemplate:
    """The page of one browser session: fresh :class:`AppState` and views over shared read-only resources.

    Args:
        resources: preloaded data (default: :func:`load_resources` of ``data_dir``/``cache_dir``, cached per process).
        base: config the run settings start from (default: msgl_core's defaults with 10 epochs).
        runs_dir: the run cache (default: ``$MSGL_RUNS_DIR``, else ``./runs``).
        comparisons_dir: ``msgl compare`` outputs (default: ``$MSGL_COMPARISONS_DIR``, else ``./comparisons``).
    """
    _extension()
    try:
        resources = resources or load_resources(None if data_dir is None else str(data_dir),
                                                None if cache_dir is None else str(cache_dir))
        state = AppState(resources, base, runs_dir,
                         comparisons_dir=None if comparisons_dir is None else Path(comparisons_dir))
    except (OSError, ValueError) as error:
        log.exception("dashboard could not start")
        return pn.template.FastListTemplate(title=TITLE, **TEMPLATE_OPTIONS, main=[pn.pane.Alert(
            f"**The dashboard could not load the DRB data.** {error}  \nSee the README (data) and `msgl data info`.",
            alert_type="danger")])
    if pn.state.curdoc is not None and pn.state.curdoc.session_context is not None:
        pn.state.on_session_destroyed(lambda context: state.leave())
        _share_url(state)
    return Dashboard(state=state).template()


def _share_url(state: AppState) -> None:
    """Restore the session from the page's URL (a shared link, a reload, a theme change), then keep the URL
    up to date with the session's choices (see :mod:`dashboard.share`)."""
    location = pn.state.location
    if location is None:
        return
    problems = share.restore(state, share.raw_query(location.search))
    if problems:
        state.say("Some choices of this link could not be restored: " + "; ".join(problems), "warning")

    def push(*events: object) -> None:
        location.search = share.query_text(location.search, share.url_query(state))

    for target, names in share.watched(state):
        target.param.watch(push, names)
    pn.state.onload(push)  # once the browser's location is connected


class Dashboard(Viewer):
    """The page: settings, progress and run picker in the sidebar; message, tabs and reach panel in the main area."""

    state = param.ClassSelector(class_=AppState, doc="Session state shared by all views.")

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        state = self.state
        self.alert = pn.pane.Alert(state.param.alert, alert_type=state.param.alert_level,
                                   visible=state.param.alert.rx.bool(), sizing_mode="stretch_width")
        # A tab's view is made when the tab is first shown (a page that opens on the network builds no day map).
        self.views: dict[str, Viewer] = {}
        self._tab_areas = {key: pn.Column(sizing_mode="stretch_width", margin=0) for key in VIEWS}
        self.tabs = pn.Tabs(*[(TAB_TITLES[key], self._tab_areas[key]) for key in VIEWS], dynamic=True,
                            active=VIEWS.index(state.view), sizing_mode="stretch_width")
        self.tabs.param.watch(lambda event: setattr(state, "view", VIEWS[event.new]), "active")
        state.param.watch(self._make_view, "view")
        state.param.watch(self._show_tab, "view")
        self._make_view()
        self.reach = ReachDetail(state=state)
        self.probe = TileProbe(height=0, width=0, margin=0)
        self.probe.param.watch(lambda event: state.tiles_checked(event.new), "online")
        self.shown = pn.pane.Markdown(pn.bind(lambda results, check: state.shown_run_note(), state.param.results,
                                              state.param.check), sizing_mode="stretch_width", margin=(0, 10))
        self.sidebar = [pn.pane.Markdown("### Run settings"), RunControls(state=state), TrainingProgress(state=state),
                        pn.layout.Divider(), pn.pane.Markdown("### Load a cached run"), RunPicker(state=state),
                        pn.layout.Divider(), Glossary()]

    def _make_view(self, *events: object) -> None:
        key = self.state.view
        if key not in self.views:
            self.views[key] = VIEW_CLASSES[key](state=self.state)
            self._tab_areas[key].objects = [self.views[key]]

    def _show_tab(self, event: param.parameterized.Event) -> None:
        index = VIEWS.index(event.new)
        if self.tabs.active != index:
            pn.state.execute(lambda: setattr(self.tabs, "active", index), schedule=True)

    def template(self) -> pn.template.BaseTemplate:
        """The page as a Panel template."""
        # One root per area: Bokeh serialises each template root's references on its own, so 12 roots
        # cost the first render ~0.2 s more than 2.
        return pn.template.FastListTemplate(title=TITLE, **TEMPLATE_OPTIONS,
                                           sidebar=[pn.Column(*self.sidebar, sizing_mode="stretch_width")],
                                           main=[self.__panel__()], sidebar_width=340, main_layout=None,
                                           accent="#1f4e79")

    def __panel__(self) -> pn.viewable.Viewable:
        return pn.Column(self.probe, self.alert, self.shown, self.tabs, self.reach, sizing_mode="stretch_width")


def serve(port: int = 5006, address: str = "127.0.0.1", show: bool = False, runs_dir: str | Path | None = None,
          data_dir: str | Path | None = None, cache_dir: str | Path | None = None, base: RunConfig | None = None,
          threaded: bool = False, comparisons_dir: str | Path | None = None) -> object:
    """Serve the dashboard with a Bokeh/Panel server (blocks unless ``threaded``; returns the server).

    The data is loaded once before the server starts, so the first page opens quickly.
    """
    resources = load_resources(None if data_dir is None else str(data_dir), None if cache_dir is None else str(cache_dir))
    page = create_app(resources=resources, base=base, runs_dir=runs_dir, comparisons_dir=comparisons_dir)
    page.server_doc(Document())  # warm-up: imports, caches
    # The dataset, map geometry and imported modules live as long as the server: moved out of the garbage
    # collector's sight, a full collection no longer walks them (it took ~0.3 s, inside some page's request).
    # A page allocates ~10^5 objects that live as long as its session, so young collections run every
    # GC_THRESHOLD allocations instead of Python's 700 (0.87 s of collections over 20 pages, then 0.13 s).
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)
    # Bokeh's integrity checks of every new session's document are for developing a page (`panel serve
    # dashboard/app.py` and the tests keep them); served, they cost ~25 ms of every page.
    bokeh_settings.perform_document_validation.set_value(False)
    origins = sorted({f"{address}:{port}", f"localhost:{port}", f"127.0.0.1:{port}"})
    def app() -> pn.template.BaseTemplate:  # a function: Panel calls it once per browser session
        return create_app(resources=resources, base=base, runs_dir=runs_dir, comparisons_dir=comparisons_dir)

    return pn.serve({"/": app}, port=port, address=address, show=show, title=TITLE, websocket_origin=origins,
                    threaded=threaded, start=True, unused_session_lifetime_milliseconds=UNUSED_SESSION_MS)


if __name__.startswith("bokeh"):  # `panel serve dashboard/app.py`
    create_app().servable(title=TITLE)
