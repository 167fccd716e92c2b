"""``POST /v1/{runs,feedback,pairs,annotations}/batch``: experience, written once per ``Idempotency-Key``.

Each batch is all or nothing: it is validated whole (422 naming every bad field), written in one
transaction, and answered with ``accepted``, ``inserted`` (new rows; a record seen before counts
as accepted, not inserted) and the records' ids.

Who may write: ``experience/create`` for each agent a run or pair names (and for annotations, which
flag an agent's runs for review), ``feedback/create`` for feedback and corrections on each agent
whose runs they name, in the batch's namespace (``controllers.decisions.access``). Feedback that
names a request the router recorded and no run names yet rates the request
(``controllers.store.request_feedback``): it needs ``routes/use`` on the route that served it (a
feedback token, the widget's, which may not use routes, asks ``feedback/create`` on the route's name
instead). A refused batch is a 403 naming the agent, route or namespace, and nothing of it is written.

(No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at runtime.)
"""

from datetime import datetime
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from controllers.api.identity import Principal
from controllers.decisions.access import Action, request_rating_action
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
from controllers.store.request_feedback import Targets, targets

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


async def _run_agents(shared: Gateway, namespace: str, run_ids: set[str]) -> set[str]:
    """The agents whose runs annotations name: the caller must be allowed to write for each.

    Run ids never change agent (a taken id is refused, ``IdTaken``), so what is read here is what
    the write then touches; ids that name nothing are left to the write's 422."""

    def read() -> set[str]:
        with transaction(shared.factory) as session:
            return ingest.run_agents(session, namespace, run_ids)

    return await run_in_threadpool(read)


async def _feedback_targets(shared: Gateway, namespace: str, feedback: list[FeedbackIn]) -> Targets:
    """The agents whose runs feedback names, and the routes of the requests it names that no run names
    yet: the caller must be allowed to write for each agent and to use each route. The write checks
    that it touches nothing else (a run that named a request since is a 409); unknown ids are its 422."""

    def read() -> Targets:
        run_ids = {f.run_id for f in feedback if f.run_id}
        request_ids = {f.request_id for f in feedback if f.request_id and not f.run_id}
        with transaction(shared.factory) as session:
            return targets(session, namespace, run_ids, request_ids)

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
    allowed = await _feedback_targets(shared, namespace, batch.feedback)
    await _may_write(shared, caller, Action.WRITE_FEEDBACK, namespace, set(allowed.agents))
    for route in sorted(allowed.routes):  # a request no run names yet: whoever may use (or rate) its route
        await authorize(shared, caller, request_rating_action(caller), namespace, route)

    def write(session: Session, now: datetime) -> dict[str, Any]:
        return batches.write_feedback(
            session,
            batch.feedback,
            key,
            now,
            _feedback_field,
            namespace=namespace,
            scope=caller.scope,
            allowed=allowed,
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
    agents = await _run_agents(shared, namespace, {a.run_id for a in batch.annotations})
    await _may_write(shared, caller, Action.WRITE_EXPERIENCE, namespace, agents)

    def write(session: Session, now: datetime) -> dict[str, Any]:
        return batches.write_annotations(
            session, batch.annotations, key, now, _annotation_field, namespace=namespace, scope=caller.scope
        )

    return await run_in_threadpool(write_batch, shared, "annotations", key, batch, write, scope=caller.scope)
