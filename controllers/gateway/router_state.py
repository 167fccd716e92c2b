"""What the router keeps per gateway process: the route table, the upstream client, the recorder.

Its lifespan opens one shared httpx connection pool (``httpx.AsyncHTTPTransport``: keep-alive
connections to every upstream), loads the routes, then keeps them fresh by polling the store every ``refresh_seconds``:
a replica sees a weight change another replica stored within that interval. While the store is down
the last known routes keep serving and ``kaizen_router_route_refresh_failures_total`` counts. A stored
route this replica cannot serve (its row does not parse, or the allowlist refuses an endpoint) is
skipped with an error line and ``kaizen_router_route_rows_invalid_total{route}``; the others serve on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Sequence
from typing import Any

import httpx
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from sqlalchemy.orm import Session, sessionmaker

from controllers.api.routes import DEFAULT_ALLOWED_HOSTS
from controllers.gateway.recorder import AssignmentRecorder
from controllers.gateway.route_table import RouteTable
from controllers.store.db import transaction
from controllers.store.experiments import RouteChanges, load_routes

log = logging.getLogger("kaizen.router")

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class RouterMetrics:
    def __init__(self, registry: CollectorRegistry, table: RouteTable) -> None:
        labels = ["route", "variant"]
        self.requests = Counter(
            "kaizen_router_requests",
            "Proxied requests by route, serving variant and status",
            [*labels, "code"],
            registry=registry,
        )
        self.errors = Counter(
            "kaizen_router_upstream_errors",
            "Upstream failures (connection, timeout, 5xx) by variant",
            labels,
            registry=registry,
        )
        self.fallbacks = Counter(
            "kaizen_router_fallbacks",
            "Requests of a failed challenger served by the champion",
            labels,
            registry=registry,
        )
        self.latency = Histogram(
            "kaizen_router_upstream_seconds",
            "Time from sending a request to a variant to relaying its last byte, by serving variant",
            labels,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.unit_missing = Counter(
            "kaizen_router_units_from_request",
            "Requests on a User/Session route without a unit id, randomised per request instead",
            ["route"],
            registry=registry,
        )
        self.refresh_failures = Counter(
            "kaizen_router_route_refresh_failures",
            "Route polls that failed (the last routes keep serving)",
            registry=registry,
        )
        self.invalid_rows = Counter(
            "kaizen_router_route_rows_invalid",
            "Stored route versions this replica skipped: the row does not parse, or the allowlist "
            "(KAIZEN_ROUTE_ALLOWED_HOSTS) refuses an endpoint",
            ["route"],
            registry=registry,
        )
        Gauge("kaizen_router_routes", "Routes this replica serves", registry=registry).set_function(
            lambda: len(table)
        )
        Gauge(
            "kaizen_router_routes_invalid", "Stored routes whose newest version is skipped", registry=registry
        ).set_function(lambda: len(table.invalid()))


class RouterState:
    def __init__(
        self,
        factory: sessionmaker[Session],
        registry: CollectorRegistry,
        refresh_seconds: float = 0.25,
        allowed_hosts: Sequence[str] = DEFAULT_ALLOWED_HOSTS,
        max_body_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        self.factory, self.refresh_seconds = factory, refresh_seconds
        self.max_body_bytes = max_body_bytes  # the largest request body the proxy reads
        self.table = RouteTable(allowed_hosts)
        self.metrics = RouterMetrics(registry, self.table)
        self.recorder = AssignmentRecorder(factory, registry)
        self._transport: httpx.AsyncHTTPTransport | None = None

    @property
    def transport(self) -> httpx.AsyncHTTPTransport:
        """The pool every upstream call goes through. The transport rather than an ``AsyncClient``:
        a proxy must not keep one cookie jar for all its users nor follow redirects, and skipping
        the client's auth, redirect and cookie layers saves a sixth of the per-request CPU."""
        if self._transport is None:
            raise RuntimeError("the router is not started (its lifespan has not run)")
        return self._transport

    async def refresh(self) -> bool:
        """Poll the store once; False (and a metric) when that failed. Never raises: start-up and the
        poll loop rely on it. A stored row that cannot be served is skipped, logged and counted."""
        known = self.table.versions()
        try:
            changes = await asyncio.to_thread(self._load, self.table.poll_versions())
            _, invalid = self.table.apply(changes.changed, changes.removed, known, changes.invalid)
        except Exception as error:  # the store is down or refused: keep serving what we have
            self.metrics.refresh_failures.inc()
            log.warning("route refresh failed: %s", error)
            return False
        for key, version, reason in invalid:
            self.metrics.invalid_rows.labels(key).inc()
            log.error("route %r version %d skipped (the other routes keep serving): %s", key, version, reason)
        return True

    def _load(self, known: dict[str, int]) -> RouteChanges:
        with transaction(self.factory) as session:
            return load_routes(session, known)

    async def _refresh_forever(self) -> None:
        while True:
            await asyncio.sleep(self.refresh_seconds)
            await self.refresh()

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Any) -> AsyncIterator[None]:
        self._transport = httpx.AsyncHTTPTransport(
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=200, keepalive_expiry=60)
        )
        await self.refresh()
        tasks = [asyncio.create_task(self._refresh_forever()), asyncio.create_task(self.recorder.run())]
        try:
            yield
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await self.recorder.close()
            await self._transport.aclose()
            self._transport = None
