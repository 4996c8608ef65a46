"""The page's look without the internet: Panel's Fast design minus its Google Fonts stylesheet.

Panel's Fast design adds ``fonts.googleapis.com/css?family=Open+Sans`` to every page (twice: as a
design resource and as the document's font). Offline those requests fail, and the page looks
different from the same page online. Without them the page loads only from its own server (Bokeh
and Panel serve their JavaScript, CSS and icon fonts themselves), so a classroom without internet
sees exactly the page a connected one sees, in a local font stack (:data:`FONT`).
"""

from __future__ import annotations

from panel.io.resources import CDN_DIST
from panel.theme.fast import Fast

#: Font stack of the page: Open Sans where it is installed, else the system's interface font.
FONT = "'Open Sans', system-ui, 'Segoe UI', Roboto, 'Helvetica Neue', Arial, sans-serif"


class OfflineFast(Fast):
    """Panel's Fast design without web-font resources (a Design declares its resources in ``_resources``)."""

    # Relative resource paths resolve under the class's name, so Fast's own module is named by its bundled path
    # (Panel serves bundled files itself, CDN_DIST or not).
    _resources = {**Fast._resources, "font": {},
                  "js_modules": {**Fast._resources["js_modules"], "fast-design": f"{CDN_DIST}bundled/fast/js/fast_design.js"}}


#: Options of the page's ``FastListTemplate`` that keep it offline-identical.
TEMPLATE_OPTIONS = {"design": OfflineFast, "font": FONT}
#: Options of every choice button group (metric, colour scale, threshold, period): outlined buttons with the
#: chosen one filled, so the active choice stands out (a plain group showed all buttons alike).
CHOICE_BUTTONS = {"color": "primary", "variant": "outline"}
