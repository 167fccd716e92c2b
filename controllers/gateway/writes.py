"""Every gateway write, answered once: the idempotent-write step the batch, review and policy routes share.

A write runs in one transaction with its ``Idempotency-Key``; a replay of the same key and body gets
the stored response (``Idempotent-Replayed: true``), the same key with another body a 422 naming
``Idempotency-Key``, a reference to an unknown id a 422 naming the offending field. The counters
record what was newly stored and what was replayed. Keys are the caller's (``scope``, its identity):
another caller's same key is another write. A record id another agent holds in the namespace is a
409 naming the field, and so is feedback on a request that a run named while the feedback was being
authorized (sent again, it is authorized for that run's agent).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from fastapi.responses import JSONResponse
from pydantic import BaseModel
from sqlalchemy.orm import Session

from controllers.gateway.context import Gateway
from controllers.gateway.errors import ApiError
from controllers.store import idempotency
from controllers.store.idempotency import KeyConflict, request_hash
from controllers.store.ingest import IdTaken, UnknownReference
from controllers.store.request_feedback import TargetsChanged


def idempotent_write(
    shared: Gateway,
    kind: str,
    key: str,
    payload: BaseModel,
    build: Callable[[Session], dict[str, Any]],
    *,
    scope: str,
) -> JSONResponse:
    """Run ``build`` once per (caller, key) and answer its body (or the first answer, on a replay)."""
    try:
        result = idempotency.idempotent_write(
            shared.factory,
            scope=scope,
            key=key,
            endpoint=kind,
            payload_hash=request_hash(payload.model_dump(mode="json")),
            write=build,
        )
    except KeyConflict as error:
        raise ApiError(422, str(error), [{"field": "Idempotency-Key", "message": str(error)}]) from error
    except UnknownReference as error:
        raise ApiError(422, str(error), [{"field": error.field, "message": str(error)}]) from error
    except (IdTaken, TargetsChanged) as error:
        raise ApiError(409, str(error), [{"field": error.field, "message": str(error)}]) from error
    headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
    if result.replayed:
        shared.metrics.replays.inc()
    elif "inserted" in result.body:
        shared.metrics.records.labels(kind).inc(result.body["inserted"])
    return JSONResponse(result.body, status_code=result.status_code, headers=headers)


def write_batch(
    shared: Gateway,
    kind: str,
    key: str,
    batch: BaseModel,
    build: Callable[[Session, datetime], dict[str, Any]],
    *,
    scope: str,
) -> JSONResponse:
    """``idempotent_write`` for an ingest batch: every record stamped with the time the request came in."""
    now = datetime.now(UTC)
    return idempotent_write(shared, kind, key, batch, lambda session: build(session, now), scope=scope)
