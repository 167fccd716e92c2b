"""The pages under ``/ui/`` with every kind of caller, ServiceAccounts reviewed by a real API server.

A person signs in by pasting a token; from then on the cookie stands for it. Each page must then
admit exactly whom the matching ``/v1`` call admits: the index lists a namespace's policies only to
whoever may read its experiments (a Kaizen token by its role, a ServiceAccount by RBAC), the loop
dashboard needs ``experiments/get`` in its namespace, the workbench ``reviews/list``, a verdict or a
reservation from it ``reviews/create`` or ``reviews/list`` — and a refused write writes nothing.
``sa-plain`` is the interesting caller: the API server knows it (so it signs in), RBAC grants it
nothing (so every page of team-a refuses it, and the index does not name team-a's policies).
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from controllers.api.identity import Role
from controllers.gateway import auth
from tests.security.gateway_world import ELSEWHERE, IDENTITIES, NAMESPACE, SECRET, UNAUTHENTICATED, World

PEOPLE = {"reviewer", "operator", "sa-granted", "sa-plain"}  # who may sign in at all
READS_EXPERIMENTS = {NAMESPACE: {"reviewer", "operator", "sa-granted"}, ELSEWHERE: {"operator"}}
READS_REVIEWS = {NAMESPACE: {"reviewer", "sa-granted"}, ELSEWHERE: set[str]()}
HIDDEN = "hidden"  # a policy of team-b, the namespace only the operator token (namespaces '*') reaches


@pytest.fixture(scope="module")
def world(security_world: World) -> World:
    admin_b = auth.issue(SECRET, "seeder-b", 3600, role=Role.ADMIN, namespaces=[ELSEWHERE])
    answer = httpx.put(
        f"{security_world.gateway.url}/v1/policies/{ELSEWHERE}/{HIDDEN}",
        json={"agent": "someone"},
        headers={"Authorization": f"Bearer {admin_b}", "Idempotency-Key": "pages-seed-team-b"},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    return security_world


def token_of(world: World, caller: str) -> str:
    return world.callers[caller].get("Authorization", "").removeprefix("Bearer ")


@pytest.fixture
def browser(world: World) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=world.gateway.url, timeout=30, follow_redirects=False) as client:
        yield client


def sign_in(client: httpx.Client, world: World, caller: str) -> httpx.Response:
    return client.post(
        "/ui/sign-in", data={"token": token_of(world, caller)}, headers={"Origin": world.gateway.url}
    )


@pytest.mark.parametrize("caller", IDENTITIES)
def test_only_people_sign_in_and_the_refusal_says_why(
    world: World, browser: httpx.Client, caller: str
) -> None:
    answer = sign_in(browser, world, caller)
    if caller in PEOPLE:
        assert answer.status_code == 303, answer.text
        assert answer.headers["location"] == "/ui/"
        assert "kaizen_session" in browser.cookies
        return
    assert "kaizen_session" not in browser.cookies
    if caller in UNAUTHENTICATED:
        assert answer.status_code == 401, answer.text
        assert "refused" in answer.text
    else:  # a valid token, but an agent's or the widget's: no page is for it
        assert answer.status_code == 403, answer.text
        assert "these pages need a reviewer, operator or admin token" in answer.text


@pytest.mark.parametrize("caller", sorted(PEOPLE))
def test_each_page_admits_exactly_whom_its_api_admits(
    world: World, browser: httpx.Client, caller: str
) -> None:
    assert sign_in(browser, world, caller).status_code == 303
    index = browser.get("/ui/")
    assert index.status_code == 200, index.text
    for namespace, policy in ((NAMESPACE, "seeded"), (ELSEWHERE, HIDDEN)):
        may_read = caller in READS_EXPERIMENTS[namespace]
        listed = f'href="/ui/loop/{namespace}/{policy}"' in index.text
        assert listed == may_read, f"{caller}: {namespace}/{policy} listed={listed}"
        dashboard = browser.get(f"/ui/loop/{namespace}/{policy}")
        assert dashboard.status_code == (200 if may_read else 403), f"{caller} {namespace}: {dashboard.text}"
        if not may_read:
            assert "may not" in dashboard.text
            assert browser.get(f"/ui/loop/{namespace}/{policy}/panel").status_code == 401
        may_review = caller in READS_REVIEWS[namespace]
        bench = browser.get("/ui/review", params={"namespace": namespace})
        assert bench.status_code == (200 if may_review else 403), f"{caller} {namespace}: {bench.text}"


@pytest.mark.parametrize("caller", sorted(PEOPLE))
def test_a_reservation_from_the_workbench_is_refused_without_the_verb_and_writes_nothing(
    world: World, browser: httpx.Client, caller: str
) -> None:
    assert sign_in(browser, world, caller).status_code == 303
    for namespace in (NAMESPACE, ELSEWHERE):
        before = world.written()
        answer = browser.post(
            "/ui/review/reservations", json={"namespace": namespace}, headers={"Origin": world.gateway.url}
        )
        if caller in READS_REVIEWS[namespace]:
            assert answer.status_code == 200, answer.text
            assert "reservation" in answer.json()
            continue
        assert answer.status_code == 403, f"{caller} {namespace}: {answer.text}"
        assert "may not" in str(answer.json()["error"]), answer.text
        assert world.written() == before, f"a refused reservation by {caller} wrote something"


def test_the_queues_page_lists_only_namespaces_whose_reviews_one_may_read(
    world: World, browser: httpx.Client
) -> None:
    for caller in sorted(PEOPLE):
        browser.cookies.clear()
        assert sign_in(browser, world, caller).status_code == 303
        queues = browser.get("/ui/review")
        assert queues.status_code == 200, queues.text
        for namespace, readers in READS_REVIEWS.items():
            offered = f"namespace={namespace}" in queues.text
            assert offered == (caller in readers), f"{caller}: queue of {namespace} offered={offered}"
