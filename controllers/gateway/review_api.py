"""The human review loop: the queue of what awaits a person, and their verdicts.

``GET /v1/review/queue`` lists the pairs and annotations still pending (oldest first, optionally one
agent's; annotations come in through ``ingest_api``), ``POST /v1/reviews/batch`` approves or rejects
them by id (422 naming the item when an id is unknown), idempotent like every write (``writes``).
Reading the queue takes ``reviews/list`` in the namespace, posting verdicts ``reviews/create``; the
queue shows text scrubbed of secrets and personal data (``review_views``), never the raw rows.

(No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at runtime.)
"""

from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from controllers.decisions.access import Action
from controllers.gateway import review_views
from controllers.gateway.context import Caller, Key, Shared, authorize, home_namespace
from controllers.gateway.schemas import ReviewBatch
from controllers.gateway.writes import idempotent_write
from controllers.store import reviews as store_reviews
from controllers.store.db import transaction

router = APIRouter(prefix="/v1", tags=["review"])


Namespace = Annotated[str | None, Query(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", max_length=63)]


@router.post("/reviews/batch")
async def review(batch: ReviewBatch, caller: Caller, key: Key, shared: Shared) -> JSONResponse:
    namespace = home_namespace(caller, batch.namespace)
    await authorize(shared, caller, Action.WRITE_REVIEWS, namespace)
    reviews = [r.model_dump() for r in batch.reviews]

    def write(session: Session) -> dict[str, Any]:
        return store_reviews.apply_reviews(session, reviews, [namespace])

    return await run_in_threadpool(idempotent_write, shared, "reviews", key, batch, write, scope=caller.scope)


@router.get("/review/queue")
async def queue(
    caller: Caller,
    shared: Shared,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    agent: Annotated[str | None, Query(max_length=128)] = None,
    namespace: Namespace = None,
) -> JSONResponse:
    home = home_namespace(caller, namespace)
    await authorize(shared, caller, Action.READ_REVIEWS, home)

    def read() -> dict[str, Any]:
        with transaction(shared.factory) as session:
            return review_views.review_queue(session, limit, agent, [home])

    return JSONResponse(await run_in_threadpool(read))
