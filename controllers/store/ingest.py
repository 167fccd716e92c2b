"""Batch inserts of agent experience — runs, feedback, pairs, annotations — that a replay cannot double.

Every record belongs to a namespace and has a writer-chosen id, unique within that namespace (the
agent's, or ``derived_id`` of the namespace, the caller, the batch's Idempotency-Key and the record's
position; a pair's is the hash of its lineage). A row whose id exists is skipped when it is the same
record again (a retry: the same agent's); an id another agent's record holds is refused (``IdTaken``).
The gateway and ``kaizen ingest`` run these inside ``controllers.store.idempotency.idempotent_write``.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import null, select, update
from sqlalchemy.orm import Session

from controllers.data.pairs import pair_id
from controllers.data.reward import human_verdict
from controllers.store import request_feedback
from controllers.store.db import insert_ignoring_duplicates
from controllers.store.models import DEFAULT_NAMESPACE, Annotation, Feedback, PreferencePair, ReviewState, Run
from controllers.store.policies import recompute_rewards, weigh_new_runs
from controllers.store.request_feedback import Targets, TargetsChanged

ID_NAMESPACE = uuid.UUID("6b61697a-656e-4b1d-8000-000000000001")


class UnknownReference(Exception):
    """A record names a run (or request) the store does not have in the record's namespace."""

    def __init__(self, field: str, value: str) -> None:
        what = "no run, and no request the router recorded," if field.endswith("requestId") else "no run"
        super().__init__(f"{field}: {what} with id {value!r} in this namespace")
        self.field = field


class IdTaken(Exception):
    """A record's id is held, in its namespace, by another agent's record (the gateway answers 409)."""

    def __init__(self, field: str, value: str) -> None:
        super().__init__(f"{field}: the id {value!r} is taken by another agent's record; choose another id")
        self.field, self.value = field, value


def derived_id(namespace: str, scope: str, key: str, kind: str, index: int) -> str:
    """The id of the index-th record of a batch sent by ``scope`` into ``namespace`` with ``key``: the
    same on every retry, and never the same for two callers or two namespaces."""
    return uuid.uuid5(ID_NAMESPACE, json.dumps([namespace, scope, key, kind, index])).hex


def _written(rows: list[dict[str, Any]], inserted: int) -> dict[str, Any]:
    """The response body of a batch write."""
    return {"accepted": len(rows), "inserted": inserted, "ids": [r["id"] for r in rows]}


def _uniform(model: type[Any], rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One executemany needs one shape: every row gets every column any row has, with the column's
    scalar default (or NULL) where a row left it out."""
    keys = set().union(*(row.keys() for row in rows))
    columns = model.__table__.columns
    fill = {
        k: (
            columns[k].default.arg
            if columns[k].default is not None and not callable(columns[k].default.arg)
            else None
        )
        for k in keys
    }
    return [row if len(row) == len(keys) else {**fill, **row} for row in rows]


def insert_new(session: Session, model: type[Any], rows: list[dict[str, Any]], namespace: str) -> int:
    """Insert rows into ``namespace``, skipping ids that exist there; returns how many were new.

    One executemany with one statement text (no RETURNING): the driver prepares it once and, with
    psycopg 3, pipelines the rows — a multi-row VALUES text would be re-parsed for every batch.
    """
    if not rows:
        return 0
    for row in rows:
        row["namespace"] = namespace
    rows = _uniform(model, rows)
    # Drivers do not agree on executemany's rowcount, so count what was new from the ids. (A
    # concurrent writer of the same id can make this an overcount; the rows themselves stay exact.)
    ids = [row["id"] for row in rows]
    existing: set[str] = set(
        session.execute(select(model.id).where(model.namespace == namespace, model.id.in_(ids))).scalars()
    )
    session.execute(insert_ignoring_duplicates(session, model), rows)
    return len(set(ids) - existing)


def _agents_of_runs(session: Session, namespace: str, run_ids: Iterable[str]) -> dict[str, str]:
    query = select(Run.id, Run.agent).where(Run.namespace == namespace, Run.id.in_(set(run_ids)))
    return {str(run_id): str(agent) for run_id, agent in session.execute(query)}


def check_owners(session: Session, model: type[Any], rows: list[dict[str, Any]], namespace: str) -> None:
    """After an insert: every row's id must hold that row's agent's record (a run's own agent, a
    feedback's or annotation's run's agent). Read after the insert, so a concurrent writer of the
    same id is caught too; raises IdTaken naming the first row that lost its id."""
    if not rows:
        return
    ids = {row["id"] for row in rows}
    if model is Run:
        stored = _agents_of_runs(session, namespace, ids)
        wanted = [row["agent"] for row in rows]
    else:  # feedback or an annotation: its run's agent; feedback on a request no run names: the request
        request = model.request_id if model is Feedback else null()
        query = (
            select(model.id, Run.agent, request)
            .outerjoin(Run, (Run.namespace == model.namespace) & (Run.id == model.run_id))
            .where(model.namespace == namespace, model.id.in_(ids))
        )
        found: Sequence[Any] = session.execute(query).all()
        stored = {str(i): _owner(agent, request_id) for i, agent, request_id in found}
        runs = _agents_of_runs(session, namespace, (row["run_id"] for row in rows if row.get("run_id")))
        wanted = [_owner(runs.get(row.get("run_id") or ""), row.get("request_id")) for row in rows]
    for index, (row, agent) in enumerate(zip(rows, wanted, strict=True)):
        if stored.get(row["id"], agent) != agent:
            raise IdTaken(f"{model.__tablename__}[{index}].id", row["id"])


def _owner(agent: str | None, request_id: str | None) -> str:
    return agent or f"request {request_id}"


def insert_runs(
    session: Session, rows: list[dict[str, Any]], namespace: str = DEFAULT_NAMESPACE
) -> dict[str, Any]:
    """Insert runs (column dicts with ids), computing each reward with its policy's weights."""
    now = datetime.now(UTC)
    for row in rows:
        row["changed_at"] = now
    weigh_new_runs(session, namespace, rows)
    inserted = insert_new(session, Run, rows, namespace)
    check_owners(session, Run, rows, namespace)
    # The first run naming a request takes the feedback that named only the request, and its verdict.
    if given := request_feedback.take_over(session, namespace, rows):
        recompute_rewards(session, namespace, given)
    return _written(rows, inserted)


def resolve_runs(
    session: Session, references: list[tuple[str, str]], namespace: str = DEFAULT_NAMESPACE
) -> None:
    """Check that each (field, run_id) names a run of ``namespace``; raises UnknownReference naming
    the field (a run of another namespace is unknown here)."""
    known = _agents_of_runs(session, namespace, {run_id for _, run_id in references})
    for field, run_id in references:
        if run_id not in known:
            raise UnknownReference(field, run_id)


def resolve_feedback(
    session: Session,
    references: list[tuple[str, str | None, str | None]],
    namespace: str = DEFAULT_NAMESPACE,
    allowed: Targets | None = None,
) -> dict[str, tuple[str | None, str | None]]:
    """Map each feedback's (field, run_id, request_id) to the (run id, request id) it rates in
    ``namespace``: a run by its id; by a request id, the first run naming it, else the request the
    router recorded (no run id; ``request_feedback``). Raises UnknownReference naming the field, and
    TargetsChanged when it now touches an agent or route that ``allowed`` (what the caller was
    authorized for) does not hold."""
    request_ids = {q for _, r, q in references if q and not r}
    # Lock the requests' assignments before reading their runs: a run naming one waits (take_over).
    routes = request_feedback.routes_of(session, namespace, request_ids, lock=True)
    agents = _agents_of_runs(session, namespace, {r for _, r, _ in references if r})
    firsts = request_feedback.first_runs(session, namespace, request_ids)
    resolved: dict[str, tuple[str | None, str | None]] = {}
    for field, run_id, request_id in references:
        agent: str | None = None
        route: str | None = None
        if run_id:
            agent = agents.get(run_id)
            resolved[field] = (run_id, None)
        elif request_id and request_id in firsts:
            first, agent = firsts[request_id]
            resolved[field] = (first, request_id)
        elif request_id and request_id in routes:
            resolved[field], route = (None, request_id), routes[request_id]
        if agent is None and route is None:
            raise UnknownReference(field, str(run_id or request_id))
        if allowed is not None and not allowed.covers(agent, route):
            raise TargetsChanged(field, str(run_id or request_id))
    return resolved


def run_agents(session: Session, namespace: str, run_ids: Collection[str]) -> set[str]:
    """The agents whose runs of ``namespace`` these ids name: who annotations on them are about, so the
    gateway can ask whether the caller may write for each (unknown ids: none)."""
    return set(_agents_of_runs(session, namespace, run_ids).values())


def insert_feedback(
    session: Session, rows: list[dict[str, Any]], namespace: str = DEFAULT_NAMESPACE
) -> dict[str, Any]:
    """Insert feedback and apply what it says: a human verdict moves its run's reward (or, on a request
    no run names, the request's: ``request_feedback``)."""
    inserted = insert_new(session, Feedback, rows, namespace)
    check_owners(session, Feedback, rows, namespace)
    on_runs = [row for row in rows if row.get("run_id")]
    mine = Run.namespace == namespace
    # Re-applying a verdict that is already stored changes nothing, so replays stay harmless.
    verdicts = {row["run_id"]: v for row in on_runs if (v := human_verdict(row)) is not None}
    for run_id, verdict in verdicts.items():
        session.execute(update(Run).where(mine, Run.id == run_id).values(human_accepted=verdict))
    # A correction is a pair to mine, a verdict may move the reward: the runs have changed for mining.
    touched = sorted({row["run_id"] for row in on_runs})
    session.execute(update(Run).where(mine, Run.id.in_(touched)).values(changed_at=datetime.now(UTC)))
    recompute_rewards(session, namespace, verdicts.keys())
    request_feedback.rate_requests(session, namespace, [row for row in rows if not row.get("run_id")])
    return _written(rows, inserted)


def insert_pairs(
    session: Session, rows: list[dict[str, Any]], namespace: str = DEFAULT_NAMESPACE
) -> dict[str, Any]:
    """Insert pairs, pending review unless a row says otherwise, each under the hash of its lineage."""
    for row in rows:
        row.setdefault("review_state", ReviewState.PENDING.value)
        row["id"] = pair_id(
            row["source"],
            row["prompt"],
            row["chosen"],
            row["rejected"],
            row.get("chosen_run_id"),
            row.get("rejected_run_id"),
            (row.get("agent") or "", row.get("role") or "", row.get("task_family") or ""),
        )
    return _written(rows, insert_new(session, PreferencePair, rows, namespace))


def insert_annotations(
    session: Session, rows: list[dict[str, Any]], namespace: str = DEFAULT_NAMESPACE
) -> dict[str, Any]:
    inserted = insert_new(session, Annotation, rows, namespace)
    check_owners(session, Annotation, rows, namespace)
    return _written(rows, inserted)
