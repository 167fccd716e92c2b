"""``GET /v1/loop/{namespace}/{name}``: one LearningPolicy's loop in numbers, for the dashboard and scripts.

The dashboard under ``/ui/`` draws exactly this answer (``loop_view``), so what a person sees can be
checked against what a script reads. Reading takes ``experiments/get`` in the namespace, as the
experiment series does: reviewers, operators and admins of the namespace. Aggregates only.

(No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at runtime.)
"""

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from controllers.decisions.access import Action
from controllers.gateway.context import Caller, Shared, authorize
from controllers.gateway.errors import ApiError
from controllers.gateway.experiments_api import Name, Namespace
from controllers.gateway.loop_view import loop_view
from controllers.store.db import transaction

router = APIRouter(prefix="/v1/loop", tags=["experiments"])


async def read_loop(shared: Shared, namespace: str, name: str) -> dict[str, Any] | None:
    def read() -> dict[str, Any] | None:
        with transaction(shared.factory) as session:
            return loop_view(session, namespace, name)

    return await run_in_threadpool(read)


@router.get("/{namespace}/{name}")
async def loop_of(caller: Caller, shared: Shared, namespace: Namespace, name: Name) -> JSONResponse:
    """Data inflow, pairs by source, review backlog, the route, and each experiment's story."""
    await authorize(shared, caller, Action.READ_EXPERIMENTS, namespace, name)
    found = await read_loop(shared, namespace, name)
    if found is None:
        message = f"no LearningPolicy {namespace}/{name} has been synced to the store"
        raise ApiError(404, message, [{"field": "name", "message": message}])
    return JSONResponse(found)
