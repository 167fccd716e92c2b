"""The router's two faces in the gateway app: the routes API (for the operator) and the proxy dispatch.

``PUT /v1/routes/{namespace}/{name}`` stores a RouteConfig; the same body again keeps its version,
so the operator can re-send it on every reconcile (no Idempotency-Key needed: PUT is idempotent by
construction). The replica that answered serves the new config at once, the others within their
poll interval. ``GET`` returns it with its version, ``DELETE`` removes it, ``GET /v1/routes`` lists.

Requests under ``/openai/`` skip FastAPI entirely: ``ProxyDispatch`` is an ASGI middleware placed
outermost that hands them to the proxy, so the model-call path pays for no routing, dependency
injection or per-request middleware.

(No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at runtime.)
"""

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Path
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session, sessionmaker

from controllers.api.routes import RouteConfig
from controllers.gateway import auth
from controllers.gateway.forward import Receive, Send
from controllers.gateway.router import PREFIX, Proxy, Scope
from controllers.gateway.router_state import RouterState
from controllers.store import experiments
from controllers.store.db import transaction

Namespace = Annotated[str, Path(pattern=r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$", max_length=63)]
Name = Annotated[str, Path(pattern=r"^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$", max_length=253)]


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


def _not_found(namespace: str, name: str) -> JSONResponse:
    message = f"no route {namespace}/{name}"
    return JSONResponse(
        {"error": message, "problems": [{"field": "name", "message": message}]}, status_code=404
    )


def routes_router(
    state: RouterState, factory: sessionmaker[Session], principal: Callable[..., auth.Principal]
) -> APIRouter:
    router = APIRouter(prefix="/v1/routes", tags=["routes"])

    @router.put("/{namespace}/{name}")
    def put_route(
        _: Annotated[auth.Principal, Depends(principal)],
        namespace: Namespace,
        name: Name,
        config: RouteConfig,
    ) -> JSONResponse:
        problems = [
            {"field": field, "message": f"{field} {given!r} differs from the path's {wanted!r}"}
            for field, given, wanted in (
                ("namespace", config.namespace, namespace),
                ("name", config.name, name),
            )
            if given != wanted
        ]
        if problems:
            summary = "; ".join(p["message"] for p in problems)
            return JSONResponse(
                {"error": f"invalid request: {summary}", "problems": problems}, status_code=422
            )
        with transaction(factory) as session:
            version, changed = experiments.put_route(session, config)
        state.table.put(config, version)
        return JSONResponse(_document(config, version, changed=changed))

    @router.get("/{namespace}/{name}")
    def get_route(
        _: Annotated[auth.Principal, Depends(principal)], namespace: Namespace, name: Name
    ) -> JSONResponse:
        with transaction(factory) as session:
            found = experiments.get_route(session, namespace, name)
        return JSONResponse(_document(*found)) if found else _not_found(namespace, name)

    @router.delete("/{namespace}/{name}")
    def delete_route(
        _: Annotated[auth.Principal, Depends(principal)], namespace: Namespace, name: Name
    ) -> JSONResponse:
        with transaction(factory) as session:
            deleted = experiments.delete_route(session, namespace, name)
        state.table.remove(f"{namespace}/{name}")
        return JSONResponse({"deleted": deleted})

    @router.get("")
    def list_routes(_: Annotated[auth.Principal, Depends(principal)]) -> JSONResponse:
        with transaction(factory) as session:
            found = experiments.list_routes(session)
        return JSONResponse({"routes": [_document(config, version) for config, version in found]})

    return router


def mount(
    app: FastAPI,
    state: RouterState,
    factory: sessionmaker[Session],
    principal: Callable[..., auth.Principal],
    secret: str,
) -> None:
    """Add the routes API and the proxy to ``app`` (call after every other middleware is added)."""
    app.include_router(routes_router(state, factory, principal))
    app.add_middleware(ProxyDispatch, proxy=Proxy(state, secret))
