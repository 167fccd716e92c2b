"""The blind review's store work, shared by the bearer-token API (``reservations_api``) and the
reviewer's workbench page (``ui_review``): both reserve, release, judge and count through these
functions, so the page can never drift from what ``/v1/review`` does. Callers authorize first and
name the reviewer by the caller's scope; the store's refusals come back as ``ApiError`` (404/409).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from controllers.gateway.context import Gateway
from controllers.gateway.errors import ApiError
from controllers.gateway.review_schemas import VerdictBody, reservation_view
from controllers.gateway.writes import idempotent_write
from controllers.store import review_queue, review_stats, review_verdicts
from controllers.store.db import transaction

T = TypeVar("T")


async def refusals(call: Callable[[], Awaitable[T]]) -> T:
    """Await ``call``; the store's refusals become the API's 404 and 409, naming the field."""
    try:
        return await call()
    except review_queue.UnknownPolicy as error:
        raise ApiError(404, str(error), [{"field": "policy", "message": str(error)}]) from error
    except review_verdicts.UnknownPair as error:
        raise ApiError(404, str(error), [{"field": "pairId", "message": str(error)}]) from error
    except review_verdicts.ReviewRefused as error:
        raise ApiError(409, str(error), [{"field": "pairId", "message": str(error)}]) from error


async def in_store(shared: Gateway, work: Callable[[Session], T]) -> T:
    """Run ``work`` in one transaction off the event loop, with the store's refusals mapped."""

    def run() -> T:
        with transaction(shared.factory) as session:
            return work(session)

    return await refusals(lambda: run_in_threadpool(run))


async def reserve(
    shared: Gateway, reviewer: str, namespace: str, policy: str | None, agent: str | None
) -> dict[str, Any]:
    """The item ``reviewer`` holds or the next one reserved for them (``reservation`` None: none)."""
    ttl = timedelta(seconds=shared.settings.review_ttl_seconds)

    def work(session: Session) -> dict[str, Any]:
        now = datetime.now(UTC)
        found = review_queue.reserve_next(session, namespace, reviewer, now, ttl, agent, policy)
        return {"reservation": reservation_view(found).model_dump(by_alias=True) if found else None}

    return await in_store(shared, work)


async def release(shared: Gateway, reviewer: str, namespace: str, pair_id: str) -> dict[str, Any]:
    """Give back (skip) the reviewer's live reservation of a pair; 404 when they hold none."""

    def work(session: Session) -> bool:
        return review_queue.release(session, namespace, reviewer, pair_id, datetime.now(UTC))

    if not await in_store(shared, work):
        message = f"you hold no reservation of pair {pair_id!r} in namespace {namespace!r}"
        raise ApiError(404, message, [{"field": "pairId", "message": message}])
    return {"namespace": namespace, "pairId": pair_id, "released": True}


async def judge(shared: Gateway, reviewer: str, namespace: str, key: str, body: VerdictBody) -> JSONResponse:
    """Record the verdict once per (reviewer, idempotency key): a retried request gets the first answer."""
    given = review_verdicts.VerdictIn(body.verdict, body.correction, tuple(body.tags), body.note)

    def write(session: Session) -> dict[str, Any]:
        return review_verdicts.submit(session, namespace, reviewer, body.pair_id, given, datetime.now(UTC))

    return await refusals(
        lambda: run_in_threadpool(idempotent_write, shared, "verdicts", key, body, write, scope=reviewer)
    )


async def progress(
    shared: Gateway, reviewer: str, namespace: str, policy: str | None, agent: str | None
) -> dict[str, Any]:
    def work(session: Session) -> dict[str, Any]:
        counts = review_stats.progress(session, namespace, reviewer, datetime.now(UTC), agent, policy)
        return {"namespace": namespace, "policy": policy, "agent": agent, **counts}

    return await in_store(shared, work)


async def agreement(shared: Gateway, namespace: str, policy: str | None) -> dict[str, Any]:
    return await in_store(shared, lambda session: review_stats.agreement(session, namespace, policy))
