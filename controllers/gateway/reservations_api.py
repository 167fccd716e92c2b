"""The blind pairwise review: reserve the next item, skip it, judge it, and the figures beside it.

``POST /v1/review/reservations`` reserves the oldest item of the caller's namespace queue (narrowed to
a policy or an agent) for ``KAIZEN_REVIEW_TTL_SECONDS`` and shows it blind (``review_schemas``);
``DELETE /v1/review/reservations/{pairId}`` gives it back (skip); ``POST /v1/review/verdicts`` judges
the item the caller holds (idempotent like every write: 404 for an unknown pair, 409 naming why a
verdict is refused); ``GET /v1/review/progress`` and ``GET /v1/review/agreement`` count. Reading and
reserving take ``reviews/list`` in the namespace, verdicts ``reviews/create``: an agent's token has
neither. The reviewer is the caller's own identity (its scope), never a name in the body. The store
work is ``review_work``'s, which the reviewer's page (``ui_review``) calls too.

(No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at runtime.)
"""

from typing import Annotated

from fastapi import APIRouter, Path, Query
from fastapi.responses import JSONResponse

from controllers.decisions.access import Action
from controllers.gateway import review_work
from controllers.gateway.context import Caller, Key, Shared, authorize, home_namespace
from controllers.gateway.review_api import Namespace
from controllers.gateway.review_schemas import ReserveIn, VerdictBody

router = APIRouter(prefix="/v1/review", tags=["review"])
Policy = Annotated[str | None, Query(max_length=253, pattern=r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$")]
Agent = Annotated[str | None, Query(max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
PairId = Annotated[str, Path(max_length=64, pattern=r"^[A-Za-z0-9._:-]+$")]


@router.post("/reservations")
async def reserve(body: ReserveIn, caller: Caller, shared: Shared) -> JSONResponse:
    namespace = home_namespace(caller, body.namespace)
    await authorize(shared, caller, Action.READ_REVIEWS, namespace)
    return JSONResponse(await review_work.reserve(shared, caller.scope, namespace, body.policy, body.agent))


@router.delete("/reservations/{pair_id}")
async def release(
    pair_id: PairId, caller: Caller, shared: Shared, namespace: Namespace = None
) -> JSONResponse:
    home = home_namespace(caller, namespace)
    await authorize(shared, caller, Action.READ_REVIEWS, home)
    return JSONResponse(await review_work.release(shared, caller.scope, home, pair_id))


@router.post("/verdicts")
async def verdict(body: VerdictBody, caller: Caller, key: Key, shared: Shared) -> JSONResponse:
    namespace = home_namespace(caller, body.namespace)
    await authorize(shared, caller, Action.WRITE_REVIEWS, namespace)
    return await review_work.judge(shared, caller.scope, namespace, key, body)


@router.get("/progress")
async def progress(
    caller: Caller, shared: Shared, namespace: Namespace = None, policy: Policy = None, agent: Agent = None
) -> JSONResponse:
    home = home_namespace(caller, namespace)
    await authorize(shared, caller, Action.READ_REVIEWS, home)
    return JSONResponse(await review_work.progress(shared, caller.scope, home, policy, agent))


@router.get("/agreement")
async def agreement(
    caller: Caller, shared: Shared, namespace: Namespace = None, policy: Policy = None
) -> JSONResponse:
    home = home_namespace(caller, namespace)
    await authorize(shared, caller, Action.READ_REVIEWS, home)
    return JSONResponse(await review_work.agreement(shared, home, policy))
