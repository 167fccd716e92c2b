"""Change handlers before timer work: a new object's first status should not queue behind a thousand resyncs.

Kopf calls the change handlers (an object created, its spec edited); the resync
loops (controllers.operator.resync) look at every object now and then for what changes outside
Kubernetes. Both compete for the same event loop, the store's threads and the API server. The
resync loops therefore hold back each next object while any change handler is running — for at most
``patience`` seconds, so that a handler stuck on a slow call cannot stop the loops.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator


class Urgency:
    def __init__(self, patience: float = 2.0) -> None:
        self.patience = patience
        self._running = 0
        self._quiet = asyncio.Event()
        self._quiet.set()

    @property
    def running(self) -> int:
        return self._running

    @contextlib.asynccontextmanager
    async def urgent(self) -> AsyncIterator[None]:
        """Around a change handler: timer work waits while it runs."""
        self._running += 1
        self._quiet.clear()
        try:
            yield
        finally:
            self._running -= 1
            if not self._running:
                self._quiet.set()

    async def quiet(self) -> None:
        """Return when no change handler runs, or after ``patience`` seconds."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._quiet.wait(), self.patience)
