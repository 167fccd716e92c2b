"""Signing in to the pages: a reviewer gets in and out; an agent, a garbage token and an expired one are
refused, each with a message that says what is wrong; the cookie is HttpOnly and SameSite=Strict;
a sign-in posted from another origin is refused; the bearer-token API does not read the cookie."""

from __future__ import annotations

import re

import httpx
from playwright.sync_api import Page, expect

from controllers.api.identity import Role
from devstack.gateway import GatewayProcess
from tests.browser.conftest import sign_in, token


def test_a_reviewer_signs_in_with_a_token_and_out_again(page: Page, gateway: GatewayProcess) -> None:
    page.goto("/ui/")
    expect(page).to_have_url(re.compile(r"/ui/sign-in$"))
    sign_in(page)
    expect(page.get_by_role("heading", level=1)).to_have_text("Kaizen")
    expect(page.locator(".who")).to_have_text("Signed in as rita (reviewer)")
    (cookie,) = page.context.cookies()
    assert (cookie["name"], cookie["httpOnly"], cookie["sameSite"], cookie["path"]) == (
        "kaizen_session",
        True,
        "Strict",
        "/ui/",
    )
    assert "kz2." not in page.url
    assert "kz2." not in page.evaluate("JSON.stringify(window.localStorage)")
    assert page.evaluate("document.cookie") == ""  # no script can read it
    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/ui/sign-in$"))
    assert page.context.cookies() == []
    page.goto("/ui/")
    expect(page).to_have_url(re.compile(r"/ui/sign-in$"))


def test_an_agent_token_cannot_open_the_pages_and_is_told_which_identity_is_needed(
    page: Page, gateway: GatewayProcess
) -> None:
    page.goto("/ui/sign-in")
    page.get_by_label("Kaizen token").fill(token(Role.AGENT, subject="coder"))
    with page.expect_response("**/ui/sign-in") as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Not for this identity")
    expect(page.get_by_role("alert")).to_contain_text("these pages need a reviewer, operator or admin token")
    assert page.context.cookies() == []


def test_garbage_and_expired_tokens_are_refused_with_a_clear_message(
    page: Page, gateway: GatewayProcess
) -> None:
    for pasted, says in (
        ("not a token at all", "That token was refused: malformed token"),
        (token(Role.REVIEWER, ttl=-60), "That token was refused: token expired; issue a new one"),
        ("", "Kaizen token"),  # the browser itself asks for the required field: nothing is sent
    ):
        page.goto("/ui/sign-in")
        page.get_by_label("Kaizen token").fill(pasted)
        page.get_by_label("Kaizen token").press("Enter")
        if pasted:
            expect(page.get_by_role("alert")).to_contain_text(says)
            expect(page.get_by_label("Kaizen token")).to_be_visible()
        else:
            expect(page.get_by_label("Kaizen token")).to_have_js_property("validity.valueMissing", True)
    assert page.context.cookies() == []


def test_a_sign_in_from_another_origin_is_refused_and_the_api_still_takes_bearer_tokens(
    gateway: GatewayProcess,
) -> None:
    reviewer = token(Role.REVIEWER)
    forged = httpx.post(
        f"{gateway.url}/ui/sign-in", data={"token": reviewer}, headers={"Origin": "https://elsewhere.example"}
    )
    assert forged.status_code == 403
    assert "set-cookie" not in forged.headers
    own = httpx.post(
        f"{gateway.url}/ui/sign-in", data={"token": reviewer}, headers={"Origin": gateway.url}, timeout=60
    )
    assert own.status_code == 303
    assert "HttpOnly" in own.headers["set-cookie"]
    assert "script-src 'self'" in own.headers["content-security-policy"]
    assert "unsafe-inline" not in own.headers["content-security-policy"]
    queue = httpx.get(f"{gateway.url}/v1/review/queue", headers={"Authorization": f"Bearer {reviewer}"})
    assert queue.status_code == 200
    cookie_only = httpx.get(f"{gateway.url}/v1/review/queue", cookies={"kaizen_session": reviewer})
    assert cookie_only.status_code == 401
