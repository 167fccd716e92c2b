"""The reviewer's workbench under ``/ui/review``: the page (``ui_workbench``) and the same-origin JSON
calls its script (``workbench.js``) makes to reserve, skip and judge a pair.

The person is the one the session cookie names (``ui_session.current_person``), never a name the page
sends, and may do here exactly what their identity may do through ``/v1/review``: the page takes
``reviews/list`` in the namespace, a verdict ``reviews/create``, an agent's token opens nothing. The
store work is ``review_work``'s, the functions ``/v1/review`` calls. Every call that changes
something (reserve, skip, judge) must come from our own pages (``same_origin``), on top of the
SameSite=Strict cookie: a cross-site form or script cannot judge in a reviewer's name.

(No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at runtime.)
"""

from typing import Annotated

from fastapi import APIRouter, Header, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from controllers.api.identity import Principal
from controllers.decisions.access import Action
from controllers.gateway import review_work
from controllers.gateway.context import Gateway, Shared, authorize
from controllers.gateway.errors import ApiError
from controllers.gateway.reservations_api import PairId, Policy
from controllers.gateway.review_api import Namespace
from controllers.gateway.review_schemas import ReserveIn, VerdictBody
from controllers.gateway.ui_html import not_found_page, refused_page
from controllers.gateway.ui_session import current_person, refusal_to, same_origin, secure
from controllers.gateway.ui_workbench import Queue, figures, queues_page, workbench_page
from controllers.store.db import transaction
from controllers.store.loop import list_policies

router = APIRouter(prefix="/ui/review", include_in_schema=False)
CROSS_SITE = "refused: this request did not come from the gateway's own pages (Origin differs)"
UiKey = Annotated[str, Header(alias="Idempotency-Key", min_length=8, max_length=255)]


async def _caller(
    request: Request, shared: Gateway, action: Action, namespace: str, writes: bool
) -> Principal:
    """The signed-in person allowed ``action`` in ``namespace``, or an ApiError the script shows."""
    if writes and not same_origin(request):
        raise ApiError(403, CROSS_SITE)
    person = await current_person(request, shared.authenticator)
    if person is None:
        raise ApiError(401, "your sign-in has ended: sign in again")
    await authorize(shared, person, action, namespace)
    return person


async def _queues(shared: Gateway, person: Principal) -> list[Queue]:
    def read() -> list[tuple[str, str]]:
        with transaction(shared.factory) as session:
            return list_policies(session, person.namespaces or ("*",))

    policies = await run_in_threadpool(read)
    own = [ns for ns in person.namespaces if ns != "*"]
    found = []
    for namespace in sorted(set(own) | {ns for ns, _ in policies}):
        if await refusal_to(shared.authenticator, person, Action.READ_REVIEWS, namespace) is not None:
            continue
        for policy in (None, *(name for ns, name in policies if ns == namespace)):
            counts = await review_work.progress(shared, person.scope, namespace, policy, None)
            found.append(Queue(namespace, policy, counts["pending"]))
    return found


async def _figures(shared: Gateway, person: Principal, namespace: str, policy: str | None) -> str:
    def read() -> list[tuple[str, str]]:
        with transaction(shared.factory) as session:
            return list_policies(session, (namespace,))

    tracks = [None, *(name for _, name in await run_in_threadpool(read))]
    progress = await review_work.progress(shared, person.scope, namespace, policy, None)
    return figures(progress, [await review_work.agreement(shared, namespace, track) for track in tracks])


@router.get("")
async def workbench(
    request: Request, shared: Shared, namespace: Namespace = None, policy: Policy = None
) -> Response:
    person = await current_person(request, shared.authenticator)
    if person is None:
        return secure(RedirectResponse("/ui/sign-in", status_code=303))
    if namespace is None:
        return queues_page(await _queues(shared, person), person)
    refusal = await refusal_to(shared.authenticator, person, Action.READ_REVIEWS, namespace)
    if refusal is not None:
        return refused_page(refusal)
    try:
        shown = await _figures(shared, person, namespace, policy)
    except ApiError as error:  # a policy the namespace does not have
        return not_found_page(error.message, person)
    return workbench_page(namespace, policy, shown, person)


@router.get("/figures")
async def workbench_figures(
    request: Request, shared: Shared, namespace: Namespace = None, policy: Policy = None
) -> Response:
    home = _named(namespace)
    person = await _caller(request, shared, Action.READ_REVIEWS, home, writes=False)
    return secure(HTMLResponse(await _figures(shared, person, home, policy)))


@router.post("/reservations")
async def reserve(request: Request, shared: Shared, body: ReserveIn) -> JSONResponse:
    namespace = _named(body.namespace)
    person = await _caller(request, shared, Action.READ_REVIEWS, namespace, writes=True)
    return secure(
        JSONResponse(await review_work.reserve(shared, person.scope, namespace, body.policy, body.agent))
    )


@router.delete("/reservations/{pair_id}")
async def release(
    request: Request, shared: Shared, pair_id: PairId, namespace: Namespace = None
) -> JSONResponse:
    home = _named(namespace)
    person = await _caller(request, shared, Action.READ_REVIEWS, home, writes=True)
    return secure(JSONResponse(await review_work.release(shared, person.scope, home, pair_id)))


@router.post("/verdicts")
async def verdict(request: Request, shared: Shared, body: VerdictBody, key: UiKey) -> JSONResponse:
    namespace = _named(body.namespace)
    person = await _caller(request, shared, Action.WRITE_REVIEWS, namespace, writes=True)
    return secure(await review_work.judge(shared, person.scope, namespace, key, body))


def _named(namespace: str | None) -> str:
    # The page always names its namespace: a person may review several, and guessing one is a mistake.
    if not namespace:
        raise ApiError(
            422, "namespace is required", [{"field": "namespace", "message": "namespace is required"}]
        )
    return namespace
