"""Probes and counters, left out of the OpenAPI document: they are for the kubelet and Prometheus.

``/healthz`` says the process serves; ``/readyz`` also runs ``SELECT 1`` against the store, so a
replica that cannot reach it leaves the Service (a 503 in the error shape); ``/metrics`` is the
Prometheus text of ``Metrics`` and the router's counters (one registry).

(No ``from __future__ import annotations`` here: FastAPI reads the endpoint annotations at runtime.)
"""

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text

from controllers.gateway.context import Shared
from controllers.store.db import transaction

router = APIRouter(include_in_schema=False)


@router.get("/healthz")
def healthz() -> PlainTextResponse:
    return PlainTextResponse("ok")


@router.get("/readyz")
def readyz(shared: Shared) -> PlainTextResponse:
    with transaction(shared.factory) as session:
        session.execute(text("SELECT 1"))
    return PlainTextResponse("ok")


@router.get("/metrics")
def metrics_endpoint(shared: Shared) -> Response:
    return Response(generate_latest(shared.metrics.registry), media_type=CONTENT_TYPE_LATEST)
