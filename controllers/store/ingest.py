"""Batch inserts of agent experience — runs, feedback, pairs, annotations — that a replay cannot double.

Every record has a writer-chosen id (the agent's, or ``derived_id`` of the batch's Idempotency-Key
and its position; a pair's is the hash of its lineage), and rows whose id exists are skipped. The
gateway and ``kaizen ingest`` run these inside ``controllers.store.idempotency.idempotent_write``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from controllers.data.pairs import pair_id
from controllers.data.reward import human_verdict
from controllers.store.db import insert_ignoring_duplicates
from controllers.store.models import Annotation, Feedback, PreferencePair, ReviewState, Run
from controllers.store.policies import recompute_rewards, weigh_new_runs

ID_NAMESPACE = uuid.UUID("6b61697a-656e-4b1d-8000-000000000001")


class UnknownReference(Exception):
    """A record names a run (or request) the store does not have."""

    def __init__(self, field: str, value: str) -> None:
        super().__init__(f"{field}: no run with id or request id {value!r}")
        self.field = field


def derived_id(key: str, kind: str, index: int) -> str:
    """The id of the index-th record of a batch sent with ``key``: the same on every retry."""
    return uuid.uuid5(ID_NAMESPACE, f"{key}/{kind}/{index}").hex


def _written(rows: list[dict[str, Any]], inserted: int) -> dict[str, Any]:
    """The response body of a batch write."""
    return {"accepted": len(rows), "inserted": inserted, "ids": [r["id"] for r in rows]}


def insert_new(session: Session, model: type[Any], rows: list[dict[str, Any]]) -> int:
    """Insert rows, skipping ids that exist; returns how many were new.

    One executemany with one statement text (no RETURNING): the driver prepares it once and, with
    psycopg 3, pipelines the rows — a multi-row VALUES text would be re-parsed for every batch.
    """
    if not rows:
        return 0
    # One executemany needs one shape: every row gets every column any row has, with the column's
    # scalar default (or NULL) where a row left it out.
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
    rows = [row if len(row) == len(keys) else {**fill, **row} for row in rows]
    # Drivers do not agree on executemany's rowcount, so count what was new from the ids. (A
    # concurrent writer of the same id can make this an overcount; the rows themselves stay exact.)
    key = model.__mapper__.primary_key[0]
    existing: set[Any] = set(
        session.execute(select(key).where(key.in_([row[key.key] for row in rows]))).scalars()
    )
    session.execute(insert_ignoring_duplicates(session, model), rows)
    return len({row[key.key] for row in rows} - existing)


def insert_runs(session: Session, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Insert runs (column dicts with ids), computing each reward with its policy's weights."""
    now = datetime.now(UTC)
    for row in rows:
        row["changed_at"] = now
    weigh_new_runs(session, rows)
    return _written(rows, insert_new(session, Run, rows))


def resolve_runs(session: Session, references: list[tuple[str, str | None, str | None]]) -> dict[str, str]:
    """Map each (field, run_id, request_id) to a run id; raises UnknownReference naming the field."""
    run_ids = {r for _, r, _ in references if r}
    request_ids = {q for _, r, q in references if q and not r}
    known = set(session.execute(select(Run.id).where(Run.id.in_(run_ids))).scalars()) if run_ids else set()
    by_request = (
        dict(session.execute(select(Run.request_id, Run.id).where(Run.request_id.in_(request_ids))).all())
        if request_ids
        else {}
    )
    resolved = {}
    for field, run_id, request_id in references:
        if run_id:
            if run_id not in known:
                raise UnknownReference(field, run_id)
            resolved[field] = run_id
        elif request_id:
            if request_id not in by_request:
                raise UnknownReference(field, request_id)
            resolved[field] = str(by_request[request_id])
    return resolved


def insert_feedback(session: Session, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Insert feedback and apply what it says: a human verdict moves its run's reward."""
    inserted = insert_new(session, Feedback, rows)
    # Re-applying a verdict that is already stored changes nothing, so replays stay harmless.
    verdicts = {row["run_id"]: v for row in rows if (v := human_verdict(row)) is not None}
    for run_id, verdict in verdicts.items():
        session.execute(update(Run).where(Run.id == run_id).values(human_accepted=verdict))
    # A correction is a pair to mine, a verdict may move the reward: the runs have changed for mining.
    touched = sorted({row["run_id"] for row in rows})
    session.execute(update(Run).where(Run.id.in_(touched)).values(changed_at=datetime.now(UTC)))
    recompute_rewards(session, verdicts.keys())
    return _written(rows, inserted)


def insert_pairs(session: Session, rows: list[dict[str, Any]]) -> dict[str, Any]:
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
    return _written(rows, insert_new(session, PreferencePair, rows))


def insert_annotations(session: Session, rows: list[dict[str, Any]]) -> dict[str, Any]:
    return _written(rows, insert_new(session, Annotation, rows))
