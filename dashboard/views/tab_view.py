"""Base class of views that live in a tab: they redraw only while their tab is shown."""

from __future__ import annotations

from typing import ClassVar

import param
from panel.viewable import Viewer

from dashboard.state import AppState


class TabView(Viewer):
    """A view of one main tab (``tab``, a value of :attr:`AppState.view`).

    Subclasses implement :meth:`draw` and call :meth:`refresh` when their inputs change; while
    the tab is hidden the redraw is postponed until it is shown, so hidden tabs cost nothing.
    """

    state = param.ClassSelector(class_=AppState, doc="Session state shared by all views.")
    tab: ClassVar[str] = ""

    def __init__(self, **params: object) -> None:
        super().__init__(**params)
        self._stale = True
        self.state.param.watch(self._shown, "view")

    def draw(self) -> None:
        """Redraw from the state (implemented by subclasses)."""
        raise NotImplementedError

    def refresh(self, *events: object) -> None:
        """Redraw now if the tab is shown, else when it is next shown."""
        if self.state.view == self.tab:
            self._stale = False
            self.draw()
        else:
            self._stale = True

    def _shown(self, event: param.parameterized.Event) -> None:
        if event.new == self.tab and self._stale:
            self.refresh()
