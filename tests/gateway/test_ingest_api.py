"""The ingest API's contract, on PostgreSQL and SQLite: auth, idempotency, validation, attribution."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select

from controllers.api.identity import Role
from controllers.gateway import auth
from controllers.store.models import Feedback, PreferencePair, Run
from tests.gateway.conftest import SECRET


def runs(*outputs: str, **extra: Any) -> dict[str, Any]:
    return {
        "runs": [
            {
                "agent": "coder",
                "role": "coder",
                "taskId": f"t{i}",
                "prompt": f"task {i}",
                "output": o,
                "signals": {"compileOk": True, "testsPassed": 1, "testsTotal": 2},
                **extra,
            }
            for i, o in enumerate(outputs)
        ]
    }


def count(engine: Engine, model: type[Any]) -> int:
    with engine.connect() as connection:
        return int(connection.scalar(select(func.count()).select_from(model)) or 0)


def post(client: TestClient, path: str, body: dict[str, Any], headers: dict[str, str], key: str | None):
    return client.post(path, json=body, headers={**headers, **({"Idempotency-Key": key} if key else {})})


def test_a_batch_of_runs_is_stored_with_rewards(
    client: TestClient, headers: dict[str, str], engine: Engine
) -> None:
    response = post(client, "/v1/runs/batch", runs("a", "b", "c"), headers, "k1")
    assert response.status_code == 200
    assert response.json()["inserted"] == 3
    with engine.connect() as connection:
        rewards = connection.execute(select(Run.reward)).scalars().all()
    assert rewards == [pytest.approx(0.75)] * 3


def test_a_replay_returns_the_first_response_and_writes_nothing(
    client: TestClient, headers: dict[str, str], engine: Engine
) -> None:
    first = post(client, "/v1/runs/batch", runs("a", "b"), headers, "k1")
    again = post(client, "/v1/runs/batch", runs("a", "b"), headers, "k1")
    assert again.status_code == 200
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    assert count(engine, Run) == 2


def test_the_same_key_with_another_body_is_refused(
    client: TestClient, headers: dict[str, str], engine: Engine
) -> None:
    post(client, "/v1/runs/batch", runs("a"), headers, "k1")
    response = post(client, "/v1/runs/batch", runs("something else"), headers, "k1")
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "Idempotency-Key"
    assert count(engine, Run) == 1


def test_writes_without_a_key_are_refused(
    client: TestClient, headers: dict[str, str], engine: Engine
) -> None:
    response = post(client, "/v1/runs/batch", runs("a"), headers, None)
    assert response.status_code == 400
    assert "Idempotency-Key" in response.json()["error"]
    assert count(engine, Run) == 0


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda b: b["runs"][0].pop("agent"), "runs[0].agent"),
        (lambda b: b["runs"][1]["signals"].update(testsPassed=-1), "runs[1].signals.testsPassed"),
        (lambda b: b["runs"][1]["signals"].update(testsPassed=5, testsTotal=2), "runs[1].signals"),
        (lambda b: b["runs"][0].update(attempt="second"), "runs[0].attempt"),
        (lambda b: b["runs"][0].update(colour="blue"), "runs[0].colour"),
        (lambda b: b["runs"][0].update(id="has space"), "runs[0].id"),
        (lambda b: b["runs"].clear(), "runs"),
        # PostgreSQL cannot store NUL: refused on every store alike, not a 500 on one of them
        (lambda b: b["runs"][1].update(output="ok\x00then garbage"), "runs[1].output"),
    ],
)
def test_invalid_records_get_a_422_naming_the_field_and_nothing_is_written(
    client: TestClient, headers: dict[str, str], engine: Engine, mutate: Any, field: str
) -> None:
    body = runs("a", "b")
    mutate(body)
    response = post(client, "/v1/runs/batch", body, headers, "k1")
    assert response.status_code == 422
    assert field in [p["field"] for p in response.json()["problems"]]
    assert field in response.json()["error"]
    assert count(engine, Run) == 0


def test_oversized_batches_are_refused(client: TestClient, headers: dict[str, str]) -> None:
    response = post(client, "/v1/runs/batch", runs(*["x"] * 1001), headers, "big")
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "runs"


@pytest.mark.parametrize(
    "token",
    [None, "kz1.garbage", auth.issue("another-secret", "agent", 3600), auth.issue(SECRET, "agent", -1)],
    ids=["missing", "malformed", "wrong-secret", "expired"],
)
def test_bad_tokens_get_401_and_write_nothing(client: TestClient, engine: Engine, token: str | None) -> None:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = post(client, "/v1/runs/batch", runs("a"), headers, "k1")
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == "Bearer"
    assert response.json()["error"]
    assert client.get("/v1/review/queue", headers=headers).status_code == 401
    assert count(engine, Run) == 0


def test_authentication_comes_before_everything_else(client: TestClient, engine: Engine) -> None:
    # No token, no key, a bad body: the caller learns only that they must authenticate.
    for path in ("/v1/runs/batch", "/v1/feedback/batch", "/v1/pairs/batch", "/v1/reviews/batch"):
        response = client.post(path, json={"bogus": True})
        assert response.status_code == 401, path
    assert client.put("/v1/policies/default/Not_A_Name", json={}).status_code == 401
    assert count(engine, Run) == 0


def test_feedback_by_request_id_reaches_the_run_that_served_it(
    client: TestClient, headers: dict[str, str], engine: Engine
) -> None:
    post(client, "/v1/runs/batch", runs("a", requestId="req-1"), headers, "k1")
    response = post(
        client,
        "/v1/feedback/batch",
        {
            "feedback": [
                {"requestId": "req-1", "thumbs": -1, "categories": ["wrong"], "correction": "better answer"}
            ]
        },
        headers,
        "k2",
    )
    assert response.status_code == 200
    with engine.connect() as connection:
        run = connection.execute(select(Run.human_accepted, Run.reward)).one()
        feedback = connection.execute(select(Feedback.run_id, Feedback.correction)).one()
    assert run.human_accepted is False
    assert run.reward == pytest.approx((1 + 0.5 + 0) / 3)  # compile, tests, human rejection
    assert feedback.correction == "better answer"


def test_feedback_for_an_unknown_run_is_a_422_naming_it(
    client: TestClient, headers: dict[str, str], engine: Engine
) -> None:
    post(client, "/v1/runs/batch", runs("a", id="run-1"), headers, "k1")
    response = post(
        client,
        "/v1/feedback/batch",
        {"feedback": [{"runId": "run-1", "thumbs": 1}, {"runId": "run-404", "thumbs": 1}]},
        headers,
        "k2",
    )
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "feedback[1].runId"
    assert count(engine, Feedback) == 0
    # The failed request left no key behind: fixing it and retrying with the same key works.
    fixed = post(client, "/v1/feedback/batch", {"feedback": [{"runId": "run-1", "thumbs": 1}]}, headers, "k3")
    assert fixed.status_code == 200


def test_explicit_pairs_and_the_review_queue(
    client: TestClient, headers: dict[str, str], engine: Engine
) -> None:
    body = {"pairs": [{"prompt": "p", "chosen": "good", "rejected": "bad", "agent": "coder"}]}
    assert (
        post(
            client,
            "/v1/pairs/batch",
            {"pairs": [{"prompt": "p", "chosen": "same", "rejected": "same"}]},
            headers,
            "bad",
        ).status_code
        == 422
    )
    pair_id = post(client, "/v1/pairs/batch", body, headers, "k1").json()["ids"][0]
    queue = client.get("/v1/review/queue", headers=headers).json()
    assert [p["id"] for p in queue["pairs"]] == [pair_id]
    decision = {"reviews": [{"kind": "pair", "id": pair_id, "decision": "approved", "reviewer": "ana"}]}
    assert post(client, "/v1/reviews/batch", decision, headers, "k2").status_code == 200
    assert client.get("/v1/review/queue", headers=headers).json()["pairs"] == []
    with engine.connect() as connection:
        assert connection.scalar(select(PreferencePair.review_state)) == "approved"


def test_policy_weights_recompute_rewards(
    client: TestClient, headers: dict[str, str], engine: Engine
) -> None:
    post(client, "/v1/runs/batch", runs("a"), headers, "k1")
    policy = {"agent": "coder", "reward": {"compileOk": 0, "testsPassed": 1, "errors": 0, "humanAccepted": 0}}
    response = client.put(
        "/v1/policies/default/coder-dpo", json=policy, headers={**headers, "Idempotency-Key": "p1"}
    )
    assert response.status_code == 200
    assert response.json()["rewardsRecomputed"] == 1
    with engine.connect() as connection:
        assert connection.scalar(select(Run.reward)) == pytest.approx(0.5)
    bad = client.put(
        "/v1/policies/default/Coder_DPO", json=policy, headers={**headers, "Idempotency-Key": "p2"}
    )
    assert bad.status_code == 422
    # A policy of another namespace weighs none of this namespace's runs.
    elsewhere = client.put(
        "/v1/policies/team-b/coder-dpo",
        json={"agent": "coder"},
        headers={**EVERYWHERE, "Idempotency-Key": "p3"},
    )
    assert elsewhere.json()["rewardsRecomputed"] == 0
    with engine.connect() as connection:
        assert connection.scalar(select(Run.reward)) == pytest.approx(0.5)
    bad_namespace = client.put(
        "/v1/policies/Team_B/coder-dpo", json=policy, headers={**EVERYWHERE, "Idempotency-Key": "p4"}
    )
    assert bad_namespace.status_code == 422
    assert bad_namespace.json()["problems"][0]["field"] == "namespace"


def test_a_policy_with_an_old_weight_name_is_refused_with_the_new_name(
    client: TestClient, headers: dict[str, str]
) -> None:
    policy = {"agent": "coder", "reward": {"compile": 1, "testsPassed": 0}}
    response = client.put(
        "/v1/policies/default/coder-dpo", json=policy, headers={**headers, "Idempotency-Key": "p1"}
    )
    assert response.status_code == 422
    assert "compile was renamed to compileOk" in response.text


def test_openapi_and_metrics_are_published(client: TestClient, headers: dict[str, str]) -> None:
    post(client, "/v1/runs/batch", runs("a", "b"), headers, "k1")
    post(client, "/v1/runs/batch", runs("a", "b"), headers, "k1")
    schema = client.get("/openapi.json").json()
    assert {
        "/v1/runs/batch",
        "/v1/feedback/batch",
        "/v1/pairs/batch",
        "/v1/annotations/batch",
        "/v1/reviews/batch",
        "/v1/review/queue",
        "/openai/{namespace}/{route}/v1/chat/completions",
        "/openai/{namespace}/{route}/v1/completions",
    } <= set(schema["paths"])
    # The proxy's paths, which FastAPI never serves, are described with the headers the router reads.
    chat = schema["paths"]["/openai/{namespace}/{route}/v1/chat/completions"]["post"]
    assert {p["name"] for p in chat["parameters"]} >= {
        "namespace",
        "route",
        "X-Kaizen-Request-Id",
        "X-Kaizen-User",
    }
    assert chat["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ChatRequest"
    }
    assert "messages" in schema["components"]["schemas"]["ChatRequest"]["required"]
    metrics = client.get("/metrics").text
    assert 'kaizen_gateway_records_ingested_total{kind="runs"} 2.0' in metrics
    assert "kaizen_gateway_idempotent_replays_total 1.0" in metrics
    assert client.get("/readyz").status_code == 200


def _caller(subject: str, namespaces: tuple[str, ...] = ("default",)) -> dict[str, str]:
    """An admin of ``namespaces``: these tests are about what the store keeps apart, not who may write."""
    return {
        "Authorization": f"Bearer {auth.issue(SECRET, subject, 3600, role=Role.ADMIN, namespaces=namespaces)}"
    }


EVERYWHERE = _caller("tester", ("*",))


def test_the_same_run_id_in_two_namespaces_is_two_records(
    client: TestClient, headers: dict[str, str], engine: Engine
) -> None:
    for namespace in ("team-a", "team-b"):
        body = {**runs("a", id="r1"), "namespace": namespace}
        response = post(client, "/v1/runs/batch", body, EVERYWHERE, f"k-{namespace}")
        assert response.status_code == 200
        assert response.json()["inserted"] == 1
    with engine.connect() as connection:
        rows = connection.execute(select(Run.namespace, Run.id).order_by(Run.namespace)).all()
    assert [tuple(r) for r in rows] == [("team-a", "r1"), ("team-b", "r1")]


def test_an_id_another_agent_holds_in_the_namespace_is_a_409_naming_it(
    client: TestClient, headers: dict[str, str], engine: Engine
) -> None:
    assert post(client, "/v1/runs/batch", runs("a", id="r1"), headers, "k1").status_code == 200
    # the same record again (another key, the same agent) is a no-op, not a conflict
    again = post(client, "/v1/runs/batch", runs("a", id="r1"), headers, "k2")
    assert again.status_code == 200
    assert again.json()["inserted"] == 0
    taken = post(client, "/v1/runs/batch", runs("x", id="r1", agent="intruder"), headers, "k3")
    assert taken.status_code == 409
    assert taken.json()["problems"][0]["field"] == "runs[0].id"
    with engine.connect() as connection:
        assert connection.execute(select(Run.agent, Run.output)).all() == [("coder", "a")]


def test_the_same_idempotency_key_from_two_callers_is_two_writes(client: TestClient, engine: Engine) -> None:
    first = post(client, "/v1/runs/batch", runs("a"), _caller("kaizen:agent-a"), "shared-key")
    second = post(client, "/v1/runs/batch", runs("a"), _caller("kaizen:agent-b"), "shared-key")
    assert first.status_code == second.status_code == 200
    assert "Idempotent-Replayed" not in second.headers
    assert second.json()["inserted"] == 1
    # the ids derived from the key are each caller's own
    assert set(first.json()["ids"]).isdisjoint(second.json()["ids"])
    assert count(engine, Run) == 2
    # and another caller's key with another body is not a conflict either
    third = post(client, "/v1/runs/batch", runs("b", "c"), _caller("kaizen:agent-c"), "shared-key")
    assert third.status_code == 200


def test_feedback_reaches_only_runs_of_its_own_namespace(
    client: TestClient, headers: dict[str, str], engine: Engine
) -> None:
    body = {**runs("a", id="r1", requestId="req-1"), "namespace": "team-a"}
    assert post(client, "/v1/runs/batch", body, EVERYWHERE, "k1").status_code == 200
    for target, field in (({"runId": "r1"}, "runId"), ({"requestId": "req-1"}, "requestId")):
        feedback = {"namespace": "team-b", "feedback": [{**target, "thumbs": 1}]}
        response = post(client, "/v1/feedback/batch", feedback, EVERYWHERE, f"f-{field}")
        assert response.status_code == 422
        assert response.json()["problems"][0]["field"] == f"feedback[0].{field}"
    own = {"namespace": "team-a", "feedback": [{"requestId": "req-1", "thumbs": 1}]}
    assert post(client, "/v1/feedback/batch", own, EVERYWHERE, "f-own").status_code == 200
    assert count(engine, Feedback) == 1


@pytest.mark.parametrize(
    "created_at",
    [
        "0001-01-01T00:00:00+14:00",
        "1969-12-31T23:59:59Z",
        "2999-01-01T00:00:00Z",
        "9999-12-31T23:59:59-12:00",
    ],
)
def test_timestamps_out_of_range_are_a_422_naming_the_field(
    client: TestClient, headers: dict[str, str], engine: Engine, created_at: str
) -> None:
    response = post(client, "/v1/runs/batch", runs("a", createdAt=created_at), headers, "k1")
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "runs[0].createdAt"
    assert count(engine, Run) == 0


def test_a_time_with_an_offset_is_stored_as_its_utc_instant(
    client: TestClient, headers: dict[str, str], engine: Engine
) -> None:
    body = runs("a", createdAt="2024-03-01T05:00:00+14:00")
    assert post(client, "/v1/runs/batch", body, headers, "k1").status_code == 200
    with engine.connect() as connection:
        stored = connection.scalar(select(Run.created_at))
    assert stored is not None
    assert stored.astimezone(UTC) == datetime(2024, 2, 29, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("record", "field"),
    [
        ({"agent": "coder\r\nX-Admin: 1"}, "agent"),
        ({"role": "co\nder"}, "role"),
        ({"taskFamily": "fam\u0000"}, "taskFamily"),
        ({"modelVariant": "v\u2028"}, "modelVariant"),
        ({"taskId": "t\u001b[31m"}, "taskId"),
    ],
)
def test_names_with_control_characters_are_a_422_naming_the_field(
    client: TestClient, headers: dict[str, str], engine: Engine, record: dict[str, str], field: str
) -> None:
    response = post(client, "/v1/runs/batch", runs("a", **record), headers, "k1")
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == f"runs[0].{field}"
    assert count(engine, Run) == 0


def test_feedback_authors_with_control_characters_are_refused(
    client: TestClient, headers: dict[str, str]
) -> None:
    assert post(client, "/v1/runs/batch", runs("a", id="r1"), headers, "k1").status_code == 200
    feedback = {"feedback": [{"runId": "r1", "author": "ana\r\nbob", "thumbs": 1}]}
    response = post(client, "/v1/feedback/batch", feedback, headers, "k2")
    assert response.status_code == 422
    assert response.json()["problems"][0]["field"] == "feedback[0].author"
