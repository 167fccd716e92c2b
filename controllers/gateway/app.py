"""The gateway's ingest API (FastAPI): batch writes for agents, the review queue, policy sync.

Every write needs a bearer token and an ``Idempotency-Key``; a replay returns the first response
(with ``Idempotent-Replayed: true``), the same key with a different body is a 422. Bad input is a
422 naming each offending field; an unreachable database is a 503 with ``Retry-After`` and nothing
written. ``/openapi.json`` describes it all, ``/metrics`` exposes Prometheus counters.

The same app is the router: ``/v1/routes`` takes route configs from the operator, ``/openai/...`` is
the OpenAI-compatible proxy agents call (``controllers.gateway.router``, mounted by ``routes_api``).
"""

import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Histogram, generate_latest
from sqlalchemy import text
from sqlalchemy.orm import Session, sessionmaker

from controllers.gateway import auth, batches, routes_api
from controllers.gateway.router_state import RouterState
from controllers.gateway.schemas import (
    AnnotationBatch,
    FeedbackBatch,
    FeedbackIn,
    PairBatch,
    PolicyIn,
    ReviewBatch,
    RunBatch,
    WriteResponse,
)
from controllers.store import ingest
from controllers.store.db import StoreUnavailable, make_engine, session_factory, transaction
from controllers.store.ingest import KeyConflict, UnknownReference, request_hash


@dataclass
class GatewaySettings:
    database_url: str | None = None
    token_secret: str = field(default_factory=lambda: os.environ.get("KAIZEN_TOKEN_SECRET", ""))
    retry_after_seconds: int = 2
    route_refresh_seconds: float = 0.25  # how stale a replica's routes may get (a cheap version scan)

    def __post_init__(self) -> None:
        if not self.token_secret:
            raise ValueError("set KAIZEN_TOKEN_SECRET (the key that signs gateway tokens)")


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        problems: list[dict[str, str]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.problems, self.headers = (
            status,
            message,
            problems or [],
            headers or {},
        )


def field_path(location: tuple[Any, ...] | list[Any]) -> str:
    """('body', 'runs', 3, 'signals', 'testsPassed') -> 'runs[3].signals.testsPassed'."""
    path = ""
    for part in location:
        if part in ("body", "header", "query", "path") and not path:
            continue
        path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
    return path or "body"


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "kaizen_gateway_requests",
            "HTTP requests by route and status",
            ["route", "status"],
            registry=self.registry,
        )
        self.records = Counter(
            "kaizen_gateway_records_ingested",
            "Records newly stored, by kind",
            ["kind"],
            registry=self.registry,
        )
        self.replays = Counter(
            "kaizen_gateway_idempotent_replays",
            "Writes answered from a stored response",
            registry=self.registry,
        )
        self.unavailable = Counter(
            "kaizen_gateway_store_unavailable",
            "Requests refused because the store was down",
            registry=self.registry,
        )
        self.latency = Histogram(
            "kaizen_gateway_request_seconds", "Request latency by route", ["route"], registry=self.registry
        )


def create_app(settings: GatewaySettings) -> FastAPI:
    engine = make_engine(settings.database_url)
    factory: sessionmaker[Session] = session_factory(engine)
    metrics = Metrics()
    bearer = HTTPBearer(auto_error=False)
    router_state = RouterState(factory, metrics.registry, settings.route_refresh_seconds)
    app = FastAPI(
        title="Kaizen gateway",
        version="0.1.0",
        description="Ingest API for agent experience (runs, feedback, pairs, annotations, reviews) "
        "and the experiment router (routes, OpenAI-compatible proxy under /openai/).",
        lifespan=router_state.lifespan,
    )
    app.state.engine, app.state.metrics, app.state.router = engine, metrics, router_state

    def principal(
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    ) -> auth.Principal:
        try:
            return auth.verify(settings.token_secret, credentials.credentials if credentials else None)
        except auth.InvalidToken as error:
            raise ApiError(401, str(error), headers={"WWW-Authenticate": "Bearer"}) from error

    def idempotency_key(
        key: Annotated[str | None, Header(alias="Idempotency-Key", max_length=255)] = None,
    ) -> str:
        if not key:
            raise ApiError(
                400,
                "the Idempotency-Key header is required on writes: send a unique key per "
                "logical request and the same key on every retry of it",
            )
        return key

    Key = Annotated[str, Depends(idempotency_key)]
    Caller = Annotated[auth.Principal, Depends(principal)]

    def write(kind: str, key: str, payload: Any, build: Callable[[Session], dict[str, Any]]) -> JSONResponse:
        try:
            result = ingest.idempotent_write(
                factory,
                key=key,
                endpoint=kind,
                payload_hash=request_hash(payload.model_dump(mode="json")),
                write=build,
            )
        except KeyConflict as error:
            raise ApiError(422, str(error), [{"field": "Idempotency-Key", "message": str(error)}]) from error
        except UnknownReference as error:
            raise ApiError(422, str(error), [{"field": error.field, "message": str(error)}]) from error
        headers = {"Idempotent-Replayed": "true"} if result.replayed else {}
        if result.replayed:
            metrics.replays.inc()
        elif "inserted" in result.body:
            metrics.records.labels(kind).inc(result.body["inserted"])
        return JSONResponse(result.body, status_code=result.status_code, headers=headers)

    @app.exception_handler(ApiError)
    async def _api_error(_: Request, error: ApiError) -> JSONResponse:
        return JSONResponse(
            {"error": error.message, "problems": error.problems},
            status_code=error.status,
            headers=error.headers,
        )

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, error: RequestValidationError) -> JSONResponse:
        problems = [{"field": field_path(e["loc"]), "message": e["msg"]} for e in error.errors()]
        summary = "; ".join(f"{p['field']}: {p['message']}" for p in problems[:5])
        return JSONResponse({"error": f"invalid request: {summary}", "problems": problems}, status_code=422)

    @app.exception_handler(StoreUnavailable)
    async def _unavailable(_: Request, error: StoreUnavailable) -> JSONResponse:
        metrics.unavailable.inc()
        return JSONResponse(
            {
                "error": "the experience store is unavailable; nothing was written, retry later",
                "problems": [],
            },
            status_code=503,
            headers={"Retry-After": str(settings.retry_after_seconds)},
        )

    @app.middleware("http")
    async def _measure(request: Request, call_next: Callable[[Request], Any]) -> Response:
        started = time.perf_counter()
        response: Response = await call_next(request)
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        metrics.requests.labels(name, str(response.status_code)).inc()
        metrics.latency.labels(name).observe(time.perf_counter() - started)
        return response

    @app.post("/v1/runs/batch", response_model=WriteResponse, tags=["ingest"])
    def ingest_runs(batch: RunBatch, _: Caller, key: Key) -> JSONResponse:
        now = datetime.now(UTC)
        return write("runs", key, batch, lambda session: batches.write_runs(session, batch.runs, key, now))

    @app.post("/v1/feedback/batch", response_model=WriteResponse, tags=["ingest"])
    def ingest_feedback(batch: FeedbackBatch, _: Caller, key: Key) -> JSONResponse:
        now = datetime.now(UTC)

        def where(i: int, f: FeedbackIn) -> str:
            return f"feedback[{i}].{'runId' if f.run_id else 'requestId'}"

        return write(
            "feedback",
            key,
            batch,
            lambda session: batches.write_feedback(session, batch.feedback, key, now, where),
        )

    @app.post("/v1/pairs/batch", response_model=WriteResponse, tags=["ingest"])
    def ingest_pairs(batch: PairBatch, _: Caller, key: Key) -> JSONResponse:
        now = datetime.now(UTC)
        return write("pairs", key, batch, lambda session: batches.write_pairs(session, batch.pairs, now))

    @app.post("/v1/annotations/batch", response_model=WriteResponse, tags=["review"])
    def ingest_annotations(batch: AnnotationBatch, _: Caller, key: Key) -> JSONResponse:
        now = datetime.now(UTC)
        return write(
            "annotations",
            key,
            batch,
            lambda session: batches.write_annotations(
                session, batch.annotations, key, now, lambda i, _: f"annotations[{i}].runId"
            ),
        )

    @app.post("/v1/reviews/batch", tags=["review"])
    def review(batch: ReviewBatch, _: Caller, key: Key) -> JSONResponse:
        reviews = [r.model_dump() for r in batch.reviews]
        return write("reviews", key, batch, lambda session: ingest.apply_reviews(session, reviews))

    @app.get("/v1/review/queue", tags=["review"])
    def queue(
        _: Caller,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
        agent: Annotated[str | None, Query(max_length=128)] = None,
    ) -> JSONResponse:
        with transaction(factory) as session:
            return JSONResponse(ingest.review_queue(session, limit, agent))

    @app.put("/v1/policies/{name}", tags=["policies"])
    def put_policy(
        _: Caller, name: Annotated[str, Depends(_policy_name)], policy: PolicyIn, key: Key
    ) -> JSONResponse:
        weights = policy.reward.model_dump(by_alias=True)
        return write(
            "policies",
            key,
            policy,
            lambda session: {
                "name": name,
                "rewardsRecomputed": ingest.upsert_policy(
                    session, name, policy.agent, policy.role, policy.task_family, weights
                ),
            },
        )

    routes_api.mount(app, router_state, factory, principal, settings.token_secret)

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.get("/readyz", include_in_schema=False)
    def readyz() -> PlainTextResponse:
        with transaction(factory) as session:
            session.execute(text("SELECT 1"))
        return PlainTextResponse("ok")

    @app.get("/metrics", include_in_schema=False)
    def metrics_endpoint() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return app


def _policy_name(name: str) -> str:
    if not re.fullmatch(r"[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?", name):
        raise ApiError(
            422, "policy name must be a Kubernetes object name", [{"field": "name", "message": "invalid"}]
        )
    return name
