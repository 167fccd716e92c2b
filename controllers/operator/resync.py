"""The resync loops: every object of a kind looked at now and then, for what changes outside Kubernetes.

Jobs finish, the store fills up, the router counts traffic: none of that is a Kubernetes event, so
each kind has a loop that reconciles every moving object every ``kind.interval`` seconds (objects at
rest only every ``kind.rest_interval``, controllers.api.kindinfo). Not Kopf timers: those put a
finalizer on every object, so deleting anything would wait for the operator to be up.

Which objects exist and which of them are at rest comes from the kind's watch-fed index
(controllers.runtime.index), not from a list per pass: a pass costs the objects that move.
A pass is a steady trickle, not a burst: at most ``concurrency`` objects are in flight, a large pass
starts its objects spread over half the interval, and each next object waits while Kopf's change
handlers run (controllers.runtime.pacing). So the operator's memory and a new object's time to its
first status hardly depend on how many objects exist.
A failing object is logged and retried on the next pass; it never stops the loop.
"""

from __future__ import annotations

import asyncio
import logging
import random

from controllers.operator.dispatch import Kind, handle
from controllers.reconcile import loop_mirror
from controllers.reconcile.deps import Dependencies
from controllers.runtime.index import Entry, Index

log = logging.getLogger("kaizen.operator")


async def resync(kind: Kind, deps: Dependencies, namespaces: list[str], concurrency: int = 8) -> None:
    index = Index(kind.resource, kind.info.at_rest)
    follower = asyncio.create_task(index.run(deps.kube, namespaces))
    try:
        await index.synced.wait()
        due: dict[str, float] = {}  # uid -> when an object at rest is looked at next
        clock = asyncio.get_running_loop().time
        while True:
            started = clock()
            await one_pass(kind, deps, index, concurrency, due)
            await _prune_mirror(kind, deps, index, namespaces, clock())
            await asyncio.sleep(max(0.05, kind.interval - (clock() - started)))
    finally:
        follower.cancel()


async def _prune_mirror(
    kind: Kind, deps: Dependencies, index: Index, namespaces: list[str], now: float
) -> None:
    live = {entry.uid for entry in index.entries.values()}
    try:
        await loop_mirror.prune(kind.name, live, namespaces, deps, now)
    except Exception as error:  # the store is away: the next pass prunes
        log.warning("%s: pruning the dashboard's summaries: %s", kind.name, error)


async def one_pass(
    kind: Kind, deps: Dependencies, index: Index, concurrency: int, due: dict[str, float]
) -> int:
    """Reconcile the objects due now (see ``this_pass``); returns how many."""
    gate = asyncio.Semaphore(concurrency)
    running: set[asyncio.Task[None]] = set()
    live = list(index.entries.values())
    batch = this_pass(live, due, asyncio.get_running_loop().time(), kind.rest_interval)
    forget_deleted(due, {entry.uid for entry in live})
    if kind.forget is not None:
        kind.forget(deps, {entry.uid for entry in live})
    # Many objects: spread their starts over half the interval, so that a pass runs beside Kopf's
    # change handlers instead of queueing them behind a thousand reconciles.
    step = kind.interval / 2 / len(batch) if len(batch) > concurrency else 0.0

    async def one(entry: Entry) -> None:
        try:
            await handle(kind, entry.stub(), deps)
        except Exception as error:  # the next pass retries; Kopf's change handlers retry too
            deps.metrics.errors.labels(kind.name).inc()
            log.warning("%s %s/%s: %s", kind.name, entry.namespace, entry.name, error)
        finally:
            gate.release()

    try:
        for entry in batch:
            await deps.urgency.quiet()
            await gate.acquire()
            task = asyncio.create_task(one(entry))
            running.add(task)
            task.add_done_callback(running.discard)
            if step:
                await asyncio.sleep(step)
    except asyncio.CancelledError:  # the operator stops: so do the reconciles in flight
        for task in running:
            task.cancel()
        raise
    finally:
        if running:
            await asyncio.gather(*running, return_exceptions=True)
    return len(batch)


def this_pass(entries: list[Entry], due: dict[str, float], now: float, rest_interval: float) -> list[Entry]:
    """The entries to reconcile now: every moving one, then those at rest whose time has come. An
    object first seen at rest is due at a random point of the rest interval, so that a restart does
    not look at everything at once."""
    moving, resting = [], []
    for entry in entries:
        if not entry.at_rest:
            due.pop(entry.uid, None)
            moving.append(entry)
            continue
        if entry.uid not in due:
            due[entry.uid] = now + random.uniform(0, rest_interval)
        elif now >= due[entry.uid]:
            due[entry.uid] = now + rest_interval
            resting.append(entry)
    return moving + resting


def forget_deleted(due: dict[str, float], seen: set[str]) -> None:
    for uid in set(due) - seen:
        del due[uid]
