"""The feedback widget in a real Chromium, embedded in a page of another origin, posting to a real gateway.

An agent's own UI is played by a small HTTP server on another loopback port (another origin) whose page
loads ``/widget/kaizen-feedback.js`` from the gateway and embeds ``<kaizen-feedback>`` with a feedback
token. The gateway allows that origin (``KAIZEN_WIDGET_ORIGINS``) and no other; a second server on a
third port plays a site that is not listed. What the widget stored is read back through the gateway's
loop API with an admin token (the count) and from the store (the correction's text, which no endpoint
returns).
"""

from __future__ import annotations

import html
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from controllers.api.identity import Role
from controllers.gateway import auth
from controllers.store.db import make_engine
from controllers.store.models import Feedback
from devstack.gateway import GatewayProcess
from devstack.ports import free_port
from tests.browser import seed
from tests.browser.conftest import SECRET, bearer, new_context, serious_violations

REQUEST = "answer-1"  # the router's request id the agent's page got back with the answer


@dataclass
class Site:
    """A page server on its own loopback port: an origin the gateway is not."""

    server: ThreadingHTTPServer
    pages: dict[str, str] = field(default_factory=dict)

    @property
    def origin(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def page(self, gateway: GatewayProcess, token: str, request_id: str = REQUEST) -> str:
        """A page of this site embedding the widget for one answer; returns its URL."""
        widget = (
            f'<kaizen-feedback namespace="{seed.NAMESPACE}" request-id="{html.escape(request_id)}"'
            f' token="{html.escape(token)}"></kaizen-feedback>'
        )
        self.pages["/answer.html"] = (
            '<!doctype html><html lang="en"><head><meta charset="utf-8"><title>An agent answer</title>'
            f'<script src="{gateway.url}/widget/kaizen-feedback.js" defer></script></head>'
            f"<body><main><h1>The agent's answer</h1><p>Use a list comprehension.</p>{widget}</main></body></html>"
        )
        return f"{self.origin}/answer.html"


def serve_site() -> Site:
    site: Site

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = site.pages.get(self.path, "").encode()
            self.send_response(200 if body else 404)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_: Any) -> None:  # quiet: the test's output is the assertions'
            pass

    site = Site(ThreadingHTTPServer(("127.0.0.1", 0), Handler))
    threading.Thread(target=site.server.serve_forever, daemon=True).start()
    return site


@pytest.fixture
def sites() -> Iterator[tuple[Site, Site]]:
    """The agent's site (listed) and a stranger's (not listed)."""
    found = (serve_site(), serve_site())
    try:
        yield found
    finally:
        for site in found:
            site.server.shutdown()
            site.server.server_close()


@pytest.fixture
def widget_gateway(store_url: str, tmp_path: Path, sites: tuple[Site, Site]) -> Iterator[GatewayProcess]:
    env = {"KAIZEN_WIDGET_ORIGINS": sites[0].origin}
    process = GatewayProcess(store_url, SECRET, tmp_path / "gateway.log", env=env)
    process.start(timeout=120)
    try:
        seed.write(
            process.url, "PUT", f"/v1/policies/{seed.NAMESPACE}/{seed.POLICY}", {"agent": "coder"}, "p"
        )
        run = {"agent": "coder", "taskId": "t1", "prompt": "How?", "output": "Use a list comprehension.",
               "requestId": REQUEST}  # fmt: skip
        seed.write(process.url, "POST", "/v1/runs/batch", {"namespace": seed.NAMESPACE, "runs": [run]}, "r")
        yield process
    finally:
        process.stop()


def feedback_token(ttl: int = 3600, secret: str = SECRET) -> str:
    return auth.issue(
        secret, "widget-coder", ttl, role=Role.FEEDBACK, namespaces=[seed.NAMESPACE], agents=["coder"]
    )


def counted(gateway: GatewayProcess) -> int:
    """Feedback on the policy's runs, as the gateway's loop API (an admin's token) reports it."""
    answer = httpx.get(f"{gateway.url}/v1/loop/{seed.NAMESPACE}/{seed.POLICY}", headers=bearer(), timeout=60)
    assert answer.status_code == 200, answer.text
    return int(answer.json()["inflow"]["feedback"])


def stored(store_url: str) -> list[tuple[Any, ...]]:
    engine = make_engine(store_url)
    try:
        with Session(engine) as session:
            rows = session.execute(
                select(Feedback.request_id, Feedback.thumbs, Feedback.rating, Feedback.correction)
            )
            return [tuple(row) for row in rows]
    finally:
        engine.dispose()


@pytest.fixture
def page(browser: Browser, widget_gateway: GatewayProcess, axe_script: str, scheme: str) -> Iterator[Page]:
    context = new_context(browser, widget_gateway, axe_script, scheme)
    try:
        yield context.new_page()
    finally:
        context.close()


def status(page: Page) -> Any:
    return page.get_by_role("status")


@pytest.mark.parametrize("scheme", ["light"])
def test_a_visitor_rates_an_answer_and_a_double_submit_writes_once(
    page: Page, widget_gateway: GatewayProcess, sites: tuple[Site, Site], store_url: str
) -> None:
    page.goto(sites[0].page(widget_gateway, feedback_token()))
    helpful = page.get_by_role("button", name="Helpful", exact=True)
    helpful.click()
    expect(helpful).to_have_attribute("aria-pressed", "true")
    page.get_by_role("radio", name="4").check()
    page.get_by_label("Correction (optional)").fill("Use sum() with a generator expression.")
    page.get_by_role("button", name="Send feedback").dblclick()
    expect(status(page)).to_have_text("Thanks — recorded.")
    page.get_by_role("button", name="Send feedback").click()  # again, the same content: a replay
    expect(status(page)).to_have_text("Thanks — recorded.")
    assert counted(widget_gateway) == 1
    assert stored(store_url) == [(REQUEST, 1, 4, "Use sum() with a generator expression.")]
    # The page reuses the element for its next answer: nothing of the last one is carried over.
    page.locator("kaizen-feedback").evaluate("element => element.setAttribute('request-id', 'answer-2')")
    expect(helpful).to_have_attribute("aria-pressed", "false")
    expect(page.get_by_role("radio", name="4")).not_to_be_checked()
    expect(page.get_by_label("Correction (optional)")).to_have_value("")
    expect(status(page)).to_have_text("")


@pytest.mark.parametrize("scheme", ["dark"])
def test_the_widget_is_usable_by_keyboard_alone(
    page: Page, widget_gateway: GatewayProcess, sites: tuple[Site, Site], store_url: str
) -> None:
    page.goto(sites[0].page(widget_gateway, feedback_token()))
    keys = page.keyboard
    keys.press("Tab")
    expect(page.get_by_role("button", name="Helpful", exact=True)).to_be_focused()
    keys.press("Tab")
    keys.press("Space")
    expect(page.get_by_role("button", name="Not helpful")).to_have_attribute("aria-pressed", "true")
    keys.press("Tab")  # into the rating: the arrows move through it and choose
    keys.press("ArrowRight")
    keys.press("ArrowRight")
    expect(page.get_by_role("radio", name="3")).to_be_checked()
    keys.press("Tab")
    expect(page.get_by_label("Correction (optional)")).to_be_focused()
    keys.type("Answer the question that was asked.")
    keys.press("Tab")
    expect(page.get_by_role("button", name="Send feedback")).to_be_focused()
    keys.press("Enter")
    expect(status(page)).to_have_text("Thanks — recorded.")
    assert counted(widget_gateway) == 1
    assert stored(store_url) == [(REQUEST, -1, 3, "Answer the question that was asked.")]


@pytest.mark.parametrize("scheme", ["light"])
def test_a_site_not_listed_is_blocked_by_the_browser_and_nothing_is_stored(
    page: Page, widget_gateway: GatewayProcess, sites: tuple[Site, Site], store_url: str
) -> None:
    page.goto(sites[1].page(widget_gateway, feedback_token()))
    page.get_by_role("button", name="Helpful", exact=True).click()
    page.get_by_role("button", name="Send feedback").click()
    expect(status(page)).to_contain_text("could not be reached from this page")
    assert counted(widget_gateway) == 0
    assert stored(store_url) == []


@pytest.mark.parametrize("scheme", ["light"])
def test_an_expired_or_forged_token_shows_the_gateways_401(
    page: Page, widget_gateway: GatewayProcess, sites: tuple[Site, Site], store_url: str
) -> None:
    for token, said in (
        (feedback_token(ttl=-10), "Not recorded (401): token expired"),
        (
            feedback_token(secret="not-the-gateway-key-0123456789"),
            "Not recorded (401): invalid token signature",
        ),
    ):
        page.goto(sites[0].page(widget_gateway, token))
        page.get_by_role("radio", name="5").check()
        page.get_by_role("button", name="Send feedback").click()
        expect(status(page)).to_contain_text(said)
    assert stored(store_url) == []


def test_the_widget_has_no_serious_accessibility_violation_in_either_theme(
    page: Page, widget_gateway: GatewayProcess, sites: tuple[Site, Site], scheme: str
) -> None:
    page.goto(sites[0].page(widget_gateway, feedback_token()))
    expect(page.get_by_role("button", name="Send feedback")).to_be_visible()
    found = {"fresh": serious_violations(page)}
    page.get_by_role("button", name="Send feedback").click()  # nothing chosen: the widget says what to do
    expect(status(page)).to_contain_text("Choose thumbs up or down")
    found["problem"] = serious_violations(page)
    page.get_by_role("button", name="Helpful", exact=True).click()
    page.get_by_role("button", name="Send feedback").click()
    expect(status(page)).to_have_text("Thanks — recorded.")
    found["recorded"] = serious_violations(page)
    assert found == {name: [] for name in found}


def test_a_gateway_whose_store_is_down_makes_the_widget_say_try_again_later(
    browser: Browser, axe_script: str, sites: tuple[Site, Site], tmp_path: Path
) -> None:
    nowhere = f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/kaizen"  # nothing listens there
    down = GatewayProcess(
        nowhere, SECRET, tmp_path / "gateway.log", env={"KAIZEN_WIDGET_ORIGINS": sites[0].origin}
    )
    down.start(timeout=120)
    context = new_context(browser, down, axe_script, "light")
    try:
        page = context.new_page()
        page.goto(sites[0].page(down, feedback_token()))
        page.get_by_role("button", name="Not helpful").click()
        page.get_by_role("button", name="Send feedback").click()
        expect(status(page)).to_have_text("The feedback service is busy right now; please try again later.")
    finally:
        context.close()
        down.stop()


@pytest.mark.parametrize("empty_url", ["sqlite"], indirect=True)
def test_the_widget_is_photographed_in_light_and_dark(
    page: Page, widget_gateway: GatewayProcess, sites: tuple[Site, Site], scheme: str, tmp_path: Path
) -> None:
    """Into ``KAIZEN_SCREENSHOTS`` (``make screenshots``: docs/screenshots, shown in the README)."""
    folder = Path(os.environ.get("KAIZEN_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    page.set_viewport_size({"width": 640, "height": 400})
    page.goto(sites[0].page(widget_gateway, feedback_token()))
    page.get_by_role("button", name="Helpful", exact=True).click()
    page.get_by_role("radio", name="4").check()
    expect(page.get_by_role("button", name="Send feedback")).to_be_enabled()
    path = folder / f"widget-{scheme}.png"
    page.locator("kaizen-feedback").screenshot(path=path)
    assert path.stat().st_size > 3_000
