"""Feedback that names only a router request, on PostgreSQL and SQLite: it rates the recorded request
until a run names the request id, the first such run takes it over, and the experiment counts the
request's reward exactly once whichever came first (``observations``, ``reward_stream``, the report's
timed stream and the drift windows)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, select, update
from sqlalchemy.orm import Session, sessionmaker

from controllers.api.routes import allocation_text
from controllers.store import ingest, policies
from controllers.store.db import transaction
from controllers.store.drift import drift_windows
from controllers.store.experiment_series import timed_reward_stream
from controllers.store.experiment_traffic import reward_stream
from controllers.store.experiments import observations, record_assignments
from controllers.store.models import Assignment, Feedback, Run
from controllers.store.request_feedback import Targets, TargetsChanged, targets
from tests.store.test_experiments import NOW, assignment

WEIGHTS = allocation_text({"champion": 50, "challenger": 50})


def recorded(
    factory: sessionmaker[Session], *request_ids: str, namespace: str = "team", **extra: Any
) -> None:
    """The router's assignment rows: served by the champion on route ``coder`` of ``namespace``."""
    rows = [
        assignment(r, "champion", namespace=namespace, route="coder", allocation=WEIGHTS, **extra)
        for r in request_ids
    ]
    with transaction(factory) as session:
        record_assignments(session, rows)


def rate(
    factory: sessionmaker[Session],
    request_id: str,
    namespace: str = "team",
    allowed: Targets | None = None,
    **verdict: Any,
) -> dict[str, Any]:
    """Feedback naming ``request_id`` alone, written as the gateway and ``kaizen ingest`` write it."""
    row = {"id": verdict.pop("id", f"f-{request_id}-{len(verdict)}"), "created_at": NOW, **verdict}
    with transaction(factory) as session:
        resolved = ingest.resolve_feedback(
            session, [("feedback[0].requestId", None, request_id)], namespace, allowed
        )
        row["run_id"], row["request_id"] = resolved["feedback[0].requestId"]
        return ingest.insert_feedback(session, [row], namespace)


def run_for(request_id: str, compile_ok: bool, **extra: Any) -> dict[str, Any]:
    row = {
        "id": f"run-{request_id}",
        "created_at": NOW,
        "agent": "coder",
        "task_id": request_id,
        "prompt": "p",
        "output": "o",
        "request_id": request_id,
        "compile_ok": compile_ok,
    }
    return row | extra


def counted(factory: sessionmaker[Session]) -> tuple[int, float, list[float], list[float]]:
    """The champion's (rewards, reward sum) in ``observations``, and the rewards of ``reward_stream``
    and of the report's timed stream."""
    with transaction(factory) as session:
        found = observations(session, "exp")["champion"]
        stream = reward_stream(session, "exp")
        timed, _ = timed_reward_stream(session, "exp")
    return found.rewards, found.reward_sum, stream.reward.tolist(), timed.reward.tolist()


def feedback_rows(engine: Engine) -> list[tuple[Any, ...]]:
    with engine.connect() as connection:
        query = select(Feedback.id, Feedback.run_id, Feedback.request_id).order_by(Feedback.id)
        return [tuple(row) for row in connection.execute(query)]


def test_a_request_rated_before_any_run_counts_once_with_the_reward_of_its_verdict(
    factory: sessionmaker[Session], engine: Engine
) -> None:
    recorded(factory, "q1", "q2")
    assert rate(factory, "q1", thumbs=1)["inserted"] == 1
    rate(factory, "q2", rating=2)  # a rating under 4 rejects
    rate(factory, "q2", id="f-q2-note", categories=["slow"])  # no verdict: changes no reward
    assert feedback_rows(engine) == [
        ("f-q1-1", None, "q1"),
        ("f-q2-1", None, "q2"),
        ("f-q2-note", None, "q2"),
    ]
    assert counted(factory) == (2, 1.0, [1.0, 0.0], [1.0, 0.0])
    # and when no run ever comes, that is where it stays: a retry changes nothing
    rate(factory, "q1", thumbs=1)
    assert counted(factory) == (2, 1.0, [1.0, 0.0], [1.0, 0.0])


def test_a_run_that_comes_later_takes_the_feedback_and_its_verdict_and_the_request_still_counts_once(
    factory: sessionmaker[Session], engine: Engine
) -> None:
    recorded(factory, "q1")
    rate(factory, "q1", thumbs=1, correction="better")
    assert counted(factory) == (1, 1.0, [1.0], [1.0])
    with transaction(factory) as session:
        ingest.insert_runs(session, [run_for("q1", compile_ok=False)], "team")
    assert feedback_rows(engine) == [("f-q1-2", "run-q1", "q1")]
    with engine.connect() as connection:
        taken = connection.execute(select(Run.human_accepted, Run.reward)).one()
    # compile 0 and human acceptance 1 under equal weights: the run's reward, by the rules feedback on a run has
    assert tuple(taken) == (True, pytest.approx(0.5))
    assert counted(factory) == (1, pytest.approx(0.5), [0.5], [0.5])
    # later feedback on the request goes to its run, as before
    rate(factory, "q1", id="f-late", thumbs=-1)
    assert ("f-late", "run-q1", "q1") in feedback_rows(engine)
    assert counted(factory) == (1, 0.0, [0.0], [0.0])


def test_a_run_with_a_verdict_of_its_own_keeps_it_and_only_the_first_run_takes_the_feedback(
    factory: sessionmaker[Session], engine: Engine
) -> None:
    recorded(factory, "q1", "q2")
    rate(factory, "q1", thumbs=-1)
    rate(factory, "q2", thumbs=-1)
    with transaction(factory) as session:
        ingest.insert_runs(
            session,
            [
                run_for("q1", compile_ok=True, human_accepted=True),
                run_for("q2", compile_ok=True),
                run_for("q2", compile_ok=True, id="run-q2-again"),
            ],
            "team",
        )
    with engine.connect() as connection:
        runs = connection.execute(select(Run.id, Run.human_accepted).order_by(Run.id)).all()
    assert [tuple(r) for r in runs] == [("run-q1", True), ("run-q2", False), ("run-q2-again", None)]
    assert feedback_rows(engine) == [("f-q1-1", "run-q1", "q1"), ("f-q2-1", "run-q2", "q2")]
    # every run naming a request is one reward, as before; no reward of the feedback alone is left
    assert counted(factory)[:2] == (3, pytest.approx(1.0 + 0.5 + 1.0))


def test_the_drift_windows_count_a_request_rated_by_feedback_alone(factory: sessionmaker[Session]) -> None:
    recorded(factory, "q1", "q2", "q3", "q4")
    with transaction(factory) as session:
        ingest.insert_runs(session, [run_for("q1", True), run_for("q3", False)], "team")
    rate(factory, "q2", thumbs=1)
    rate(factory, "q4", thumbs=-1)
    with transaction(factory) as session:
        windows = drift_windows(session, "exp", "champion", NOW - timedelta(seconds=1), size=2)
    assert windows.rewards == 4
    assert windows.baseline is not None
    assert windows.recent is not None
    assert (windows.baseline.reward_sum, windows.recent.reward_sum) == (2.0, 0.0)


def test_the_route_policys_weights_decide_the_reward_of_a_verdict_alone(
    factory: sessionmaker[Session],
) -> None:
    recorded(factory, "q1")
    weights = {"compileOk": 1.0, "testsPassed": 0.0, "errors": 0.0, "humanAccepted": 0.0}
    with transaction(factory) as session:
        policies.upsert_policy(session, "team", "coder", "coder", "", "", weights)
    rate(factory, "q1", thumbs=1)
    assert counted(factory) == (0, 0.0, [], [])  # the policy does not weigh human acceptance
    with transaction(factory) as session:
        policies.upsert_policy(session, "team", "coder", "coder", "", "", {**weights, "humanAccepted": 0.5})
    assert counted(factory) == (1, 1.0, [1.0], [1.0])


def test_a_request_of_another_namespace_or_one_recorded_without_its_route_is_not_found(
    factory: sessionmaker[Session], engine: Engine
) -> None:
    recorded(factory, "q1", namespace="team-a")
    recorded(factory, "old")
    with transaction(factory) as session:  # recorded before revision 0007: nothing says who may rate it
        session.execute(update(Assignment).where(Assignment.request_id == "old").values(route=None))
    for namespace, request_id in (("team-b", "q1"), ("team", "old"), ("team", "never-served")):
        with pytest.raises(ingest.UnknownReference) as unknown:
            rate(factory, request_id, namespace=namespace, thumbs=1)
        assert unknown.value.field == "feedback[0].requestId"
        assert "no request the router recorded" in str(unknown.value)
    assert feedback_rows(engine) == []


def test_what_a_batch_would_touch_and_a_run_that_came_in_between_is_refused(
    factory: sessionmaker[Session], engine: Engine
) -> None:
    recorded(factory, "q1", "q2")
    with transaction(factory) as session:
        ingest.insert_runs(session, [run_for("q2", True, agent="fixer")], "team")
        assert targets(session, "team", set(), {"q1", "q2", "unknown"}) == Targets(
            frozenset({"fixer"}), frozenset({"coder"})
        )
    authorized = Targets(routes=frozenset({"coder"}))  # what the caller was allowed when q1 had no run
    with transaction(factory) as session:
        ingest.insert_runs(session, [run_for("q1", True, agent="fixer", id="run-q1-fixer")], "team")
    with pytest.raises(TargetsChanged):
        rate(factory, "q1", allowed=authorized, thumbs=-1)
    assert feedback_rows(engine) == []
    rate(factory, "q1", allowed=Targets(frozenset({"fixer"})), thumbs=-1)
    assert feedback_rows(engine) == [("f-q1-1", "run-q1-fixer", "q1")]


def test_a_feedback_id_held_by_a_request_is_not_silently_reused_for_a_run(
    factory: sessionmaker[Session],
) -> None:
    recorded(factory, "q1")
    with transaction(factory) as session:
        ingest.insert_runs(session, [run_for("other", True)], "team")
    rate(factory, "q1", id="f1", thumbs=1)
    rate(factory, "q1", id="f1", thumbs=1)  # the same record again: a no-op
    row = {"id": "f1", "created_at": NOW, "run_id": "run-other", "thumbs": -1}
    with pytest.raises(ingest.IdTaken), transaction(factory) as session:
        ingest.insert_feedback(session, [row], "team")
