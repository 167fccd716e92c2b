"""The blind pairwise review: reserve the next item, skip it, judge it, and the figures beside it.

``POST /v1/review/reservations`` reserves the oldest item of the caller's namespace queue (narrowed to
a policy or an agent) for ``KAIZEN_REVIEW_TTL_SECONDS`` and shows it blind (``review_schemas``);
``DELETE /v1/review/reservations/{pairId}`` gives it back (skip); ``POST /v1/review/verdicts`` judges
the item the caller holds (idempotent like every write: 404 for an unknown pair, 409 naming why a
verdict is refused); ``GET /v1/review/progress`` and ``GET /v1/review/agreement`` count. Reading and
reserving take ``reviews/list`` in the namespace, verdicts ``reviews/create``: an agent's token has
neither. The reviewer is the caller's own identity (its scope), never a name in the body.

(No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at runtime.)
"""

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, TypeVar

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from controllers.decisions.access import Action
from controllers.gateway.context import Caller, Gateway, Key, Shared, authorize, home_namespace
from controllers.gateway.errors import ApiError
from controllers.gateway.review_api import Namespace
from controllers.gateway.review_schemas import ReserveIn, VerdictBody, reservation_view
from controllers.gateway.writes import idempotent_write
from controllers.store import review_queue, review_stats, review_verdicts
from controllers.store.db import transaction

router = APIRouter(prefix="/v1/review", tags=["review"])
T = TypeVar("T")
Policy = Annotated[str | None, Query(max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]
Agent = Annotated[str | None, Query(max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
PairId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


async def _in_store(shared: Gateway, work: Callable[[Session], T]) -> T:
    """Run ``work`` in one transaction off the event loop; the store's refusals become 404/409."""

    def run() -> T:
        with transaction(shared.factory) as session:
            return work(session)

    result: T = await _refusals(lambda: run_in_threadpool(run))
    return result


async def _refusals(call: Callable[[], Any]) -> Any:
    try:
        return await call()
    except review_queue.UnknownPolicy as error:
        raise ApiError(404, str(error), [{"field": "policy", "message": str(error)}]) from error
    except review_verdicts.UnknownPair as error:
        raise ApiError(404, str(error), [{"field": "pairId", "message": str(error)}]) from error
    except review_verdicts.ReviewRefused as error:
        raise ApiError(409, str(error), [{"field": "pairId", "message": str(error)}]) from error


@router.post("/reservations")
async def reserve(body: ReserveIn, caller: Caller, shared: Shared) -> JSONResponse:
    namespace = home_namespace(caller, body.namespace)
    await authorize(shared, caller, Action.READ_REVIEWS, namespace)
    ttl = timedelta(seconds=shared.settings.review_ttl_seconds)

    def work(session: Session) -> dict[str, Any]:
        now = datetime.now(UTC)
        found = review_queue.reserve_next(session, namespace, caller.scope, now, ttl, body.agent, body.policy)
        return {"reservation": reservation_view(found).model_dump(by_alias=True) if found else None}

    return JSONResponse(await _in_store(shared, work))


@router.delete("/reservations/{pair_id}")
async def release(
    pair_id: PairId, caller: Caller, shared: Shared, namespace: Namespace = None
) -> JSONResponse:
    home = home_namespace(caller, namespace)
    await authorize(shared, caller, Action.READ_REVIEWS, home)

    def work(session: Session) -> bool:
        return review_queue.release(session, home, caller.scope, pair_id, datetime.now(UTC))

    if not await _in_store(shared, work):
        message = f"you hold no reservation of pair {pair_id!r} in namespace {home!r}"
        raise ApiError(404, message, [{"field": "pairId", "message": message}])
    return JSONResponse({"namespace": home, "pairId": pair_id, "released": True})


@router.post("/verdicts")
async def verdict(body: VerdictBody, caller: Caller, key: Key, shared: Shared) -> JSONResponse:
    namespace = home_namespace(caller, body.namespace)
    await authorize(shared, caller, Action.WRITE_REVIEWS, namespace)
    given = review_verdicts.VerdictIn(body.verdict, body.correction, tuple(body.tags), body.note)

    def write(session: Session) -> dict[str, Any]:
        return review_verdicts.submit(
            session, namespace, caller.scope, body.pair_id, given, datetime.now(UTC)
        )

    answer: JSONResponse = await _refusals(
        lambda: run_in_threadpool(idempotent_write, shared, "verdicts", key, body, write, scope=caller.scope)
    )
    return answer


@router.get("/progress")
async def progress(
    caller: Caller, shared: Shared, namespace: Namespace = None, policy: Policy = None, agent: Agent = None
) -> JSONResponse:
    home = home_namespace(caller, namespace)
    await authorize(shared, caller, Action.READ_REVIEWS, home)

    def work(session: Session) -> dict[str, Any]:
        counts = review_stats.progress(session, home, caller.scope, datetime.now(UTC), agent, policy)
        return {"namespace": home, "policy": policy, "agent": agent, **counts}

    return JSONResponse(await _in_store(shared, work))


@router.get("/agreement")
async def agreement(
    caller: Caller, shared: Shared, namespace: Namespace = None, policy: Policy = None
) -> JSONResponse:
    home = home_namespace(caller, namespace)
    await authorize(shared, caller, Action.READ_REVIEWS, home)
    return JSONResponse(
        await _in_store(shared, lambda session: review_stats.agreement(session, home, policy))
    )
