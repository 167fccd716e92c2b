"""``POST /v1/{runs,feedback,pairs,annotations}/batch``: experience, written once per ``Idempotency-Key``.

Each batch is all or nothing: it is validated whole (422 naming every bad field), written in one
transaction, and answered with ``accepted``, ``inserted`` (new rows; a record seen before counts
as accepted, not inserted) and the records' ids.

(No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at runtime.)
"""

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session

from controllers.gateway import batches
from controllers.gateway.context import Caller, Key, Shared
from controllers.gateway.schemas import (
    AnnotationBatch,
    AnnotationIn,
    FeedbackBatch,
    FeedbackIn,
    PairBatch,
    RunBatch,
    WriteResponse,
)
from controllers.gateway.writes import write_batch

router = APIRouter(prefix="/v1")


def _feedback_field(index: int, feedback: FeedbackIn) -> str:
    """The field an unknown run is reported on: whichever id the feedback used."""
    return f"feedback[{index}].{'runId' if feedback.run_id else 'requestId'}"


def _annotation_field(index: int, _: AnnotationIn) -> str:
    return f"annotations[{index}].runId"


@router.post("/runs/batch", response_model=WriteResponse, tags=["ingest"])
def ingest_runs(batch: RunBatch, _: Caller, key: Key, shared: Shared) -> JSONResponse:
    return write_batch(
        shared, "runs", key, batch, lambda session, now: batches.write_runs(session, batch.runs, key, now)
    )


@router.post("/feedback/batch", response_model=WriteResponse, tags=["ingest"])
def ingest_feedback(batch: FeedbackBatch, _: Caller, key: Key, shared: Shared) -> JSONResponse:
    def write(session: Session, now: datetime) -> dict[str, Any]:
        return batches.write_feedback(session, batch.feedback, key, now, _feedback_field)

    return write_batch(shared, "feedback", key, batch, write)


@router.post("/pairs/batch", response_model=WriteResponse, tags=["ingest"])
def ingest_pairs(batch: PairBatch, _: Caller, key: Key, shared: Shared) -> JSONResponse:
    return write_batch(
        shared, "pairs", key, batch, lambda session, now: batches.write_pairs(session, batch.pairs, now)
    )


@router.post("/annotations/batch", response_model=WriteResponse, tags=["review"])
def ingest_annotations(batch: AnnotationBatch, _: Caller, key: Key, shared: Shared) -> JSONResponse:
    def write(session: Session, now: datetime) -> dict[str, Any]:
        return batches.write_annotations(session, batch.annotations, key, now, _annotation_field)

    return write_batch(shared, "annotations", key, batch, write)
