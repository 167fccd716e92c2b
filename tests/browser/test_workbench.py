"""The reviewer's workbench in a real Chromium against a real gateway, on both stores: labelling by
keyboard alone, blind swapped sides recorded in the pair's own terms, a correction becoming a pair,
two reviewers' agreement equal to the API's, an expired reservation returning its item, and who may
not open it (an agent's token; a reviewer of another namespace)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from controllers.api.identity import Role
from controllers.gateway.ui_workbench import share
from devstack.gateway import GatewayProcess
from tests.browser.conftest import SECRET, new_context, token
from tests.browser.seed import NAMESPACE, POLICY
from tests.browser.workbench_seed import (
    BENCH,
    GUIDELINES,
    api,
    judge_by_key,
    open_bench,
    seed_pairs,
    sign_in_as,
    the_pair,
    verdicts,
)

PROGRESS = f"/v1/review/progress?namespace={NAMESPACE}&policy={POLICY}"


def tab_to(page: Page, name: str) -> None:
    """Press Tab until the focused element's text is ``name`` (as a keyboard user would)."""
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent.trim()") == name:
            return
    raise AssertionError(f"Tab never reached {name!r}")


def test_a_reviewer_labels_twenty_pairs_by_keyboard_alone(page: Page, gateway: GatewayProcess) -> None:
    seed_pairs(gateway.url, 20)
    sign_in_as(page, "rita")
    tab_to(page, "Review")
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", level=1)).to_have_text("Review")
    tab_to(page, f"{NAMESPACE}/{POLICY}")
    page.keyboard.press("Enter")
    expect(the_pair(page)).to_have_attribute("data-state", "ready")
    expect(page.locator("#guidelines")).to_have_text(GUIDELINES)
    page.keyboard.press("?")
    expect(page.get_by_role("dialog", name="Keyboard shortcuts")).to_be_visible()
    page.keyboard.press("Escape")
    expect(page.get_by_role("dialog")).to_be_hidden()
    for i in range(20):
        judge_by_key(page, ("1", "2", "t", "x", "a", "b")[i % 6])
    expect(the_pair(page)).to_have_attribute("data-state", "empty")
    expect(page.locator("#empty")).to_contain_text("Nothing left for you in this queue.")
    expect(page.locator('[data-figure="doneByMe"]')).to_have_text("20")
    assert api(gateway, PROGRESS)["doneAll"] == 20
    assert api(gateway, PROGRESS)["pending"] == 0


def test_a_pair_shown_swapped_and_judged_left_stores_the_right_winner(
    page: Page, gateway: GatewayProcess, store_url: str
) -> None:
    seed_pairs(gateway.url, 20)
    sign_in_as(page, "rita")
    open_bench(page)
    # The order is drawn per reservation: skip the pairs that show the stored chosen answer on the left.
    while page.locator("#answer-a").inner_text().startswith("good"):
        judge_by_key(page, "s")
    swapped = str(the_pair(page).get_attribute("data-pair-id"))
    expect(page.locator("#answer-b")).to_have_text(re.compile(r"^good answer \d+$"))
    judge_by_key(page, "1")
    expect(page.get_by_role("status")).to_have_text("Saved: Answer A is better.")
    (found,) = [v for v in verdicts(store_url) if v.pair_id == swapped]
    assert (found.verdict, found.left_is_chosen, found.preference) == ("left", False, "rejected")
    queue = api(gateway, f"/v1/review/queue?namespace={NAMESPACE}&limit=500")
    assert swapped not in {pair["id"] for pair in queue["pairs"]}  # settled: rejected by its only reviewer


def test_a_correction_typed_in_the_page_becomes_a_human_correction_pair(
    page: Page, gateway: GatewayProcess
) -> None:
    seed_pairs(gateway.url, 2)
    sign_in_as(page, "rita")
    shown = open_bench(page)
    page.keyboard.press("c")
    expect(page.get_by_label(re.compile("^Corrected answer"))).to_be_focused()
    typed = "a better answer: fix the test, then run it"  # letters that are shortcuts elsewhere
    page.keyboard.type(typed)
    expect(the_pair(page)).to_have_attribute("data-pair-id", shown)  # typing judged nothing
    page.keyboard.press("Escape")
    expect(the_pair(page)).to_be_focused()
    judge_by_key(page, "t")
    expect(page.get_by_role("status")).to_contain_text("Your correction was saved as a new pair.")
    loop = api(gateway, f"/v1/loop/{NAMESPACE}/{POLICY}")
    (corrections,) = [row for row in loop["pairs"] if row["source"] == "humanCorrection"]
    assert corrections["approved"] == 2  # a tie: the correction is preferred over both answers


def test_two_reviewers_on_one_item_give_the_agreement_the_api_gives(
    browser: Browser, gateway: GatewayProcess, axe_script: str
) -> None:
    seed_pairs(gateway.url, 3, reviewers=2)
    pages = []
    for subject in ("rita", "sam"):
        context = new_context(browser, gateway, axe_script, "light")
        pages.append(context.new_page())
        sign_in_as(pages[-1], subject)
        open_bench(pages[-1])
    first, second = pages
    assert first.locator("#pair").get_attribute("data-pair-id") == second.locator("#pair").get_attribute(
        "data-pair-id"
    )
    # Tie and "both bad" mean the same whichever side each was shown: item by item (t,t), (t,x), (x,x).
    for one, other in (("t", "t"), ("t", "x"), ("x", "x")):
        judge_by_key(first, one)
        judge_by_key(second, other)
    found = api(gateway, f"/v1/review/agreement?namespace={NAMESPACE}&policy={POLICY}")
    assert found["reviewers"]["items"] == 3
    assert found["reviewers"]["alpha"] == pytest.approx(1 - 2 / 3.6)
    for shown in pages:
        row = shown.locator(f'tr[data-track="{POLICY}"]')
        shown.reload()  # the figures as a fresh page gives them (a live page refreshes them itself)
        expect(row.locator('[data-field="alpha"]')).to_have_text(share(found["reviewers"]["alpha"], None))
        judge = found["judge"]
        expect(row.locator('[data-field="judge"]')).to_have_text(share(judge["rate"], judge["reason"]))
        shown.context.close()


@pytest.fixture
def hurried_gateway(store_url: str, tmp_path: Path) -> Iterator[GatewayProcess]:
    """A gateway whose reservations last 3 seconds."""
    process = GatewayProcess(
        store_url, SECRET, tmp_path / "gateway.log", env={"KAIZEN_REVIEW_TTL_SECONDS": "3"}
    )
    process.start(timeout=120)
    try:
        yield process
    finally:
        process.stop()


def test_an_expired_reservation_returns_the_item_and_a_late_verdict_is_refused(
    browser: Browser, hurried_gateway: GatewayProcess, axe_script: str
) -> None:
    seed_pairs(hurried_gateway.url, 1)
    late = new_context(browser, hurried_gateway, axe_script, "light").new_page()
    sign_in_as(late, "rita")
    held = open_bench(late)
    expect(late.locator("#expiry")).to_have_text(re.compile("^Your reservation expired"))
    other = new_context(browser, hurried_gateway, axe_script, "light").new_page()
    sign_in_as(other, "sam")
    assert open_bench(other) == held
    late.keyboard.press("1")
    expect(late.get_by_role("alert")).to_have_text(
        re.compile(r"^Not saved: .*(reserved by another reviewer|expired|not reserved by you).*Press n")
    )
    assert api(hurried_gateway, PROGRESS)["doneAll"] == 0
    late.context.close()
    other.context.close()


def test_an_agent_cannot_open_the_workbench_nor_another_namespace_see_its_items(
    page: Page, gateway: GatewayProcess
) -> None:
    seed_pairs(gateway.url, 3)
    page.goto("/ui/sign-in")
    page.get_by_label("Kaizen token").fill(token(Role.AGENT, subject="coder"))
    with page.expect_response("**/ui/sign-in") as answer:
        page.get_by_label("Kaizen token").press("Enter")
    assert answer.value.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Not for this identity")
    page.context.add_cookies([{"name": "kaizen_session", "value": token(Role.AGENT, subject="coder"),
                               "url": f"{gateway.url}/ui/"}])  # fmt: skip
    page.goto(BENCH)
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    forged = page.request.post("/ui/review/reservations", data={"namespace": NAMESPACE},
                               headers={"Origin": gateway.url})  # fmt: skip
    assert forged.status == 401
    page.context.clear_cookies()
    sign_in_as(page, "olga", namespaces=("elsewhere",))
    page.goto("/ui/review")
    expect(page.locator("ul.policies li")).to_have_text(["elsewhere (all policies) 0 pending"])
    answer_page = page.goto(BENCH)
    assert answer_page is not None
    assert answer_page.status == 403
    expect(page.get_by_role("heading", level=1)).to_have_text("Not for this identity")
    taken = page.request.post("/ui/review/reservations", data={"namespace": NAMESPACE},
                              headers={"Origin": gateway.url})  # fmt: skip
    assert taken.status == 403
    page.goto("/ui/review?namespace=elsewhere")
    expect(page.locator("#empty")).to_contain_text("Nothing left for you in this queue.")
    assert api(gateway, PROGRESS)["reserved"] == 0


def test_a_verdict_from_another_origin_is_refused_and_writes_nothing(gateway: GatewayProcess) -> None:
    seed_pairs(gateway.url, 1)
    cookie = {"kaizen_session": token(Role.REVIEWER, "rita")}
    own = httpx.post(f"{gateway.url}/ui/review/reservations", json={"namespace": NAMESPACE},
                     headers={"Origin": gateway.url}, cookies=cookie, timeout=60)  # fmt: skip
    assert own.status_code == 200, own.text
    pair_id = own.json()["reservation"]["pairId"]
    forged = httpx.post(
        f"{gateway.url}/ui/review/verdicts",
        json={"namespace": NAMESPACE, "pairId": pair_id, "verdict": "left"},
        headers={"Origin": "https://elsewhere.example", "Idempotency-Key": "forged-1"},
        cookies=cookie,
        timeout=60,
    )
    assert forged.status_code == 403
    assert api(gateway, PROGRESS)["doneAll"] == 0
