"""Offline the page must look as it does online: every resource it loads comes from its own server."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest

from dashboard import browser as chromium
from dashboard.app import create_app
from dashboard.resources import Resources
from dashboard.views.tile_probe import PROBE_URL
from msgl_core import RunConfig

PROBLEM = chromium.chromium_problem()


def test_the_page_declares_no_resource_outside_its_server(resources: Resources, base_config: RunConfig,
                                                          runs_dir: Any) -> None:
    page = create_app(resources=resources, base=base_config, runs_dir=runs_dir)
    declared = page.resolve_resources(cdn=False)
    urls = [url for kind in ("css", "js", "js_modules") for url in declared[kind].values()]
    assert urls and not [u for u in urls if u.startswith(("http:", "https:", "//"))]


@pytest.mark.browser
@pytest.mark.skipif(bool(PROBLEM), reason=f"no headless browser: {PROBLEM}")
def test_every_request_of_the_page_goes_to_its_server(browser: Any, url: str) -> None:
    requests: list[str] = []
    page = chromium.new_page(browser)
    page.on("request", lambda request: requests.append(request.url))
    page.goto(url)
    chromium.wait_for_plot(page, "n_obs_days", 1)
    page.get_by_text("Errors", exact=True).click()
    page.wait_for_timeout(1000)
    # The one exception: the tile probe's single tile (the basemap stays off unless it loads).
    outside = [u for u in requests if urlsplit(u).hostname not in ("127.0.0.1", None) and u != PROBE_URL]
    assert len(requests) > 10 and not outside, outside
    page.context.close()
