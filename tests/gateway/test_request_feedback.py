"""``POST /v1/feedback/batch`` naming only the router's request id, on PostgreSQL and SQLite: accepted
for a request the router recorded before (or without) any run, counted once for the experiment, and
authorized, keyed and kept in its namespace as strictly as feedback on a run."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from controllers.api.identity import Role
from controllers.api.routes import allocation_text
from controllers.gateway import auth
from controllers.store.experiment_traffic import reward_stream
from controllers.store.experiments import observations, record_assignments
from controllers.store.models import Assignment, Feedback, Run
from tests.gateway.conftest import SECRET
from tests.gateway.test_ingest_api import EVERYWHERE, count, post, runs
from tests.store.test_experiments import assignment


def token(
    role: Role = Role.AGENT, namespaces: tuple[str, ...] = ("team",), agents: tuple[str, ...] | None = None
) -> dict[str, str]:
    issued = auth.issue(
        SECRET, f"{role.value}-caller", 3600, role=role, namespaces=list(namespaces), agents=agents
    )
    return {"Authorization": f"Bearer {issued}"}


def served(engine: Engine, *request_ids: str, namespace: str = "team", route: str = "coder") -> None:
    """What the router records for requests its experiment counts (here written straight to the store)."""
    rows = [
        assignment(r, "champion", namespace=namespace, experiment=f"{namespace}/exp", route=route,
                   allocation=allocation_text({"champion": 100}))
        for r in request_ids
    ]  # fmt: skip
    with Session(engine) as session, session.begin():
        record_assignments(session, rows)


def rewards(engine: Engine, namespace: str = "team") -> tuple[int, float, list[float]]:
    with Session(engine) as session:
        found = observations(session, f"{namespace}/exp")
        stream = reward_stream(session, f"{namespace}/exp")
    champion = found.get("champion")
    return (champion.rewards, champion.reward_sum, stream.reward.tolist()) if champion else (0, 0.0, [])


def thumbs(request_id: str, value: int = 1, namespace: str = "team", **extra: Any) -> dict[str, Any]:
    return {"namespace": namespace, "feedback": [{"requestId": request_id, "thumbs": value, **extra}]}


def test_feedback_naming_only_a_recorded_request_is_its_reward_until_the_run_comes_and_then_once(
    client: TestClient, engine: Engine
) -> None:
    served(engine, "q1", "q2")
    response = post(client, "/v1/feedback/batch", thumbs("q1", correction="better"), EVERYWHERE, "f1")
    assert response.status_code == 200, response.text
    assert response.json()["inserted"] == 1
    assert post(client, "/v1/feedback/batch", thumbs("q2", -1), EVERYWHERE, "f2").status_code == 200
    assert rewards(engine) == (2, 1.0, [1.0, 0.0])
    # q2's run never comes; q1's does, compiling and passing half its tests: it takes the thumbs up
    body = {**runs("a", requestId="q1"), "namespace": "team"}
    assert post(client, "/v1/runs/batch", body, EVERYWHERE, "r1").status_code == 200
    with engine.connect() as connection:
        run = connection.execute(select(Run.id, Run.human_accepted, Run.reward)).one()
        attached = connection.execute(select(Feedback.run_id).where(Feedback.request_id == "q1")).scalar_one()
    assert (run.human_accepted, run.reward) == (True, pytest.approx((1 + 0.5 + 1) / 3))
    assert attached == run.id
    assert rewards(engine) == (2, pytest.approx((1 + 0.5 + 1) / 3), [0.0, pytest.approx((1 + 0.5 + 1) / 3)])


def test_a_replay_is_answered_once_and_a_resend_with_its_id_writes_nothing_twice(
    client: TestClient, engine: Engine
) -> None:
    served(engine, "q1")
    first = post(client, "/v1/feedback/batch", thumbs("q1"), EVERYWHERE, "k1")
    again = post(client, "/v1/feedback/batch", thumbs("q1"), EVERYWHERE, "k1")
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == first.json()
    other = post(client, "/v1/feedback/batch", thumbs("q1", -1), EVERYWHERE, "k1")
    assert other.status_code == 422
    assert other.json()["problems"][0]["field"] == "Idempotency-Key"
    named = thumbs("q1", id="fb-1")
    assert post(client, "/v1/feedback/batch", named, EVERYWHERE, "k2").json()["inserted"] == 1
    assert post(client, "/v1/feedback/batch", named, EVERYWHERE, "k3").json()["inserted"] == 0
    assert count(engine, Feedback) == 2
    assert rewards(engine) == (1, 1.0, [1.0])


def test_a_request_of_another_namespace_is_not_found_and_nothing_is_written(
    client: TestClient, engine: Engine
) -> None:
    served(engine, "q1", namespace="team-a")
    response = post(client, "/v1/feedback/batch", thumbs("q1", namespace="team-b"), EVERYWHERE, "k1")
    assert response.status_code == 422
    problem = response.json()["problems"][0]
    assert problem["field"] == "feedback[0].requestId"
    assert "no request the router recorded" in problem["message"]
    assert count(engine, Feedback) == 0
    with engine.connect() as connection:
        assert connection.execute(select(Assignment.human_accepted)).scalar_one() is None


@pytest.mark.parametrize(
    ("caller", "status"),
    [
        (token(Role.AGENT), 200),  # any agent of the namespace may use its routes
        (token(Role.AGENT, agents=("someone-else",)), 200),  # an assignment names no agent: the route decides
        (token(Role.ADMIN), 200),
        (token(Role.REVIEWER), 403),  # may write feedback, may not use routes
        (token(Role.OPERATOR, ("*",)), 403),
        (token(Role.AGENT, ("team-b",)), 403),
        ({}, 401),
        ({"Authorization": "Bearer kz2.forged.token"}, 401),
    ],
)
def test_rating_a_request_takes_feedback_create_and_routes_use_on_its_route(
    client: TestClient, engine: Engine, caller: dict[str, str], status: int
) -> None:
    served(engine, "q1")
    response = post(client, "/v1/feedback/batch", thumbs("q1"), caller, "k1")
    assert response.status_code == status, response.text
    assert count(engine, Feedback) == (1 if status == 200 else 0)
    if status == 403:
        assert "may not" in response.json()["error"]


def test_once_a_run_names_the_request_its_agent_decides_who_may_rate_it(
    client: TestClient, engine: Engine
) -> None:
    served(engine, "q1")
    body = {**runs("a", requestId="q1"), "namespace": "team"}
    assert post(client, "/v1/runs/batch", body, EVERYWHERE, "r1").status_code == 200
    stranger = post(client, "/v1/feedback/batch", thumbs("q1"), token(agents=("someone-else",)), "k1")
    assert stranger.status_code == 403
    assert "coder" in stranger.json()["error"]
    assert post(client, "/v1/feedback/batch", thumbs("q1"), token(agents=("coder",)), "k2").status_code == 200
    with engine.connect() as connection:
        assert connection.execute(select(Feedback.run_id)).scalar_one() is not None
