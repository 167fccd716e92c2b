"""Every gateway endpoint x every kind of caller, on a real gateway process, on both stores.

The table below is written from the trust model in docs/security.md, not from the code's role table:
agents write their own agent's experience, call their namespace's routes and rate the requests those
routes served (by the request id alone, before any run names it), reviewers read the queue and post
reviews and corrections, the operator writes routes and policies, reviewers and the operator read an
experiment's series (aggregates, no prompts) for the report, a feedback token (the embeddable
widget's, public by nature) posts feedback on its own agent's answers and on the requests of the
routes it names and nothing else, and a ServiceAccount may do what Kubernetes RBAC grants it. Each
allowed call must work. Each refused call must be a 401 (no identity) or a 403 (the wrong one) whose
message says why, and must leave every table as it was.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from tests.security.gateway_world import (
    AGENT,
    ELSEWHERE,
    IDENTITIES,
    NAMESPACE,
    REQUEST,
    UNAUTHENTICATED,
    World,
    route,
)


@dataclass(frozen=True)
class Call:
    name: str
    method: str
    path: Callable[[World, str], str]
    body: Callable[[World, str], Any]
    allowed: frozenset[str]
    writes: bool = True


def _run(world: World, caller: str) -> dict[str, Any]:
    run = {"id": world.unique(f"run-{caller}"), "agent": AGENT, "taskId": "t", "prompt": "p", "output": "o"}
    return {"namespace": NAMESPACE, "runs": [run]}


def _feedback(world: World, caller: str) -> dict[str, Any]:
    return {
        "namespace": NAMESPACE,
        "feedback": [{"runId": "seed-run", "thumbs": 1, "correction": f"fix {caller}"}],
    }


def _request_feedback(world: World, caller: str) -> dict[str, Any]:
    """Feedback naming only a request the router recorded (no run names it): ``routes/use`` decides."""
    return {"namespace": NAMESPACE, "feedback": [{"requestId": REQUEST, "thumbs": 1, "author": caller}]}


def _pair(world: World, caller: str) -> dict[str, Any]:
    pair = {"agent": AGENT, "prompt": world.unique("q"), "chosen": "a", "rejected": "b"}
    return {"namespace": NAMESPACE, "pairs": [pair]}


def _annotation(world: World, caller: str) -> dict[str, Any]:
    return {"namespace": NAMESPACE, "annotations": [{"runId": "seed-run", "reason": f"look {caller}"}]}


def _review(world: World, caller: str) -> dict[str, Any]:
    review = {"kind": "pair", "id": world.pairs[caller], "decision": "approved", "reviewer": caller}
    return {"namespace": NAMESPACE, "reviews": [review]}


def _reserved(world: World, caller: str) -> str:
    """A pair the caller holds a reservation of (reserved now, as the caller), or a stand-in id when
    the caller may not reserve: then the call under test is refused before any pair is looked at."""
    answer = world.call("POST", "/v1/review/reservations", caller, {"namespace": NAMESPACE})
    reservation = answer.json().get("reservation") if answer.status_code == 200 else None
    return str(reservation["pairId"]) if reservation else "not-reserved"


def _verdict(world: World, caller: str) -> dict[str, Any]:
    return {"namespace": NAMESPACE, "pairId": _reserved(world, caller), "verdict": "left", "tags": ["style"]}


def _policy(world: World, caller: str) -> dict[str, Any]:
    return {"agent": AGENT, "reward": {"testsPassed": 0.5}}


def _chat(world: World, caller: str) -> dict[str, Any]:
    return {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


EVERYONE_GRANTED = {"sa-granted"}
CALLS = [
    Call("runs", "POST", lambda w, c: "/v1/runs/batch", _run, frozenset({"agent", *EVERYONE_GRANTED})),
    Call(
        "feedback", "POST", lambda w, c: "/v1/feedback/batch", _feedback,
        frozenset({"agent", "reviewer", "feedback", *EVERYONE_GRANTED}),
    ),
    Call(
        "request-feedback", "POST", lambda w, c: "/v1/feedback/batch", _request_feedback,
        frozenset({"agent", "feedback", *EVERYONE_GRANTED}),
    ),
    Call("pairs", "POST", lambda w, c: "/v1/pairs/batch", _pair, frozenset({"agent", *EVERYONE_GRANTED})),
    Call(
        "annotations", "POST", lambda w, c: "/v1/annotations/batch", _annotation,
        frozenset({"agent", *EVERYONE_GRANTED}),
    ),
    Call(
        "review-queue", "GET", lambda w, c: f"/v1/review/queue?namespace={NAMESPACE}", lambda w, c: None,
        frozenset({"reviewer", *EVERYONE_GRANTED}), writes=False,
    ),
    Call("reviews", "POST", lambda w, c: "/v1/reviews/batch", _review, frozenset({"reviewer", *EVERYONE_GRANTED})),
    Call(
        # writes=False: a caller who already holds an item gets it again, which writes nothing
        "review-reserve", "POST", lambda w, c: "/v1/review/reservations", lambda w, c: {"namespace": NAMESPACE},
        frozenset({"reviewer", *EVERYONE_GRANTED}), writes=False,
    ),
    Call(
        "review-release", "DELETE", lambda w, c: f"/v1/review/reservations/{_reserved(w, c)}?namespace={NAMESPACE}",
        # writes=False: a skip changes the held slot's expiry, not any table's row count
        lambda w, c: None, frozenset({"reviewer", *EVERYONE_GRANTED}), writes=False,
    ),
    Call("review-verdict", "POST", lambda w, c: "/v1/review/verdicts", _verdict, frozenset({"reviewer", *EVERYONE_GRANTED})),
    Call(
        "review-progress", "GET", lambda w, c: f"/v1/review/progress?namespace={NAMESPACE}", lambda w, c: None,
        frozenset({"reviewer", *EVERYONE_GRANTED}), writes=False,
    ),
    Call(
        "review-agreement", "GET", lambda w, c: f"/v1/review/agreement?namespace={NAMESPACE}", lambda w, c: None,
        frozenset({"reviewer", *EVERYONE_GRANTED}), writes=False,
    ),
    Call(
        "policies", "PUT", lambda w, c: f"/v1/policies/{NAMESPACE}/policy-{c}", _policy,
        frozenset({"operator", *EVERYONE_GRANTED}),
    ),
    Call(
        "route-put", "PUT", lambda w, c: f"/v1/routes/{NAMESPACE}/route-{c}",
        lambda w, c: route(NAMESPACE, f"route-{c}", w.upstream_base), frozenset({"operator", *EVERYONE_GRANTED}),
    ),
    Call(
        "route-get", "GET", lambda w, c: f"/v1/routes/{NAMESPACE}/seeded", lambda w, c: None,
        frozenset({"operator", *EVERYONE_GRANTED}), writes=False,
    ),
    Call(
        "experiment-series", "GET", lambda w, c: f"/v1/experiments/{NAMESPACE}/seeded/series",
        lambda w, c: None, frozenset({"reviewer", "operator", *EVERYONE_GRANTED}), writes=False,
    ),
    Call(
        "loop", "GET", lambda w, c: f"/v1/loop/{NAMESPACE}/seeded",
        lambda w, c: None, frozenset({"reviewer", "operator", *EVERYONE_GRANTED}), writes=False,
    ),
    Call(
        "proxy", "POST", lambda w, c: f"/openai/{NAMESPACE}/seeded/v1/chat/completions", _chat,
        frozenset({"agent", *EVERYONE_GRANTED}), writes=False,
    ),
    Call(
        "models", "GET", lambda w, c: f"/openai/{NAMESPACE}/seeded/v1/models", lambda w, c: None,
        frozenset({"agent", *EVERYONE_GRANTED}), writes=False,
    ),
]  # fmt: skip


def _reason(body: dict[str, Any]) -> str:
    error = body.get("error")
    return str(error.get("message") if isinstance(error, dict) else error)


@pytest.mark.parametrize("caller", IDENTITIES)
@pytest.mark.parametrize("call", CALLS, ids=lambda call: call.name)
def test_each_endpoint_admits_exactly_whom_it_should(security_world: World, call: Call, caller: str) -> None:
    before = security_world.written()
    response = security_world.call(
        call.method,
        call.path(security_world, caller),
        caller,
        call.body(security_world, caller),
        **{"Idempotency-Key": security_world.unique(f"{call.name}-{caller}")},
    )
    if caller in call.allowed:
        assert response.status_code == 200, f"{caller} {call.name}: {response.status_code} {response.text}"
        if call.writes:
            assert security_world.written() != before, f"{caller} {call.name} was allowed but wrote nothing"
        return
    expected = 401 if caller in UNAUTHENTICATED else 403
    assert response.status_code == expected, f"{caller} {call.name}: {response.status_code} {response.text}"
    reason = _reason(response.json())
    if expected == 401:
        assert any(word in reason for word in ("missing", "expired", "signature")), reason
    else:
        assert "may not" in reason, reason
    assert security_world.written() == before, f"refused {call.name} by {caller} still wrote something"


def test_an_experiments_series_is_what_the_router_recorded(security_world: World) -> None:
    answer = security_world.call("GET", f"/v1/experiments/{NAMESPACE}/seeded/series?buckets=4", "reviewer")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert (body["namespace"], body["name"], body["route"]) == (NAMESPACE, "seeded", None)
    # One request each in team-a and team-b under "seeded": only this namespace's is counted.
    assert body["series"]["observations"]["champion"]["assigned"] == 1
    edges = body["series"]["edges"]
    assert 1 <= len(edges) <= 4  # four buckets, or one when the series is a single instant
    assert edges[-1] >= body["series"]["start"]
    unknown = security_world.call("GET", f"/v1/experiments/{NAMESPACE}/never-ran/series", "reviewer")
    assert unknown.status_code == 200, unknown.text
    assert unknown.json()["series"] is None
    elsewhere = security_world.call("GET", f"/v1/experiments/{ELSEWHERE}/seeded/series", "reviewer")
    assert elsewhere.status_code == 403, elsewhere.text
    assert "may not act in namespace" in _reason(elsewhere.json())


HOSTILE_NAMES = [
    "seeded%27%20OR%201%3D1",  # quotes and SQL reach no query: the name is checked first
    "Seeded",
    "-seeded",
    "seeded%00",
    "%C3%A9xp",
    "x" * 254,
]


@pytest.mark.parametrize("name", HOSTILE_NAMES, ids=lambda value: value[:20])
def test_a_malformed_or_hostile_experiment_name_is_refused_naming_the_field(
    security_world: World, name: str
) -> None:
    before = security_world.written()
    answer = security_world.call("GET", f"/v1/experiments/{NAMESPACE}/{name}/series", "reviewer")
    assert answer.status_code == 422, f"{name}: {answer.status_code} {answer.text}"
    assert [problem["field"] for problem in answer.json()["problems"]] == ["name"], answer.text
    assert "Kubernetes object name" in _reason(answer.json())
    assert security_world.written() == before


def test_a_path_that_climbs_out_of_the_experiment_reaches_nothing(security_world: World) -> None:
    answer = security_world.call(
        "GET", f"/v1/experiments/{NAMESPACE}/..%2F..%2Freview%2Fqueue/series", "agent"
    )
    assert answer.status_code == 404, answer.text
    assert "seed" not in answer.text


@pytest.mark.parametrize("namespace", ["Team-A", "team_a", "a" * 64, "%2E%2E"])
def test_a_malformed_namespace_is_refused_naming_the_field(security_world: World, namespace: str) -> None:
    answer = security_world.call("GET", f"/v1/experiments/{namespace}/seeded/series", "reviewer")
    assert answer.status_code == 422, f"{namespace}: {answer.status_code} {answer.text}"
    assert [problem["field"] for problem in answer.json()["problems"]] == ["namespace"], answer.text
