"""The resync loops: every object of a kind looked at now and then, for what changes outside Kubernetes.

Jobs finish, the store fills up, the router counts traffic: none of that is a Kubernetes event, so
each kind has a loop that reconciles every object every ``kind.interval`` seconds (objects at rest
only every ``kind.rest_interval``, controllers.operator.rest). Not Kopf timers: those put a
finalizer on every object, so deleting anything would wait for the operator to be up.

A pass is a steady trickle, not a burst: the list is read a page at a time, at most ``concurrency``
objects are in flight, a large pass starts its objects spread over half the interval, and each
next object waits while Kopf's change handlers run (controllers.operator.pacing). So the operator's
memory and a new object's time to its first status hardly depend on how many objects exist.
A failing object is logged and retried on the next pass; it never stops the loop.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any

import httpx

from controllers.operator.deps import Dependencies
from controllers.operator.handlers import Kind, handle
from controllers.operator.kube import KubeError

log = logging.getLogger("kaizen.operator")

PAGE = 100


async def resync(kind: Kind, deps: Dependencies, namespaces: list[str], concurrency: int = 8) -> None:
    due: dict[str, float] = {}  # uid -> when an object at rest is looked at next
    clock = asyncio.get_running_loop().time
    last_count = 0  # objects reconciled by the last pass: how far to spread this one
    while True:
        started = clock()
        try:
            last_count = await _one_pass(kind, deps, namespaces, concurrency, due, last_count)
        except (KubeError, OSError, httpx.HTTPError) as error:
            log.warning("resync of %s failed: %s", kind.resource.plural, error)
        elapsed = clock() - started
        await asyncio.sleep(max(0.05, kind.interval - elapsed))


async def _one_pass(
    kind: Kind,
    deps: Dependencies,
    namespaces: list[str],
    concurrency: int,
    due: dict[str, float],
    last_count: int,
) -> int:
    gate = asyncio.Semaphore(concurrency)
    clock = asyncio.get_running_loop().time
    running: set[asyncio.Task[None]] = set()
    seen: set[str] = set()
    count = 0

    async def one(raw: dict[str, Any]) -> None:
        try:
            await handle(kind, raw, deps)
        except Exception as error:  # the next pass retries; Kopf's change handlers retry too
            deps.metrics.errors.labels(kind.name).inc()
            meta = raw["metadata"]
            log.warning("%s %s/%s: %s", kind.name, meta.get("namespace"), meta.get("name"), error)
        finally:
            gate.release()

    try:
        scopes: list[str | None] = list(namespaces) or [None]
        for namespace in scopes:
            async for page, remaining in deps.kube.pages(kind.resource, namespace, PAGE):
                live = [i for i in page if not i["metadata"].get("deletionTimestamp")]
                batch = this_pass(kind, live, due, clock(), seen)
                # Many objects: spread their starts over half the interval, so that a pass runs
                # beside Kopf's change handlers instead of queueing them behind a thousand reconciles.
                expected = max(last_count, count + len(batch) + (remaining or 0))
                step = kind.interval / 2 / expected if expected > concurrency else 0.0
                for item in batch:
                    await deps.urgency.quiet()
                    await gate.acquire()
                    task = asyncio.create_task(one(item))
                    running.add(task)
                    task.add_done_callback(running.discard)
                    count += 1
                    if step:
                        await asyncio.sleep(step)
                del page, live, batch  # only the objects in flight stay in memory
        forget_deleted(due, seen)
        if kind.forget is not None:
            kind.forget(deps, seen)
    except asyncio.CancelledError:  # the operator stops: so do the reconciles in flight
        for task in running:
            task.cancel()
        raise
    finally:
        if running:
            await asyncio.gather(*running, return_exceptions=True)
    return count


def this_pass(
    kind: Kind, items: list[dict[str, Any]], due: dict[str, float], now: float, seen: set[str]
) -> list[dict[str, Any]]:
    """The objects of ``items`` to reconcile now: every moving one, then those at rest whose time has
    come. An object first seen at rest is due at a random point of the rest interval, so that a
    restart does not look at everything at once. Records every uid in ``seen``."""
    moving, resting = [], []
    for item in items:
        uid = item["metadata"].get("uid") or ""
        seen.add(uid)
        if not kind.at_rest(item):
            due.pop(uid, None)
            moving.append(item)
            continue
        if uid not in due:
            due[uid] = now + random.uniform(0, kind.rest_interval)
        elif now >= due[uid]:
            due[uid] = now + kind.rest_interval
            resting.append(item)
    return moving + resting


def forget_deleted(due: dict[str, float], seen: set[str]) -> None:
    for uid in set(due) - seen:
        del due[uid]
