"""Batch writes into the store, each exactly once per caller and Idempotency-Key.

A key is the caller's own: it is stored under the caller's identity (``scope``), so another caller
using the same key neither replays this caller's response nor blocks its write.

A write runs in one transaction that first claims its key (``INSERT … ON CONFLICT DO NOTHING``),
then inserts the rows, then stores the response under the key. A replay finds the key and returns
the stored response; a concurrent duplicate blocks on the key's row until the first commits. If the
database dies midway the transaction rolls back whole — the key included — so a retry starts over.
Rows carry writer-chosen ids (``controllers.store.ingest.derived_id``), so even a replay without the
key table could not duplicate them.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from controllers.store.db import insert_ignoring_duplicates, transaction
from controllers.store.models import IdempotencyKey


class KeyConflict(Exception):
    """The Idempotency-Key was used before with a different request."""


@dataclass(frozen=True)
class WriteResult:
    status_code: int
    body: dict[str, Any]
    replayed: bool


def request_hash(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def idempotent_write(
    factory: sessionmaker[Session],
    *,
    scope: str,
    key: str,
    endpoint: str,
    payload_hash: str,
    write: Callable[[Session], dict[str, Any]],
) -> WriteResult:
    """Run ``write`` once per (scope, key); later calls with them get the first response back."""
    now = datetime.now(UTC)
    with transaction(factory) as session:
        claim = insert_ignoring_duplicates(session, IdempotencyKey).values(
            scope=scope,
            key=key,
            endpoint=endpoint,
            request_hash=payload_hash,
            status_code=0,
            response={},
            created_at=now,
        )
        claimed = session.execute(claim.returning(IdempotencyKey.key)).first()
        mine = (IdempotencyKey.scope == scope, IdempotencyKey.key == key)
        if claimed is None:
            first = session.execute(select(IdempotencyKey).where(*mine)).scalar_one()
            if first.request_hash != payload_hash or first.endpoint != endpoint:
                raise KeyConflict(
                    f"Idempotency-Key {key!r} was already used for a different request to {first.endpoint}"
                )
            return WriteResult(first.status_code, first.response, replayed=True)
        body = write(session)
        session.execute(update(IdempotencyKey).where(*mine).values(status_code=200, response=body))
        return WriteResult(200, body, replayed=False)
