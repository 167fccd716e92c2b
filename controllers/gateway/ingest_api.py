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
def ingest_runs(batch: RunBatch, caller: Caller, key: Key, shared: Shared) -> JSONResponse:
    namespace, scope = batch.namespace or "default", caller.subject

    def write(session: Session, now: datetime) -> dict[str, Any]:
        return batches.write_runs(session, batch.runs, key, now, namespace=namespace, scope=scope)

    return write_batch(shared, "runs", key, batch, write, scope=scope)


@router.post("/feedback/batch", response_model=WriteResponse, tags=["ingest"])
def ingest_feedback(batch: FeedbackBatch, caller: Caller, key: Key, shared: Shared) -> JSONResponse:
    namespace, scope = batch.namespace or "default", caller.subject

    def write(session: Session, now: datetime) -> dict[str, Any]:
        return batches.write_feedback(
            session, batch.feedback, key, now, _feedback_field, namespace=namespace, scope=scope
        )

    return write_batch(shared, "feedback", key, batch, write, scope=scope)


@router.post("/pairs/batch", response_model=WriteResponse, tags=["ingest"])
def ingest_pairs(batch: PairBatch, caller: Caller, key: Key, shared: Shared) -> JSONResponse:
    namespace = batch.namespace or "default"

    def write(session: Session, now: datetime) -> dict[str, Any]:
        return batches.write_pairs(session, batch.pairs, now, namespace=namespace)

    return write_batch(shared, "pairs", key, batch, write, scope=caller.subject)


@router.post("/annotations/batch", response_model=WriteResponse, tags=["review"])
def ingest_annotations(batch: AnnotationBatch, caller: Caller, key: Key, shared: Shared) -> JSONResponse:
    namespace, scope = batch.namespace or "default", caller.subject

    def write(session: Session, now: datetime) -> dict[str, Any]:
        return batches.write_annotations(
            session, batch.annotations, key, now, _annotation_field, namespace=namespace, scope=scope
        )

    return write_batch(shared, "annotations", key, batch, write, scope=scope)
