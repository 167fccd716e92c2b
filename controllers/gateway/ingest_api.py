"""``POST /v1/{runs,feedback,pairs}/batch``: agents' experience, written once per ``Idempotency-Key``.

Each batch is all or nothing: it is validated whole (422 naming every bad field), written in one
transaction, and answered with ``accepted``, ``inserted`` (new rows; a record seen before counts
as accepted, not inserted) and the records' ids.

(No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at runtime.)
"""

from datetime import UTC, datetime

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from controllers.gateway import batches
from controllers.gateway.context import Caller, Key, Shared
from controllers.gateway.schemas import FeedbackBatch, FeedbackIn, PairBatch, RunBatch, WriteResponse
from controllers.gateway.writes import idempotent_write

router = APIRouter(prefix="/v1", tags=["ingest"])


def _feedback_field(index: int, feedback: FeedbackIn) -> str:
    """The field an unknown reference is reported on: whichever id the item used."""
    return f"feedback[{index}].{'runId' if feedback.run_id else 'requestId'}"


@router.post("/runs/batch", response_model=WriteResponse)
def ingest_runs(batch: RunBatch, _: Caller, key: Key, shared: Shared) -> JSONResponse:
    now = datetime.now(UTC)
    return idempotent_write(
        shared, "runs", key, batch, lambda session: batches.write_runs(session, batch.runs, key, now)
    )


@router.post("/feedback/batch", response_model=WriteResponse)
def ingest_feedback(batch: FeedbackBatch, _: Caller, key: Key, shared: Shared) -> JSONResponse:
    now = datetime.now(UTC)
    return idempotent_write(
        shared,
        "feedback",
        key,
        batch,
        lambda session: batches.write_feedback(session, batch.feedback, key, now, _feedback_field),
    )


@router.post("/pairs/batch", response_model=WriteResponse)
def ingest_pairs(batch: PairBatch, _: Caller, key: Key, shared: Shared) -> JSONResponse:
    now = datetime.now(UTC)
    return idempotent_write(
        shared, "pairs", key, batch, lambda session: batches.write_pairs(session, batch.pairs, now)
    )
