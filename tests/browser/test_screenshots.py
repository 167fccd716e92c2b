"""Each page in light and dark, as PNGs: into ``KAIZEN_SCREENSHOTS`` (``make screenshots`` rewrites
``docs/screenshots/``, which the README shows), else into the test's own folder. One store is enough
for pictures: the other tests hold both stores to the same numbers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from devstack.gateway import GatewayProcess
from tests.browser import seed
from tests.browser.conftest import new_context, sign_in
from tests.browser.test_accessibility import refused


@pytest.mark.parametrize("empty_url", ["sqlite"], indirect=True)
def test_every_page_is_photographed_in_light_and_dark(
    browser: Browser, gateway: GatewayProcess, store_url: str, axe_script: str, tmp_path: Path
) -> None:
    folder = Path(os.environ.get("KAIZEN_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    seed.seed_loop(gateway.url, store_url, requests=60)
    written = []
    for scheme in ("light", "dark"):
        context = new_context(browser, gateway, axe_script, scheme)
        page = context.new_page()
        page.set_viewport_size({"width": 1100, "height": 800})
        page.goto("/ui/sign-in")
        written.append(folder / f"sign-in-{scheme}.png")
        page.screenshot(path=written[-1])
        refused(page)
        written.append(folder / f"refused-{scheme}.png")
        page.screenshot(path=written[-1])
        sign_in(page)
        written.append(folder / f"policies-{scheme}.png")
        page.screenshot(path=written[-1])
        page.goto(f"/ui/loop/{seed.NAMESPACE}/{seed.POLICY}")
        expect(page.locator("figure.chart svg")).to_have_count(3)
        written.append(folder / f"dashboard-{scheme}.png")
        page.screenshot(path=written[-1], full_page=True)
        context.close()
    assert all(path.stat().st_size > 10_000 for path in written), written
