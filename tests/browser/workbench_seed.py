"""The review workbench's browser tests' common steps: pairs posted through the gateway (as the seed
does), reviewers signed in by token, the workbench opened, and the API's and the store's word on what
was judged."""

from __future__ import annotations

from typing import Any

import httpx
from playwright.sync_api import Locator, Page, expect
from sqlalchemy import select
from sqlalchemy.orm import Session

from controllers.api.identity import Role
from controllers.store.db import make_engine
from controllers.store.review_models import ReviewVerdict
from devstack.gateway import GatewayProcess
from tests.browser.conftest import bearer, token
from tests.browser.seed import NAMESPACE, POLICY, write

BENCH = f"/ui/review?namespace={NAMESPACE}&policy={POLICY}"
GUIDELINES = "Prefer the answer that compiles and passes the tests; style comes last."


def seed_pairs(url: str, count: int, reviewers: int = 1) -> None:
    """A policy needing ``reviewers`` per item and ``count`` pairs of its agent awaiting review."""
    policy = {"agent": "coder", "review": {"reviewersPerItem": reviewers, "guidelines": GUIDELINES}}
    write(url, "PUT", f"/v1/policies/{NAMESPACE}/{POLICY}", policy, "bench-policy")
    pairs = [
        {"agent": "coder", "prompt": f"task {i}", "chosen": f"good answer {i}", "rejected": f"bad answer {i}"}
        for i in range(count)
    ]
    write(url, "POST", "/v1/pairs/batch", {"namespace": NAMESPACE, "pairs": pairs}, "bench-pairs")


def sign_in_as(page: Page, subject: str, namespaces: tuple[str, ...] = (NAMESPACE,)) -> None:
    page.goto("/ui/sign-in")
    page.get_by_label("Kaizen token").fill(token(Role.REVIEWER, subject, namespaces))
    page.get_by_label("Kaizen token").press("Enter")
    page.wait_for_url("**/ui/")


def the_pair(page: Page) -> Locator:
    return page.locator("#pair")


def open_bench(page: Page) -> str:
    """Open the workbench on the seeded policy; the id of the pair it reserved."""
    page.goto(BENCH)
    expect(the_pair(page)).to_have_attribute("data-state", "ready")
    return str(the_pair(page).get_attribute("data-pair-id"))


def judge_by_key(page: Page, key: str) -> None:
    """Press a verdict key and wait until the page moved on to another pair (or to none)."""
    shown = the_pair(page).get_attribute("data-pair-id")
    page.keyboard.press(key)
    expect(the_pair(page)).not_to_have_attribute("data-pair-id", str(shown))
    expect(the_pair(page)).not_to_have_attribute("data-state", "loading")


def api(gateway: GatewayProcess, path: str) -> dict[str, Any]:
    answer = httpx.get(f"{gateway.url}{path}", headers=bearer(), timeout=60)
    assert answer.status_code == 200, answer.text
    found: dict[str, Any] = answer.json()
    return found


def verdicts(store_url: str) -> list[ReviewVerdict]:
    engine = make_engine(store_url)
    try:
        with Session(engine) as session:
            return list(session.execute(select(ReviewVerdict)).scalars())
    finally:
        engine.dispose()
