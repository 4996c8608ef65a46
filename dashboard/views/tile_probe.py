"""Finds out in the browser whether the tile basemap can be loaded (the browser may be offline).

Offline, Bokeh's tile renderer keeps retrying failed tiles, and while it does, later layout
changes sent by the server (switching tabs, replacing plots) are not applied in the page. So maps
start without tiles, this component loads one tile in the browser, and only when that works the
session turns the basemap on; offline the maps stay clean and the basemap toggle is disabled.
"""

from __future__ import annotations

import param
from panel.custom import JSComponent

from dashboard.views.maps import TILE_URL

#: One small tile of the basemap's server (zoom 0).
PROBE_URL = TILE_URL.replace("{Z}", "0").replace("{X}", "0").replace("{Y}", "0")


class TileProbe(JSComponent):
    """An invisible element that loads :data:`PROBE_URL` and reports whether it loaded."""

    url = param.String(default=PROBE_URL, doc="Image the browser tries to load.")
    timeout_ms = param.Integer(default=6000, bounds=(100, None), doc="Give up after this long, ms.")
    online = param.Boolean(default=None, allow_None=True,
                           doc="True once the image loaded, False when it failed or timed out, None before.")

    _esm = """
    export function render({ model }) {
      const done = (ok) => { if (model.online === null) { model.online = ok } }
      const image = new Image()
      image.onload = () => done(true)
      image.onerror = () => done(false)
      setTimeout(() => done(false), model.timeout_ms)
      image.src = model.url
      const el = document.createElement("span")
      el.style.display = "none"
      return el
    }
    """
