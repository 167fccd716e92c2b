"""The router's two faces in the gateway app: the routes API (for the operator) and the proxy dispatch.

``PUT /v1/routes/{namespace}/{name}`` stores a RouteConfig; the same body again keeps its version,
so the operator can re-send it on every reconcile (no Idempotency-Key needed: PUT is idempotent by
construction). The config is checked in full before it is stored: its shape by ``RouteConfig``, its
endpoints' hosts by the installation's allowlist (``KAIZEN_ROUTE_ALLOWED_HOSTS``); a refusal is a 422
naming the field (``variants[1].endpoint``). The replica that answered serves the new config at once,
the others within their poll interval. ``GET`` returns it with its version, ``DELETE`` removes it, ``GET /v1/routes`` lists.

Requests under ``/openai/`` skip FastAPI entirely: ``ProxyDispatch`` is an ASGI middleware placed
outermost that hands them to the proxy, so the model-call path pays for no routing, dependency
injection or per-request middleware.

(No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at runtime.)
"""

from typing import Annotated, Any

from fastapi import APIRouter, FastAPI, Path
from fastapi.responses import JSONResponse

from controllers.api.routes import RouteConfig
from controllers.gateway.context import ALLOWED_HOSTS_ENV, Caller, Shared
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
def put_route(
    _: Caller, namespace: Namespace, name: Name, config: RouteConfig, shared: Shared
) -> JSONResponse:
    problems = _path_mismatches(config, namespace, name) + _refused_endpoints(
        config, shared.settings.route_allowed_hosts
    )
    if problems:
        raise invalid_request(problems, "; ".join(f"{p['field']}: {p['message']}" for p in problems))
    with transaction(shared.factory) as session:
        version, changed = experiments.put_route(session, config)
    shared.router.table.put(config, version)
    return JSONResponse(_document(config, version, changed=changed))


@router.get("/{namespace}/{name}")
def get_route(_: Caller, namespace: Namespace, name: Name, shared: Shared) -> JSONResponse:
    try:
        with transaction(shared.factory) as session:
            found = experiments.get_route(session, namespace, name)
    except experiments.InvalidRouteRow as error:
        message = f"{error}; PUT a valid config to replace it"
        raise ApiError(409, message, [{"field": "config", "message": message}]) from error
    if found is None:
        message = f"no route {namespace}/{name}"
        raise ApiError(404, message, [{"field": "name", "message": message}])
    return JSONResponse(_document(*found))


@router.delete("/{namespace}/{name}")
def delete_route(_: Caller, namespace: Namespace, name: Name, shared: Shared) -> JSONResponse:
    with transaction(shared.factory) as session:
        deleted = experiments.delete_route(session, namespace, name)
    shared.router.table.remove(f"{namespace}/{name}")
    return JSONResponse({"deleted": deleted})


@router.get("")
def list_routes(_: Caller, shared: Shared) -> JSONResponse:
    with transaction(shared.factory) as session:
        found = experiments.list_routes(session)
    return JSONResponse({"routes": [_document(config, version) for config, version in found]})


def mount_proxy(app: FastAPI, proxy: Proxy) -> None:
    """Put the proxy in front of ``app`` (call after every other middleware is added: it must be outermost)."""
    app.add_middleware(ProxyDispatch, proxy=proxy)
