"""The gateway's ingest API (FastAPI): batch writes for agents, the review queue, policy sync.

Every write needs a bearer token and an ``Idempotency-Key``; a replay returns the first response
(with ``Idempotent-Replayed: true``), the same key with a different body is a 422. Bad input is a
422 naming each offending field; an unreachable database is a 503 with ``Retry-After`` and nothing
written. ``/openapi.json`` describes it all, ``/metrics`` exposes Prometheus counters.

The same app is the router: ``/v1/routes`` takes route configs from the operator, ``/openai/...`` is
the OpenAI-compatible proxy agents call (``controllers.gateway.router``, mounted by ``routes_api``).

``create_app`` only assembles: the routes live in one ``APIRouter`` module per concern
(``ingest_api``, ``review_api``, ``policies_api``, ``routes_api``, ``health_api``) and reach what
they share through ``context``'s dependencies. Request bodies are limited while they are read:
``limits.BodyLimit`` for the API (``KAIZEN_MAX_BODY_BYTES``), the proxy's own reader for ``/openai/``
(``KAIZEN_PROXY_MAX_BODY_BYTES``).
"""

import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from sqlalchemy.orm import Session, sessionmaker

from controllers.gateway import (
    auth,
    health_api,
    ingest_api,
    loop_api,
    policies_api,
    proxy_docs,
    reservations_api,
    review_api,
    routes_api,
    ui_api,
    ui_review,
    widget,
)
from controllers.gateway.context import Gateway, GatewaySettings
from controllers.gateway.errors import install_error_handlers
from controllers.gateway.experiments_api import router as experiments_router
from controllers.gateway.guard import RequireIdentity
from controllers.gateway.identity import Authenticator
from controllers.gateway.limits import BodyLimit
from controllers.gateway.metrics import Metrics, request_meter
from controllers.gateway.router import Proxy
from controllers.gateway.router_state import RouterState
from controllers.runtime.kube import Kube, load_configuration
from controllers.store.db import make_engine, session_factory

__all__ = ["GatewaySettings", "Metrics", "create_app"]

ROUTERS = (
    ingest_api.router,
    review_api.router,
    reservations_api.router,
    policies_api.router,
    routes_api.router,
    health_api.router,
    experiments_router,
    loop_api.router,
    ui_api.router,
    widget.router,
    ui_review.router,
)


def build_authenticator(settings: GatewaySettings) -> Authenticator:
    assert settings.keyring is not None  # GatewaySettings fills it in
    revoked = settings.revoked_tokens_file
    kube = Kube(load_configuration(settings.kubeconfig), timeout=5.0) if settings.kubernetes_auth else None
    return Authenticator(
        auth.LiveKeyring(settings.keyring, settings.keyring_env),
        auth.Revocations(Path(revoked)) if revoked else None,
        kube,
        audiences=(settings.token_audience,),
    )


def create_app(settings: GatewaySettings) -> FastAPI:
    engine = make_engine(settings.database_url)
    factory: sessionmaker[Session] = session_factory(engine)
    metrics = Metrics()
    router_state = RouterState(
        factory,
        metrics.registry,
        settings.route_refresh_seconds,
        allowed_hosts=settings.route_allowed_hosts,
        max_body_bytes=settings.proxy_max_body_bytes,
    )
    authenticator = build_authenticator(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        try:
            async with router_state.lifespan(app):
                yield
        finally:
            await authenticator.close()

    app = FastAPI(
        title="Kaizen gateway",
        version="0.1.0",
        description="Ingest API for agent experience (runs, feedback, pairs, annotations, reviews) "
        "and the experiment router (routes, OpenAI-compatible proxy under /openai/).",
        lifespan=lifespan,
    )
    app.state.engine, app.state.metrics, app.state.router = engine, metrics, router_state
    app.state.gateway = Gateway(settings, factory, metrics, router_state, authenticator)
    install_error_handlers(app, metrics, settings.retry_after_seconds)
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)  # inside the meter: 413s are counted
    app.middleware("http")(request_meter(metrics))
    for router in ROUTERS:
        app.include_router(router)
    # Outermost first: the proxy takes /openai/ (it authenticates itself), then every /v1 call is
    # authenticated before its body is read.
    app.add_middleware(
        RequireIdentity, authenticator=authenticator, retry_after_seconds=settings.retry_after_seconds
    )
    # Outside the guard: a preflight has no token, and a 401 must reach the widget's page readable.
    app.add_middleware(widget.FeedbackCors, origins=settings.widget_origins)
    routes_api.mount_proxy(app, Proxy(router_state, authenticator))
    proxy_docs.document(app)  # ProxyDispatch answers /openai/ before FastAPI: describe it in the document
    return app
