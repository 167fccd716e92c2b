"""Feedback by request id alone and the model list, attacked, on a real gateway process on both stores.

Hostile request ids (too long, empty, control characters, SQL and LIKE metacharacters, look-alikes,
another namespace's request, a run id, non-strings), malformed bodies and path tricks on the model
list: each is a 4xx that names the problem, never a 5xx, and leaves every table as it was. The
request of another namespace is found only where it belongs, and only by whoever may use its route.
"""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.security.gateway_world import ELSEWHERE, NAMESPACE, REQUEST, REQUEST_ELSEWHERE, World

HOSTILE_IDS: list[Any] = [
    "x" * 129,
    "",
    "seed-request\x00",
    "seed-request\n",
    "seed\r\nX-Injected: 1",
    "' OR '1'='1",
    "seed-request' --",
    "%",
    "seed-%",
    "seed_request",
    "*",
    "SEED-REQUEST",
    " seed-request",
    "\u0455eed-request",  # a Cyrillic s
    "seed-request\u202e",
    "../seed-request",
    "seed-run",  # a run id, not a request id
    REQUEST_ELSEWHERE,  # another namespace's request
    12,
    ["seed-request"],
    {"$ne": ""},
    None,
]


def feedback(world: World, caller: str, body: Any, namespace: str | None = None) -> httpx.Response:
    key = world.unique("hostile")
    if isinstance(body, bytes):
        headers = {**world.callers[caller], "Idempotency-Key": key, "Content-Type": "application/json"}
        return httpx.post(f"{world.gateway.url}/v1/feedback/batch", content=body, headers=headers, timeout=30)
    return world.call("POST", "/v1/feedback/batch", caller, body, **{"Idempotency-Key": key})


@pytest.mark.parametrize("request_id", HOSTILE_IDS, ids=repr)
def test_a_hostile_request_id_is_a_422_and_writes_nothing(security_world: World, request_id: Any) -> None:
    before = security_world.written()
    body = {"namespace": NAMESPACE, "feedback": [{"requestId": request_id, "thumbs": 1}]}
    response = feedback(security_world, "agent", body)
    assert response.status_code == 422, response.text
    assert response.json()["problems"][0]["field"].startswith("feedback[0]")
    assert security_world.written() == before


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"",
        {"namespace": NAMESPACE, "feedback": {"requestId": REQUEST}},
        {"namespace": NAMESPACE, "feedback": [{"requestId": REQUEST, "runId": "seed-run", "thumbs": 1}]},
        {"namespace": NAMESPACE, "feedback": [{"thumbs": 1}]},
        {"namespace": NAMESPACE, "feedback": [{"requestId": REQUEST, "thumbs": 7}]},
        {"namespace": NAMESPACE, "feedback": [{"requestId": REQUEST, "reward": 1.0}]},
        {"namespace": NAMESPACE, "feedback": [{"requestId": REQUEST, "thumbs": 1, "id": "a b"}]},
        {"namespace": "Team-A", "feedback": [{"requestId": REQUEST, "thumbs": 1}]},
        {"namespace": NAMESPACE, "feedback": [{"requestId": REQUEST, "thumbs": 1}] * 1001},
        [{"requestId": REQUEST, "thumbs": 1}],
    ],
    ids=lambda body: repr(body)[:40],
)
def test_a_malformed_body_is_a_422_and_writes_nothing(security_world: World, body: Any) -> None:
    before = security_world.written()
    response = feedback(security_world, "agent", body)
    assert response.status_code == 422, response.text
    assert security_world.written() == before


def test_another_namespaces_request_is_found_only_there_and_only_by_whoever_may_use_its_route(
    security_world: World,
) -> None:
    before = security_world.written()
    rating = {"feedback": [{"requestId": REQUEST_ELSEWHERE, "thumbs": -1}]}
    # from the agent's own namespace it does not exist; in its own namespace the agent may not act
    assert feedback(security_world, "agent", {**rating, "namespace": NAMESPACE}).status_code == 422
    refused = feedback(security_world, "agent", {**rating, "namespace": ELSEWHERE})
    assert refused.status_code == 403
    assert "may not" in refused.json()["error"]
    # a ServiceAccount granted everything in team-a is granted nothing in team-b
    assert feedback(security_world, "sa-granted", {**rating, "namespace": ELSEWHERE}).status_code == 403
    assert security_world.written() == before
    # the agent of team-b may rate it: it may use team-b's routes
    allowed = feedback(security_world, "agent-elsewhere", {**rating, "namespace": ELSEWHERE})
    assert allowed.status_code == 200, allowed.text
    assert security_world.written()["feedback"] == before["feedback"] + 1


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", f"/openai/{NAMESPACE}/seeded/v1/models/", 404),
        ("GET", f"/openai/{NAMESPACE}/seeded/v1/models/seeded", 404),
        ("GET", f"/openai/{NAMESPACE}/seeded/v1//models", 404),
        ("GET", f"/openai/{NAMESPACE}/seeded/v2/models", 404),
        ("GET", f"/openai/{ELSEWHERE}/seeded/v1/models", 403),
        ("GET", f"/openai/{NAMESPACE}/SEEDED/v1/models", 404),
        ("GET", f"/openai/{NAMESPACE}/{'s' * 300}/v1/models", 404),
        ("HEAD", f"/openai/{NAMESPACE}/seeded/v1/models", 405),
        ("DELETE", f"/openai/{NAMESPACE}/seeded/v1/models", 405),
        ("POST", f"/openai/{NAMESPACE}/seeded/v1/models", 405),
    ],
)
def test_path_tricks_on_the_model_list_get_no_list(
    security_world: World, method: str, path: str, status: int
) -> None:
    before = security_world.written()
    response = security_world.call(method, path, "agent")
    assert response.status_code == status, response.text
    if method != "HEAD":
        assert "data" not in response.json()
    assert security_world.written() == before
