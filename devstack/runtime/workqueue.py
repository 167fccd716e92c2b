"""A controller's work loop: keys go in (from the informer or a timer), one reconcile at a time comes out.

A key waiting in the queue is not added twice, so a burst of watch events costs one reconcile. A
reconcile returns how long to wait before looking at the key again (None: only on the next change);
one that fails is retried after a pause instead of ending the controller.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from devstack.runtime.kube import Informer, Key

log = logging.getLogger(__name__)
Reconcile = Callable[[Key, dict[str, Any] | None], Awaitable[float | None]]
RETRY_AFTER_ERROR = 2.0


class WorkQueue:
    def __init__(self) -> None:
        self._queue: asyncio.Queue[Key] = asyncio.Queue()
        self._waiting: set[Key] = set()

    def add(self, key: Key) -> None:
        if key not in self._waiting:
            self._waiting.add(key)
            self._queue.put_nowait(key)

    def add_after(self, key: Key, delay: float) -> None:
        asyncio.get_running_loop().call_later(delay, self.add, key)

    async def get(self) -> Key:
        key = await self._queue.get()
        self._waiting.discard(key)
        return key


async def run_controller(name: str, informer: Informer, queue: WorkQueue, reconcile: Reconcile) -> None:
    """Reconcile keys from ``queue`` forever, with the informer's current copy of each object."""
    await informer.synced.wait()
    while True:
        key = await queue.get()
        try:
            again = await reconcile(key, informer.cache.get(key))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s %s/%s: reconcile failed; retrying", name, *key)
            again = RETRY_AFTER_ERROR
        if again is not None:
            queue.add_after(key, again)
