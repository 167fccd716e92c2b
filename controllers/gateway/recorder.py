"""Assignment rows written off the request path: a bounded buffer flushed in batches.

The proxy only appends to an in-memory deque (no I/O, no lock: one event loop). A background task
flushes it every ``flush_seconds`` or as soon as ``batch_rows`` are waiting, writing in a worker
thread. If the store is down the batch goes back to the front of the buffer and is retried with
backoff, so proxying never waits for the database. The buffer is bounded by ``max_pending``: past it,
new rows are dropped and counted in ``kaizen_router_assignments_dropped_total`` (the statistics then
see fewer samples, never wrong ones). Rows are keyed by request id, so a retried batch that had in
fact committed inserts nothing twice.

Token cost is read from the response (``usage``) here, in the flush thread, not while proxying.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge
from sqlalchemy.orm import Session, sessionmaker

from controllers.store.db import transaction
from controllers.store.experiments import record_assignments

log = logging.getLogger("kaizen.router")


@dataclass(slots=True)
class Served:
    """One proxied request as the proxy saw it; the recorder turns it into an assignment row."""

    request_id: str
    created_at: datetime
    namespace: str  # the route's: feedback finds this request only within it
    experiment: str
    variant: str
    served_variant: str
    unit_hash: str
    pinned: bool
    fallback: bool
    status_code: int | None
    error: bool
    error_message: str | None
    latency_ms: float | None
    body: bytes  # the whole body, or for a stream its last few kilobytes (where ``usage`` is)
    streamed: bool
    allocation: str | None = None  # the weights it was assigned by (``routes.allocation_text``)
    route: str | None = None  # the route's name: ``routes/use`` on it lets a caller rate the request

    def row(self) -> dict[str, Any]:
        return {
            "request_id": self.request_id,
            "created_at": self.created_at,
            "namespace": self.namespace,
            "experiment": self.experiment,
            "variant": self.variant,
            "served_variant": self.served_variant,
            "unit_hash": self.unit_hash,
            "pinned": self.pinned,
            "fallback": self.fallback,
            "status_code": self.status_code,
            "error": self.error,
            "error_message": self.error_message[:512] if self.error_message else None,
            "latency_ms": self.latency_ms,
            "cost_tokens": usage_tokens(self.body, self.streamed),
            "allocation": self.allocation,
            "route": self.route,
        }


def usage_tokens(body: bytes, streamed: bool) -> int | None:
    """Total tokens from an OpenAI-style ``usage`` object, or None when the response has none."""
    try:
        if streamed:
            for line in reversed(body.split(b"\n")):
                if line.startswith(b"data: {") and b'"usage"' in line:
                    return _total(json.loads(line[6:]).get("usage"))
            return None
        return _total(json.loads(body).get("usage")) if b'"usage"' in body else None
    except (ValueError, AttributeError):
        return None


def _total(usage: Any) -> int | None:
    if not isinstance(usage, dict):
        return None
    if isinstance(usage.get("total_tokens"), int):
        return int(usage["total_tokens"])
    parts = [usage.get("prompt_tokens"), usage.get("completion_tokens")]
    return sum(p for p in parts if isinstance(p, int)) if any(isinstance(p, int) for p in parts) else None


class AssignmentRecorder:
    def __init__(
        self,
        factory: sessionmaker[Session],
        registry: CollectorRegistry,
        *,
        flush_seconds: float = 0.1,
        batch_rows: int = 500,
        max_pending: int = 100_000,
    ) -> None:
        self.factory, self.flush_seconds = factory, flush_seconds
        self.batch_rows, self.max_pending = batch_rows, max_pending
        self._pending: deque[Served] = deque()
        self._wake = asyncio.Event()
        self.dropped = Counter(
            "kaizen_router_assignments_dropped",
            "Assignment rows dropped because the buffer was full while the store was down",
            registry=registry,
        )
        self.written = Counter(
            "kaizen_router_assignments_written", "Assignment rows flushed to the store", registry=registry
        )
        self.failures = Counter(
            "kaizen_router_assignment_flush_failures",
            "Flushes that failed (store down); the rows were kept and retried",
            registry=registry,
        )
        Gauge(
            "kaizen_router_assignments_pending", "Assignment rows waiting to be written", registry=registry
        ).set_function(lambda: len(self._pending))

    def add(self, served: Served) -> None:
        if len(self._pending) >= self.max_pending:
            self.dropped.inc()
            return
        self._pending.append(served)
        if len(self._pending) >= self.batch_rows:
            self._wake.set()

    @property
    def pending(self) -> int:
        return len(self._pending)

    async def run(self) -> None:
        """Flush forever (until cancelled), backing off while the store is unreachable."""
        backoff = self.flush_seconds
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=backoff)
            self._wake.clear()
            backoff = self.flush_seconds if await self.flush() else min(backoff * 2, 2.0)

    async def flush(self) -> bool:
        """Write everything waiting, batch by batch; False if the store refused (rows kept)."""
        while self._pending:
            count = min(self.batch_rows, len(self._pending))
            batch = [self._pending.popleft() for _ in range(count)]
            try:
                await asyncio.to_thread(self._write, batch)
            except Exception as error:  # the store is down or refused: keep the rows, retry later
                self._pending.extendleft(reversed(batch))
                self.failures.inc()
                log.warning("assignment flush failed (%d rows kept): %s", len(batch), error)
                return False
            self.written.inc(len(batch))
        return True

    def _write(self, batch: list[Served]) -> None:
        rows = [served.row() for served in batch]
        with transaction(self.factory) as session:
            record_assignments(session, rows)

    async def close(self, timeout: float = 5.0) -> None:
        """A last flush on shutdown, bounded so a dead store cannot hold the process."""
        try:
            await asyncio.wait_for(self.flush(), timeout)
        except TimeoutError:
            log.warning("shutdown with %d assignment rows unwritten", len(self._pending))
