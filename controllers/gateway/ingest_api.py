"""``POST /v1/{runs,feedback,pairs,annotations}/batch``: experience, written once per ``Idempotency-Key``.

Each batch is all or nothing: it is validated whole (422 naming every bad field), written in one
transaction, and answered with ``accepted``, ``inserted`` (new rows; a record seen before counts
as accepted, not inserted) and the records' ids.

Who may write: ``experience/create`` for each agent a run or pair names (and for annotations, which
flag an agent's runs for review), ``feedback/create`` for feedback and corrections on each agent
whose runs they name, in the batch's namespace (``controllers.decisions.access``). A refused
batch is a 403 naming the agent or namespace, and nothing of it is written.

(No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at runtime.)
"""

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from controllers.api.identity import Principal
from controllers.decisions.access import Action
from controllers.gateway import batches
from controllers.gateway.context import Caller, Gateway, Key, Shared, authorize, home_namespace
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
from controllers.store import ingest
from controllers.store.db import transaction

router = APIRouter(prefix="/v1")


def _feedback_field(index: int, feedback: FeedbackIn) -> str:
    """The field an unknown run is reported on: whichever id the feedback used."""
    return f"feedback[{index}].{'runId' if feedback.run_id else 'requestId'}"


def _annotation_field(index: int, _: AnnotationIn) -> str:
    return f"annotations[{index}].runId"


async def _may_write(
    shared: Gateway, caller: Principal, action: Action, namespace: str, agents: set[str]
) -> None:
    """Refuse the whole batch unless the caller may write for every agent it names."""
    if not agents:
        await authorize(shared, caller, action, namespace)
    for agent in sorted(agents):
        await authorize(shared, caller, action, namespace, agent)


async def _target_agents(
    shared: Gateway, namespace: str, targets: list[tuple[str | None, str | None]]
) -> set[str]:
    """The agents whose runs feedback or annotations name: the caller must be allowed to write for each.

    Run ids never change agent (a taken id is refused, ``IdTaken``), so what is read here is what
    the write then touches; ids that name nothing are left to the write's 422."""

    def read() -> set[str]:
        run_ids = {run for run, _ in targets if run}
        request_ids = {request for run, request in targets if request and not run}
        with transaction(shared.factory) as session:
            return ingest.run_agents(session, namespace, run_ids, request_ids)

    return await run_in_threadpool(read)


@router.post("/runs/batch", response_model=WriteResponse, tags=["ingest"])
async def ingest_runs(batch: RunBatch, caller: Caller, key: Key, shared: Shared) -> JSONResponse:
    namespace = home_namespace(caller, batch.namespace)
    await _may_write(shared, caller, Action.WRITE_EXPERIENCE, namespace, {run.agent for run in batch.runs})

    def write(session: Session, now: datetime) -> dict[str, Any]:
        return batches.write_runs(session, batch.runs, key, now, namespace=namespace, scope=caller.scope)

    return await run_in_threadpool(write_batch, shared, "runs", key, batch, write, scope=caller.scope)


@router.post("/feedback/batch", response_model=WriteResponse, tags=["ingest"])
async def ingest_feedback(batch: FeedbackBatch, caller: Caller, key: Key, shared: Shared) -> JSONResponse:
    namespace = home_namespace(caller, batch.namespace)
    await authorize(shared, caller, Action.WRITE_FEEDBACK, namespace)
    targets = await _target_agents(shared, namespace, [(f.run_id, f.request_id) for f in batch.feedback])
    await _may_write(shared, caller, Action.WRITE_FEEDBACK, namespace, targets)

    def write(session: Session, now: datetime) -> dict[str, Any]:
        return batches.write_feedback(
            session, batch.feedback, key, now, _feedback_field, namespace=namespace, scope=caller.scope
        )

    return await run_in_threadpool(write_batch, shared, "feedback", key, batch, write, scope=caller.scope)


@router.post("/pairs/batch", response_model=WriteResponse, tags=["ingest"])
async def ingest_pairs(batch: PairBatch, caller: Caller, key: Key, shared: Shared) -> JSONResponse:
    namespace = home_namespace(caller, batch.namespace)
    await _may_write(shared, caller, Action.WRITE_EXPERIENCE, namespace, {pair.agent for pair in batch.pairs})

    def write(session: Session, now: datetime) -> dict[str, Any]:
        return batches.write_pairs(session, batch.pairs, now, namespace=namespace)

    return await run_in_threadpool(write_batch, shared, "pairs", key, batch, write, scope=caller.scope)


@router.post("/annotations/batch", response_model=WriteResponse, tags=["review"])
async def ingest_annotations(
    batch: AnnotationBatch, caller: Caller, key: Key, shared: Shared
) -> JSONResponse:
    namespace = home_namespace(caller, batch.namespace)
    await authorize(shared, caller, Action.WRITE_EXPERIENCE, namespace)
    targets = await _target_agents(shared, namespace, [(a.run_id, None) for a in batch.annotations])
    await _may_write(shared, caller, Action.WRITE_EXPERIENCE, namespace, targets)

    def write(session: Session, now: datetime) -> dict[str, Any]:
        return batches.write_annotations(
            session, batch.annotations, key, now, _annotation_field, namespace=namespace, scope=caller.scope
        )

    return await run_in_threadpool(write_batch, shared, "annotations", key, batch, write, scope=caller.scope)
