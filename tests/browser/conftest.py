"""The browser tier: Playwright drives Debian's Chromium against a real gateway process on each store.

``hack/browser.sh`` installs ``/usr/bin/chromium`` and caches axe-core (its path on stdout); Playwright
never downloads a browser of its own. The gateway is ``devstack.gateway.GatewayProcess`` on a freshly
migrated store (``store_url``: SQLite and PostgreSQL, as every store-backed tier). Each test gets a
fresh browser context (no cookies, no localStorage) with axe-core added as an init script: it is
injected through the DevTools protocol, so the pages' Content-Security-Policy, which allows only the
gateway's own scripts, stays on while axe runs.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, expect, sync_playwright

from controllers.api.identity import Role
from controllers.gateway import auth
from devstack.gateway import GatewayProcess
from tests.schemas import ROOT

SECRET = "browser-tier-secret-0123456789"
CHROMIUM = "/usr/bin/chromium"
# How long an expectation keeps retrying: a few of the dashboard's 2-second polls, each a query the
# gateway answers in well under a second on an idle machine and in several on a loaded one.
expect.set_options(timeout=30_000)


def token(role: Role, subject: str = "rita", namespaces: tuple[str, ...] = ("team",), ttl: int = 3600) -> str:
    return auth.issue(SECRET, subject, ttl, role=role, namespaces=list(namespaces))


def bearer(role: Role = Role.ADMIN, namespaces: tuple[str, ...] = ("*",)) -> dict[str, str]:
    return {"Authorization": f"Bearer {token(role, 'tester', namespaces)}"}


@pytest.fixture(scope="session")
def axe_script() -> str:
    found = os.environ.get("KAIZEN_AXE_JS")
    if not found:
        done = subprocess.run(
            ["bash", str(ROOT / "hack" / "browser.sh")], check=True, capture_output=True, text=True
        )
        found = done.stdout.strip().splitlines()[-1]
    return Path(found).read_text()


# Package scope, not session: Playwright's sync API keeps an asyncio event loop running in the main
# thread while it is open, and every later tier that calls asyncio.run() would fail ("cannot be
# called from a running event loop"). Closed once this folder's tests are done, it leaves none.
@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="package")
def browser(playwright: Playwright, axe_script: str) -> Iterator[Browser]:
    launched = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
    try:
        yield launched
    finally:
        launched.close()


@pytest.fixture
def gateway(store_url: str, tmp_path: Path) -> Iterator[GatewayProcess]:
    process = GatewayProcess(store_url, SECRET, tmp_path / "gateway.log")
    process.start(timeout=120)  # importing the app takes seconds, many more on a busy machine
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture(params=["light", "dark"])
def scheme(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def new_context(browser: Browser, gateway: GatewayProcess, axe_script: str, scheme: str) -> BrowserContext:
    context = browser.new_context(base_url=gateway.url, color_scheme=scheme)  # type: ignore[arg-type]
    context.add_init_script(script=axe_script)
    context.set_default_timeout(15_000)
    return context


@pytest.fixture
def page(browser: Browser, gateway: GatewayProcess, axe_script: str) -> Iterator[Page]:
    context = new_context(browser, gateway, axe_script, "light")
    try:
        yield context.new_page()
    finally:
        context.close()


def sign_in(page: Page, role: Role = Role.REVIEWER, namespaces: tuple[str, ...] = ("team",)) -> None:
    """Sign in as a person does: open the page, paste the token, press Enter."""
    page.goto("/ui/")
    page.get_by_label("Kaizen token").fill(token(role, namespaces=namespaces))
    page.get_by_label("Kaizen token").press("Enter")
    page.wait_for_url("**/ui/")


SERIOUS = """async () => {
  const found = await axe.run(document, {resultTypes: ['violations']});
  return found.violations.filter(v => v.impact === 'serious' || v.impact === 'critical')
    .map(v => v.id + ': ' + v.help + ' @ ' + v.nodes.map(n => n.target.join(' ')).join(', '));
}"""


def serious_violations(page: Page) -> list[str]:
    found: list[str] = page.evaluate(SERIOUS)
    return found
