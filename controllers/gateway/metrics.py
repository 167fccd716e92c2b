"""The gateway's Prometheus counters, and the middleware that counts each request by route and status.

The ``route`` label is the matched route's path template (``/v1/policies/{namespace}/{name}``), never the raw
path, so a scan of made-up URLs cannot grow the label set; anything unmatched is ``unmatched``. The
proxy under ``/openai/`` bypasses this middleware and has its own counters (``router_state``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import Request
from fastapi.responses import Response
from prometheus_client import CollectorRegistry, Counter, Histogram

CallNext = Callable[[Request], Awaitable[Response]]


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


def request_meter(metrics: Metrics) -> Callable[[Request, CallNext], Awaitable[Response]]:
    """An HTTP middleware counting every request and timing it, labelled by the route it matched."""

    async def measure(request: Request, call_next: CallNext) -> Response:
        started = time.perf_counter()
        response = await call_next(request)
        route = getattr(request.scope.get("route"), "path", "unmatched")
        metrics.requests.labels(route, str(response.status_code)).inc()
        metrics.latency.labels(route).observe(time.perf_counter() - started)
        return response

    return measure
