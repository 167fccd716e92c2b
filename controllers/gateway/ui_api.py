"""The pages under ``/ui/``: sign-in and sign-out, the policies of one's namespaces, each loop dashboard.

Server-rendered HTML (``ui_html``, ``ui_dashboard``) with one small script and one stylesheet of our
own (``ui_static/``), served from the package: no CDN, no build step, works offline. The dashboard
stays live by polling its panel every few seconds (``ui.js``) rather than by server-sent events: a
poll is one short request any proxy passes, holds no connection or worker open per viewer, needs no
change feed from the store (which has none: an event stream would poll the database anyway), and
behaves the same on every replica. The numbers are ``loop_api``'s, read by the same function.

(No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at runtime.)
"""

from importlib.resources import files
from urllib.parse import parse_qs

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from controllers.api.identity import Principal
from controllers.decisions.access import Action
from controllers.gateway.context import Shared
from controllers.gateway.experiments_api import Name, Namespace
from controllers.gateway.identity import AuthUnavailable, Forbidden, Unauthenticated
from controllers.gateway.loop_api import read_loop
from controllers.gateway.ui_dashboard import panel
from controllers.gateway.ui_html import index_page, not_found_page, page, refused_page, sign_in_page, text
from controllers.gateway.ui_session import (
    NotAPerson,
    current_person,
    forget,
    refusal_to,
    remember,
    same_origin,
    secure,
    sign_in_with,
)
from controllers.store.db import transaction
from controllers.store.loop import list_policies

router = APIRouter(prefix="/ui", include_in_schema=False)
ASSETS = {
    "ui.css": "text/css; charset=utf-8",
    "ui.js": "text/javascript; charset=utf-8",
    "workbench.js": "text/javascript; charset=utf-8",  # the reviewer's workbench (ui_review)
}
MAX_FORM_BYTES = 16 * 1024
CROSS_SITE = "refused: this request did not come from the gateway's own pages (Origin differs)"


def _to_sign_in() -> Response:
    return secure(RedirectResponse("/ui/sign-in", status_code=303))


@router.get("/static/{asset}")
async def static(asset: str) -> Response:
    if asset not in ASSETS:
        return secure(Response("not found", status_code=404, media_type="text/plain"))
    body = (files("controllers.gateway") / "ui_static" / asset).read_bytes()
    response = Response(body, media_type=ASSETS[asset])
    secure(response).headers["Cache-Control"] = "no-cache"
    return response


@router.get("/sign-in")
async def sign_in_form() -> HTMLResponse:
    return sign_in_page()


@router.post("/sign-in")
async def sign_in(request: Request, shared: Shared) -> Response:
    if not same_origin(request):
        return refused_page(CROSS_SITE)
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        return sign_in_page("That is far longer than any Kaizen token.", status=413)
    token = parse_qs(body.decode("utf-8", "replace")).get("token", [""])[0]
    try:
        person = await sign_in_with(shared.authenticator, token)
    except Unauthenticated as error:
        return sign_in_page(f"That token was refused: {error}.", status=401)
    except NotAPerson as error:
        return refused_page(str(error))
    except AuthUnavailable as error:
        return sign_in_page(f"Cannot check that token right now: {error}. Try again shortly.", status=503)
    response = secure(RedirectResponse("/ui/", status_code=303))
    remember(response, request, token, person)
    return response


@router.post("/sign-out")
async def sign_out(request: Request) -> Response:
    if not same_origin(request):
        return refused_page(CROSS_SITE)
    response = _to_sign_in()
    forget(response, request)
    return response


@router.get("")
async def root() -> Response:
    return secure(RedirectResponse("/ui/", status_code=307))


@router.get("/")
async def index(request: Request, shared: Shared) -> Response:
    person = await current_person(request, shared.authenticator)
    if person is None:
        return _to_sign_in()

    def read() -> list[tuple[str, str]]:
        with transaction(shared.factory) as session:
            return list_policies(session, person.namespaces or ("*",))

    policies = await run_in_threadpool(read)
    # A token's namespaces are only where it may look; its role, or RBAC for a Kubernetes identity,
    # says whether it may read experiments there: a policy's name is shown only where it may.
    readable = set()
    for namespace in sorted({ns for ns, _ in policies}):
        if await refusal_to(shared.authenticator, person, Action.READ_EXPERIMENTS, namespace) is None:
            readable.add(namespace)
    return index_page([(ns, name) for ns, name in policies if ns in readable], person)


async def _allowed(request: Request, shared: Shared, namespace: str) -> Principal | Response:
    person = await current_person(request, shared.authenticator)
    if person is None:
        return _to_sign_in()
    try:
        await shared.authenticator.authorize(person, Action.READ_EXPERIMENTS, namespace)
    except Forbidden as error:
        return refused_page(str(error))
    except AuthUnavailable as error:
        return refused_page(f"cannot check your access right now: {error}", status=503)
    return person


@router.get("/loop/{namespace}/{name}")
async def dashboard(request: Request, shared: Shared, namespace: Namespace, name: Name) -> Response:
    person = await _allowed(request, shared, namespace)
    if isinstance(person, Response):
        return person
    view = await read_loop(shared, namespace, name)
    if view is None:
        return not_found_page(f"No LearningPolicy {namespace}/{name} has been synced to the store.", person)
    source = f"/ui/loop/{text(namespace)}/{text(name)}/panel"
    body = (
        f'<p class="status" role="status" id="live" data-live="{source}">Live: refreshed every 2 seconds.</p>'
        f'<div id="panel">{panel(view)}</div>'
    )
    return page(f"Loop of {namespace}/{name}", body, person)


@router.get("/loop/{namespace}/{name}/panel")
async def dashboard_panel(request: Request, shared: Shared, namespace: Namespace, name: Name) -> Response:
    person = await _allowed(request, shared, namespace)
    if isinstance(person, Response):
        return secure(Response("sign in again", status_code=401, media_type="text/plain"))
    view = await read_loop(shared, namespace, name)
    if view is None:
        return secure(Response("gone", status_code=404, media_type="text/plain"))
    return secure(HTMLResponse(panel(view)))
