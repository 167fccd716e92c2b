"""The loop dashboard in a real Chromium, opened beside a running stack (the e2e loop, ``kaizen up``).

A person signs in with a reviewer token and leaves the page open; the helpers read its figures the
way ``tests/browser`` does (``data-figure`` / ``data-field``). ``window.notReloaded`` is set once on
opening: while it is still there, whatever the page shows arrived by its own polling.
Playwright's sync API keeps an event loop running in this thread while it is open, so it lives in
the ``with`` block of one test and no longer (see tests/browser/conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from playwright.sync_api import Locator, Page, expect, sync_playwright

from tests.browser.conftest import CHROMIUM

# A decision reaches the page after the operator's next look and the page's next 2-second poll;
# on a loaded two-core machine either may take a while.
DECISION_TIMEOUT_MS = 120_000


@contextmanager
def dashboard(gateway_url: str, token: str, namespace: str, policy: str) -> Iterator[Page]:
    with sync_playwright() as driver:
        browser = driver.chromium.launch(executable_path=CHROMIUM, headless=True)
        try:
            page = browser.new_context(base_url=gateway_url).new_page()
            page.set_default_timeout(30_000)
            page.goto("/ui/sign-in")
            page.get_by_label("Kaizen token").fill(token)
            page.get_by_label("Kaizen token").press("Enter")
            page.wait_for_url("**/ui/")
            page.goto(f"/ui/loop/{namespace}/{policy}")
            expect(page.get_by_role("heading", level=1)).to_have_text(f"Loop of {namespace}/{policy}")
            page.evaluate("window.notReloaded = true")
            yield page
        finally:
            browser.close()


def experiment_card(page: Page, namespace: str, name: str) -> Locator:
    return page.locator(f'article[data-experiment="{namespace}/{name}"]')


def not_reloaded(page: Page) -> bool:
    return page.evaluate("window.notReloaded === true") is True


def real(value: Any) -> float | None:
    """A float field as the page writes it (three decimals): JSON may carry 1.0 as 1 (the API server
    does), which the page's format would write as an integer."""
    return None if value is None else float(value)
