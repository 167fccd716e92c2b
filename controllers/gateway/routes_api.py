"""The router's two faces in the gateway app: the routes API (for the operator) and the proxy dispatch.

``PUT /v1/routes/{namespace}/{name}`` stores a RouteConfig; the same body again keeps its version,
so the operator can re-send it on every reconcile (no Idempotency-Key needed: PUT is idempotent by
construction). The config is checked in full before it is stored: its shape by ``RouteConfig``, its
endpoints' hosts by the installation's allowlist (``KAIZEN_ROUTE_ALLOWED_HOSTS``); a refusal is a 422
naming the field (``variants[1].endpoint``). The replica that answered serves the new config at once,
the others within their poll interval. ``GET`` returns it with its version, ``DELETE`` removes it,
``GET /v1/routes`` lists. Writing a route takes ``routes/update`` on it (the operator's
ServiceAccount, or an admin), reading ``routes/get``; the list shows only the routes the caller may
read. Calling one through the proxy takes ``routes/use``.

Requests under ``/openai/`` skip FastAPI entirely: ``ProxyDispatch`` is an ASGI middleware placed
outermost that hands them to the proxy, so the model-call path pays for no routing, dependency
injection or per-request middleware.

(No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at runtime.)
"""

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool

from controllers.api.identity import Principal
from controllers.api.routes import RouteConfig
from controllers.decisions.access import Action
from controllers.gateway.context import ALLOWED_HOSTS_ENV, Caller, Gateway, Shared, authorize
from controllers.gateway.errors import ApiError, invalid_request
from controllers.gateway.forward import Receive, Send
from controllers.gateway.router import PREFIX, Proxy, Scope
from controllers.store import experiments
from controllers.store.db import transaction

Namespace = Annotated[str, Path(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", max_length=63)]
Name = Annotated[str, Path(pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", max_length=253)]

router = APIRouter(prefix="/v1/routes", tags=["routes"])


class ProxyDispatch:
    """Send ``/openai/...`` straight to the proxy; everything else (and lifespan) to the app."""

    def __init__(self, app: Any, proxy: Proxy) -> None:
        self.app, self.proxy = app, proxy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"].startswith(PREFIX):
            await self.proxy(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _document(config: RouteConfig, version: int, **extra: Any) -> dict[str, Any]:
    return {"version": version, "config": config.model_dump(mode="json"), **extra}


def _path_mismatches(config: RouteConfig, namespace: str, name: str) -> list[dict[str, str]]:
    """The body's namespace and name must be the path's: one problem for each that is not."""
    return [
        {"field": field, "message": f"{field} {given!r} differs from the path's {wanted!r}"}
        for field, given, wanted in (("namespace", config.namespace, namespace), ("name", config.name, name))
        if given != wanted
    ]


def _refused_endpoints(config: RouteConfig, allowed_hosts: tuple[str, ...]) -> list[dict[str, str]]:
    """One problem per endpoint this installation does not send traffic to, saying what allows more."""
    return [
        {
            "field": field,
            "message": f"{problem}; {ALLOWED_HOSTS_ENV} (chart: gateway.routeAllowedHosts) allows more",
        }
        for field, problem in config.endpoint_problems(allowed_hosts)
    ]


@router.put("/{namespace}/{name}")
async def put_route(
    caller: Caller, namespace: Namespace, name: Name, config: RouteConfig, shared: Shared
) -> JSONResponse:
    await authorize(shared, caller, Action.WRITE_ROUTES, namespace, name)
    problems = _path_mismatches(config, namespace, name) + _refused_endpoints(
        config, shared.settings.route_allowed_hosts
    )
    if problems:
        raise invalid_request(problems, "; ".join(f"{p['field']}: {p['message']}" for p in problems))

    def write() -> tuple[int, bool]:
        with transaction(shared.factory) as session:
            return experiments.put_route(session, config)

    version, changed = await run_in_threadpool(write)
    shared.router.table.put(config, version)
    return JSONResponse(_document(config, version, changed=changed))


@router.get("/{namespace}/{name}")
async def get_route(caller: Caller, namespace: Namespace, name: Name, shared: Shared) -> JSONResponse:
    await authorize(shared, caller, Action.READ_ROUTES, namespace, name)

    def read() -> tuple[RouteConfig, int] | None:
        with transaction(shared.factory) as session:
            return experiments.get_route(session, namespace, name)

    try:
        found = await run_in_threadpool(read)
    except experiments.InvalidRouteRow as error:
        message = f"{error}; PUT a valid config to replace it"
        raise ApiError(409, message, [{"field": "config", "message": message}]) from error
    if found is None:
        message = f"no route {namespace}/{name}"
        raise ApiError(404, message, [{"field": "name", "message": message}])
    return JSONResponse(_document(*found))


@router.delete("/{namespace}/{name}")
async def delete_route(caller: Caller, namespace: Namespace, name: Name, shared: Shared) -> JSONResponse:
    await authorize(shared, caller, Action.WRITE_ROUTES, namespace, name)

    def delete() -> bool:
        with transaction(shared.factory) as session:
            return experiments.delete_route(session, namespace, name)

    deleted = await run_in_threadpool(delete)
    shared.router.table.remove(f"{namespace}/{name}")
    return JSONResponse({"deleted": deleted})


@router.get("")
async def list_routes(caller: Caller, shared: Shared) -> JSONResponse:
    def read() -> list[tuple[RouteConfig, int]]:
        with transaction(shared.factory) as session:
            return experiments.list_routes(session)

    found = await run_in_threadpool(read)
    visible = [(config, version) for config, version in found if await _may_read(shared, caller, config)]
    return JSONResponse({"routes": [_document(config, version) for config, version in visible]})


async def _may_read(shared: Gateway, caller: Principal, config: RouteConfig) -> bool:
    try:
        await authorize(shared, caller, Action.READ_ROUTES, config.namespace, config.name)
    except ApiError as error:
        if error.status != 403:
            raise
        return False
    return True


def mount_proxy(app: FastAPI, proxy: Proxy) -> None:
    """Put the proxy in front of ``app`` (call after every other middleware is added: it must be outermost)."""
    app.add_middleware(ProxyDispatch, proxy=proxy)
