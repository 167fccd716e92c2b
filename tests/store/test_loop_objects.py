"""The operator's summaries for the loop dashboard, on PostgreSQL and SQLite: kept per object, changed
in place, read per policy and kind, and pruned only for objects that are gone (past the grace, and
only in the operator's own namespaces)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from controllers.decisions.loop_summary import Summary
from controllers.store import loop_objects
from controllers.store.db import transaction
from controllers.store.loop_objects import PRUNE_GRACE, LoopObject

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def run(
    name: str, uid: str, state: str = "Running", namespace: str = "team", policy: str = "coder"
) -> Summary:
    return Summary("TrainingRun", namespace, name, uid, policy, {"state": state})


def rows(factory: sessionmaker[Session]) -> int:
    with transaction(factory) as session:
        return int(session.scalar(select(func.count()).select_from(LoopObject)) or 0)


def test_a_summary_is_one_row_per_object_changed_in_place(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        loop_objects.upsert(session, run("coder-0001", "u1"), NOW)
    with transaction(factory) as session:  # the same summary again (an operator restart): nothing changes
        loop_objects.upsert(session, run("coder-0001", "u1"), NOW + timedelta(hours=1))
    with transaction(factory) as session:
        [found] = loop_objects.of_policy(session, "team", "coder", "TrainingRun")
    assert (found.name, found.summary, found.updated_at) == ("coder-0001", {"state": "Running"}, NOW)
    with transaction(factory) as session:
        loop_objects.upsert(session, run("coder-0001", "u1", "Succeeded"), NOW + timedelta(hours=2))
        loop_objects.upsert(session, run("coder-0002", "u2"), NOW)
        loop_objects.upsert(session, run("other-0001", "u3", policy="other"), NOW)
        loop_objects.upsert(session, run("coder-0001", "u4", namespace="elsewhere"), NOW)
    assert rows(factory) == 4
    with transaction(factory) as session:
        shown = loop_objects.of_policy(session, "team", "coder", "TrainingRun")
        experiments = loop_objects.of_policy(session, "team", "coder", "Experiment")
    assert [(m.name, m.summary["state"]) for m in shown] == [
        ("coder-0001", "Succeeded"),
        ("coder-0002", "Running"),
    ]
    assert shown[0].updated_at == NOW + timedelta(hours=2)
    assert experiments == []


def test_only_gone_objects_past_the_grace_in_the_operators_namespaces_are_pruned(
    factory: sessionmaker[Session],
) -> None:
    old = NOW - PRUNE_GRACE - timedelta(seconds=1)
    with transaction(factory) as session:
        loop_objects.upsert(session, run("live", "u-live"), old)
        loop_objects.upsert(session, run("gone", "u-gone"), old)
        loop_objects.upsert(session, run("new", "u-new"), NOW)  # not yet in the operator's index
        loop_objects.upsert(session, run("theirs", "u-theirs", namespace="other-team"), old)
        loop_objects.upsert(session, Summary("Experiment", "team", "gone", "u-exp", "coder", {}), old)
    with transaction(factory) as session:
        assert loop_objects.prune(session, "TrainingRun", {"u-live"}, ["team"], NOW) == 1
    with transaction(factory) as session:
        left = {(m.name) for m in loop_objects.of_policy(session, "team", "coder", "TrainingRun")}
        theirs = loop_objects.of_policy(session, "other-team", "coder", "TrainingRun")
        experiments = loop_objects.of_policy(session, "team", "coder", "Experiment")
    assert left == {"live", "new"}
    assert [m.name for m in theirs] == ["theirs"]  # another operator's namespace
    assert [m.name for m in experiments] == ["gone"]  # another kind: its own loop prunes it
    with transaction(factory) as session:  # watching every namespace: the other team's goes too
        assert loop_objects.prune(session, "TrainingRun", {"u-live", "u-new"}, [], NOW) == 1


def test_a_re_created_object_takes_its_row_over(factory: sessionmaker[Session]) -> None:
    with transaction(factory) as session:
        loop_objects.upsert(session, run("coder-0001", "u-old", "Failed"), NOW - timedelta(days=1))
        loop_objects.upsert(session, run("coder-0001", "u-new", "Running"), NOW)
    with transaction(factory) as session:
        assert loop_objects.prune(session, "TrainingRun", {"u-new"}, [], NOW + PRUNE_GRACE * 2) == 0
        [found] = loop_objects.of_policy(session, "team", "coder", "TrainingRun")
    assert found.summary == {"state": "Running"}
