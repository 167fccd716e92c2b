"""The blind review endpoints on the real app, on PostgreSQL and SQLite: a reviewer reserves, judges
and skips; swapped sides store the right winner; two reviewers give an agreement figure; and every
endpoint refuses the wrong identity, malformed, huge and hostile input, writing nothing."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from controllers.api.identity import Role
from controllers.decisions.reviewing import REASON_TAGS
from controllers.gateway import auth
from controllers.gateway.review_schemas import ReasonTag
from controllers.store.models import PreferencePair
from controllers.store.review_models import ReviewSettings, ReviewSlot, ReviewVerdict
from tests.gateway.conftest import SECRET

NS = "team-a"


def _bearer(subject: str, role: Role, namespaces: tuple[str, ...] = (NS,)) -> dict[str, str]:
    token = auth.issue(SECRET, subject, 3600, role=role, namespaces=namespaces, agents=["coder"])
    return {"Authorization": f"Bearer {token}"}


ANA, BO = _bearer("ana", Role.REVIEWER), _bearer("bo", Role.REVIEWER)
AGENT = _bearer("coder", Role.AGENT)
ELSEWHERE = _bearer("eve", Role.REVIEWER, ("team-b",))
OPERATOR = _bearer("op", Role.OPERATOR)


def _seed(client: TestClient, count: int, reviewers: int = 1) -> list[str]:
    policy = {"agent": "coder", "reward": {"testsPassed": 1.0},
              "review": {"reviewersPerItem": reviewers, "guidelines": "prefer correct code"}}  # fmt: skip
    answer = client.put(f"/v1/policies/{NS}/coder", json=policy, headers={**OPERATOR, "Idempotency-Key": "p"})
    assert answer.status_code == 200, answer.text
    pairs = [{"agent": "coder", "prompt": f"q{i} mail bob@example.com", "chosen": f"good {i}", "rejected": f"bad {i}"}
             for i in range(count)]  # fmt: skip
    answer = client.post(
        "/v1/pairs/batch", json={"namespace": NS, "pairs": pairs}, headers={**AGENT, "Idempotency-Key": "s"}
    )
    assert answer.status_code == 200, answer.text
    return list(answer.json()["ids"])


def _reserve(client: TestClient, who: dict[str, str], **body: Any) -> Any:
    answer = client.post("/v1/review/reservations", json={"namespace": NS, **body}, headers=who)
    assert answer.status_code == 200, answer.text
    return answer.json()["reservation"]


def _verdict(client: TestClient, who: dict[str, str], key: str, **body: Any) -> Any:
    return client.post(
        "/v1/review/verdicts", json={"namespace": NS, **body}, headers={**who, "Idempotency-Key": key}
    )


def _count(engine: Engine, model: Any) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(model)).scalar_one())


def _written(engine: Engine) -> tuple[int, ...]:
    return tuple(
        _count(engine, model) for model in (ReviewSlot, ReviewVerdict, PreferencePair, ReviewSettings)
    )


def _winner(engine: Engine, pair_id: str) -> str:
    with engine.connect() as connection:
        return str(
            connection.execute(
                select(PreferencePair.review_state).where(PreferencePair.id == pair_id)
            ).scalar_one()
        )


def test_a_reviewer_sees_the_pair_blind_and_scrubbed_with_guidelines(client: TestClient) -> None:
    (only,) = _seed(client, 1)
    shown = _reserve(client, ANA)
    assert shown["pairId"] == only
    assert {shown["left"], shown["right"]} == {"good 0", "bad 0"}
    assert "bob@example.com" not in shown["prompt"]
    assert not {"chosen", "rejected", "leftIsChosen"} & set(shown)
    assert (shown["guidelines"], shown["reviewersNeeded"], shown["policy"]) == (
        "prefer correct code",
        1,
        "coder",
    )
    assert set(shown["reasonTags"]) == REASON_TAGS == set(ReasonTag.__args__)  # type: ignore[attr-defined]
    assert _reserve(client, BO) is None


@pytest.mark.parametrize("side", ["left", "right"])
def test_the_side_judged_maps_back_to_the_stored_winner(
    client: TestClient, engine: Engine, side: str
) -> None:
    (only,) = _seed(client, 1)
    shown = _reserve(client, ANA)
    answer = _verdict(
        client, ANA, "v1", pairId=only, verdict=side, tags=["correctness"], note="line1\r\nline2"
    )
    assert answer.status_code == 200, answer.text
    picked_chosen = shown[side] == "good 0"
    assert answer.json()["preference"] == ("chosen" if picked_chosen else "rejected")
    assert _winner(engine, only) == ("approved" if picked_chosen else "rejected")
    replay = _verdict(
        client, ANA, "v1", pairId=only, verdict=side, tags=["correctness"], note="line1\r\nline2"
    )
    assert (replay.status_code, replay.json()) == (200, answer.json())
    assert replay.headers["Idempotent-Replayed"] == "true"
    again = _verdict(client, ANA, "v2", pairId=only, verdict=side)
    assert again.status_code == 409
    assert "already gave a verdict" in again.json()["error"]


def test_two_reviewers_settle_an_item_and_give_agreement_and_progress(
    client: TestClient, engine: Engine
) -> None:
    ids = _seed(client, 2, reviewers=2)
    for who in (ANA, BO):
        for _ in ids:
            shown = _reserve(client, who)
            winner = "left" if shown["left"].startswith("good") else "right"
            answer = _verdict(
                client,
                who,
                f"{who['Authorization'][-8:]}-{shown['pairId']}",
                pairId=shown["pairId"],
                verdict=winner,
            )
            assert answer.status_code == 200, answer.text
    assert [_winner(engine, pair) for pair in ids] == ["approved", "approved"]
    found = client.get(f"/v1/review/agreement?namespace={NS}&policy=coder", headers=ANA).json()
    assert found["reviewers"]["alpha"] is None  # everyone agreed on one value: no variation
    assert "no variation" in found["reviewers"]["reason"]
    assert (found["reviewers"]["items"], found["verdicts"], found["judge"]["rate"]) == (2, 4, None)
    counts = client.get(f"/v1/review/progress?namespace={NS}", headers=ANA).json()
    assert (
        counts["pending"],
        counts["reserved"],
        counts["doneByMe"],
        counts["doneTodayByMe"],
        counts["doneAll"],
    ) == (0, 0, 2, 2, 4)


def test_a_correction_becomes_a_pair_and_a_skip_frees_the_item(client: TestClient, engine: Engine) -> None:
    ids = _seed(client, 2)
    first = _reserve(client, ANA)["pairId"]
    (second,) = set(ids) - {first}
    skipped = client.delete(f"/v1/review/reservations/{first}?namespace={NS}", headers=ANA)
    assert skipped.status_code == 200, skipped.text
    assert client.delete(f"/v1/review/reservations/{first}?namespace={NS}", headers=ANA).status_code == 404
    assert _reserve(client, BO)["pairId"] == first
    assert _reserve(client, ANA)["pairId"] == second
    answer = _verdict(client, ANA, "c", pairId=second, verdict="bothBad", correction="good 1, fixed")
    assert answer.status_code == 200, answer.text
    assert len(answer.json()["correctionPairs"]) == 2
    with engine.connect() as connection:
        sources = connection.execute(
            select(PreferencePair.source).where(PreferencePair.source == "humanCorrection")
        ).all()
    assert len(sources) == 2


def test_a_verdict_without_a_reservation_or_on_anothers_is_a_409(client: TestClient, engine: Engine) -> None:
    (only,) = _seed(client, 1)
    answer = _verdict(client, ANA, "x", pairId=only, verdict="tie")
    assert answer.status_code == 409
    assert "not reserved by you" in answer.json()["error"]
    _reserve(client, BO)
    answer = _verdict(client, ANA, "y", pairId=only, verdict="tie")
    assert answer.status_code == 409
    assert "reserved by another reviewer" in answer.json()["error"]
    unknown = _verdict(client, ANA, "z", pairId="no-such-pair", verdict="tie")
    assert unknown.status_code == 404
    assert unknown.json()["problems"][0]["field"] == "pairId"


ENDPOINTS = [
    ("POST", "/v1/review/reservations", {"namespace": NS}),
    ("DELETE", f"/v1/review/reservations/abc?namespace={NS}", None),
    ("POST", "/v1/review/verdicts", {"namespace": NS, "pairId": "abc", "verdict": "tie"}),
    ("GET", f"/v1/review/progress?namespace={NS}", None),
    ("GET", f"/v1/review/agreement?namespace={NS}", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ENDPOINTS, ids=lambda v: v if isinstance(v, str) else "")
@pytest.mark.parametrize("who", ["none", "agent", "elsewhere", "operator"])
def test_each_endpoint_refuses_the_wrong_identity_and_writes_nothing(
    client: TestClient, engine: Engine, method: str, path: str, body: Any, who: str
) -> None:
    _seed(client, 1)
    before = _written(engine)
    headers = {"none": {}, "agent": AGENT, "elsewhere": ELSEWHERE, "operator": OPERATOR}[who]
    answer = client.request(method, path, json=body, headers={**headers, "Idempotency-Key": "k"})
    assert answer.status_code == (401 if who == "none" else 403), answer.text
    assert _written(engine) == before


HOSTILE = [
    {"pairId": "a\r\nb", "verdict": "tie"},
    {"pairId": "a\x00b", "verdict": "tie"},
    {"pairId": "x" * 100_000, "verdict": "tie"},
    {"pairId": "abc", "verdict": "chosen"},  # the stored names are never a verdict
    {"pairId": "abc", "verdict": "tie", "note": "n\x00"},
    {"pairId": "abc", "verdict": "tie", "correction": "c" * 100_000},
    {"pairId": "abc", "verdict": "tie", "tags": ["made-up"]},
    {"pairId": "abc", "verdict": "tie", "reviewer": "someone-else"},
    {"pairId": "abc"},
    [],
    "not an object",
]


@pytest.mark.parametrize("body", HOSTILE, ids=range(len(HOSTILE)))
def test_a_malformed_or_hostile_verdict_is_a_422_that_writes_nothing(
    client: TestClient, engine: Engine, body: Any
) -> None:
    _seed(client, 1)
    _reserve(client, ANA)
    before = _written(engine)
    payload = {"namespace": NS, **body} if isinstance(body, dict) else body
    answer = client.post("/v1/review/verdicts", json=payload, headers={**ANA, "Idempotency-Key": "h"})
    assert answer.status_code == 422, answer.text
    assert _written(engine) == before


BAD_QUERIES = [
    ("/v1/review/progress", "policy=Bad_Name"),
    ("/v1/review/progress", "agent=a%0d%0ab"),
    ("/v1/review/progress", "agent=a%00b"),
    ("/v1/review/progress", "agent=" + "x" * 200),
    ("/v1/review/agreement", "policy=" + "p" * 300),
    ("/v1/review/agreement", "namespace=Team_A"),
]


@pytest.mark.parametrize(("path", "query"), BAD_QUERIES, ids=lambda v: v[:24])
def test_hostile_queries_are_refused(client: TestClient, path: str, query: str) -> None:
    namespace = "" if query.startswith("namespace=") else f"namespace={NS}&"
    answer = client.get(f"{path}?{namespace}{query}", headers=ANA)
    assert answer.status_code == 422, answer.text


def test_a_hostile_reservation_is_refused_and_an_unknown_policy_named(
    client: TestClient, engine: Engine
) -> None:
    _seed(client, 1)
    before = _written(engine)
    for body in ({"policy": "Bad_Name"}, {"agent": "a\r\nb"}, {"agent": "x" * 100_000}, {"reviewer": "x"}):
        answer = client.post("/v1/review/reservations", json={"namespace": NS, **body}, headers=ANA)
        assert answer.status_code == 422, answer.text
    unknown = client.post("/v1/review/reservations", json={"namespace": NS, "policy": "no-such"}, headers=ANA)
    assert unknown.status_code == 404
    assert "no policy 'no-such'" in unknown.json()["error"]
    assert client.get(f"/v1/review/progress?namespace={NS}&policy=no-such", headers=ANA).status_code == 404
    assert (
        client.delete(f"/v1/review/reservations/{'x' * 100}?namespace={NS}", headers=ANA).status_code == 422
    )
    assert _written(engine) == before


def test_a_huge_body_is_refused_before_it_is_read(client: TestClient, engine: Engine) -> None:
    before = _written(engine)
    huge = b'{"pairId": "' + b"x" * (5 * 1024 * 1024) + b'"}'
    for path in ("/v1/review/verdicts", "/v1/review/reservations"):
        answer = client.post(
            path, content=huge, headers={**ANA, "Idempotency-Key": "big", "Content-Type": "application/json"}
        )
        assert answer.status_code == 413, answer.text
    assert _written(engine) == before
