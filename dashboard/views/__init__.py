"""The dashboard's views: one :class:`panel.viewable.Viewer` per file, each reading :class:`dashboard.state.AppState`."""

import holoviews as hv

hv.renderer("bokeh")  # loads HoloViews' Bokeh backend (needed before any .opts), without notebook output
