"""The human review loop: the queue of what awaits a person, and their verdicts.

``GET /v1/review/queue`` lists the pairs and annotations still pending (oldest first, optionally one
agent's; annotations come in through ``ingest_api``), ``POST /v1/reviews/batch`` approves or rejects
them by id (422 naming the item when an id is unknown), idempotent like every write (``writes``).

(No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at runtime.)
"""

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse

from controllers.gateway import review_views
from controllers.gateway.context import Caller, Key, Shared
from controllers.gateway.schemas import ReviewBatch
from controllers.gateway.writes import idempotent_write
from controllers.store import reviews as store_reviews
from controllers.store.db import transaction

router = APIRouter(prefix="/v1", tags=["review"])


@router.post("/reviews/batch")
def review(batch: ReviewBatch, caller: Caller, key: Key, shared: Shared) -> JSONResponse:
    reviews = [r.model_dump() for r in batch.reviews]
    return idempotent_write(
        shared,
        "reviews",
        key,
        batch,
        lambda session: store_reviews.apply_reviews(session, reviews, None),
        scope=caller.subject,
    )


@router.get("/review/queue")
def queue(
    _: Caller,
    shared: Shared,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    agent: Annotated[str | None, Query(max_length=128)] = None,
) -> JSONResponse:
    with transaction(shared.factory) as session:
        return JSONResponse(review_views.review_queue(session, limit, agent))
