"""Validated ingest records → store writes. One place for the API and for ``kaizen ingest``.

Every batch goes into one namespace, and ids the store derives for records that came without one
are the caller's own (``scope``): two callers sending the same Idempotency-Key never derive the same
ids. ``where(i, record)`` names the i-th record for error messages: ``feedback[3].runId`` for the
API, ``runs.jsonl:4`` for the command line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from controllers.gateway.schemas import AnnotationIn, FeedbackIn, PairIn, RunIn
from controllers.store import ingest
from controllers.store.request_feedback import Targets

Where = Callable[[int, Any], str]


def write_runs(
    session: Session, records: Sequence[RunIn], key: str, now: datetime, *, namespace: str, scope: str
) -> dict[str, Any]:
    rows = [
        run.row(run.id or ingest.derived_id(namespace, scope, key, "run", i), now)
        for i, run in enumerate(records)
    ]
    return ingest.insert_runs(session, rows, namespace)


def write_feedback(
    session: Session,
    records: Sequence[FeedbackIn],
    key: str,
    now: datetime,
    where: Where,
    *,
    namespace: str,
    scope: str,
    allowed: Targets | None = None,
) -> dict[str, Any]:
    """Feedback on runs, or on requests the router recorded that no run names yet. ``allowed``: the
    agents and routes the caller was authorized for (the gateway's; a run that named a request since
    is refused, ``TargetsChanged``)."""
    targets = ingest.resolve_feedback(
        session, [(where(i, f), f.run_id, f.request_id) for i, f in enumerate(records)], namespace, allowed
    )
    rows = [
        {
            "id": f.id or ingest.derived_id(namespace, scope, key, "feedback", i),
            "created_at": now,
            "run_id": targets[where(i, f)][0],
            "request_id": targets[where(i, f)][1],
            "author": f.author,
            "thumbs": f.thumbs,
            "rating": f.rating,
            "categories": list(f.categories),
            "correction": f.correction,
            "accepted": f.accepted,
        }
        for i, f in enumerate(records)
    ]
    return ingest.insert_feedback(session, rows, namespace)


def write_pairs(
    session: Session, records: Sequence[PairIn], now: datetime, *, namespace: str
) -> dict[str, Any]:
    return ingest.insert_pairs(
        session, [{**p.model_dump(), "source": "explicit", "created_at": now} for p in records], namespace
    )


def write_annotations(
    session: Session,
    records: Sequence[AnnotationIn],
    key: str,
    now: datetime,
    where: Where,
    *,
    namespace: str,
    scope: str,
) -> dict[str, Any]:
    ingest.resolve_runs(session, [(where(i, a), a.run_id) for i, a in enumerate(records)], namespace)
    rows = [
        {
            "id": a.id or ingest.derived_id(namespace, scope, key, "annotation", i),
            "created_at": now,
            "run_id": a.run_id,
            "state": "pending",
            "reason": a.reason,
            "labels": list(a.labels),
            "reviewer": "",
            "note": "",
        }
        for i, a in enumerate(records)
    ]
    return ingest.insert_annotations(session, rows, namespace)
