"""Kopf handlers: thin glue from Kopf's callbacks to each kind's reconcile.

Every kind is reconciled the same way, level-triggered: on create, on spec change, on operator resume
(Kopf's change handlers), and by a resync loop per kind that lists the objects every ``interval`` for
what changes outside Kubernetes (jobs, the store, the router's traffic). Not Kopf timers: those put
a finalizer on every object, so deleting anything would wait for the operator to be up — Kaizen needs
no finalizer, because everything it makes is owner-referenced. One reconcile at a time per object. A handler parses the body once, refuses a contradictory spec with an
InvalidSpec condition that names the field, asks the kind's reconcile for the new status, posts its
Events and writes the status only when it changed. Only this module imports kopf.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import kopf
from pydantic import BaseModel
from sqlalchemy.exc import OperationalError

from controllers.api.common import KaizenModel
from controllers.operator import events, kinds, validation
from controllers.operator.conditions import READY, Want, merge
from controllers.operator.deps import Dependencies
from controllers.operator.kube import KubeError, Resource

log = logging.getLogger("kaizen.operator")


class Outcome(Protocol):
    status: Any
    events: list[tuple[str, str, str]]


Reconcile = Callable[[dict[str, Any], Any, Dependencies], Awaitable[Outcome]]


@dataclass(frozen=True)
class Kind:
    name: str
    resource: Resource
    model: type[BaseModel]
    status_model: type[KaizenModel]
    reconcile: Reconcile
    interval: float  # seconds between timer reconciles
    at_rest: Callable[[dict[str, Any]], bool]  # controllers.operator.rest: finished, nothing to do
    rest_interval: float  # seconds between reconciles of an object at rest
    frozen_spec: bool = False  # the spec may never change after creation (TrainingRun)


def status_patch(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """A merge patch from ``old`` to ``new``: changed keys, and None for keys that went away."""
    patch: dict[str, Any] = {k: v for k, v in new.items() if (old or {}).get(k) != v}
    patch.update({k: None for k in (old or {}) if k not in new})
    return patch


def plain(body: kopf.Body) -> dict[str, Any]:
    raw: dict[str, Any] = dict(body)
    raw["metadata"] = dict(body.metadata)
    raw["spec"] = dict(body.spec)
    raw["status"] = dict(body.status) if body.status else None
    return raw


async def handle(kind: Kind, raw: dict[str, Any], deps: Dependencies, old_spec: Any = None) -> None:
    raw.setdefault("status", None)
    uid = raw["metadata"].get("uid") or ""
    async with deps.lock(uid):
        deps.metrics.reconciles.labels(kind.name).inc()
        problems = validation.violations(kind.name, raw["spec"], old_spec)
        if kind.frozen_spec:
            problems += await _frozen(kind, raw, deps)
        obj, parse_problems = validation.parse(kind.model, raw)
        problems += parse_problems
        if problems or obj is None:
            await _invalid(kind, raw, problems, deps)
            return
        try:
            outcome = await kind.reconcile(raw, obj, deps)
        except Exception:
            deps.metrics.errors.labels(kind.name).inc()
            raise
        for event_type, reason, message in outcome.events:
            await events.post(deps.kube, raw, event_type, reason, message)
        await _write_status(kind, raw, outcome.status.to_wire(), deps)


async def _frozen(kind: Kind, raw: dict[str, Any], deps: Dependencies) -> list[str]:
    """Record the spec's hash on first sight; afterwards a different spec is refused. (On servers with
    CEL the API server refuses the edit itself; this keeps older servers honest.)"""
    current = validation.spec_hash(raw["spec"])
    meta = raw["metadata"]
    frozen = (meta.get("annotations") or {}).get(kinds.FROZEN_SPEC)
    if frozen is None:
        await deps.kube.patch(
            kind.resource,
            meta["namespace"],
            meta["name"],
            {"metadata": {"annotations": {kinds.FROZEN_SPEC: current}}},
        )
        return []
    return [] if frozen == current else ["spec: spec is immutable; create a new TrainingRun"]


def without_empty_strings(value: Any) -> Any:
    """The value with every empty-string field left out (they are the API types' defaults anyway).

    The v1.20 API server of the local control plane reads ``""`` in a merge patch as null and refuses
    it for a string field; leaving them out works on every server."""
    if isinstance(value, dict):
        return {k: without_empty_strings(v) for k, v in value.items() if v != ""}
    if isinstance(value, list):
        return [without_empty_strings(v) for v in value]
    return value


async def _write_status(kind: Kind, raw: dict[str, Any], new: dict[str, Any], deps: Dependencies) -> None:
    """Merge-patch the status subresource with what changed. The operator writes status itself (not
    through Kopf's patch, which Kopf folds into its own bookkeeping) so what is sent is exactly this."""
    changes = status_patch(raw["status"], without_empty_strings(new))
    if changes:
        meta = raw["metadata"]
        await deps.kube.patch_status(kind.resource, meta["namespace"], meta["name"], changes)


async def _invalid(kind: Kind, raw: dict[str, Any], problems: list[str], deps: Dependencies) -> None:
    message = "; ".join(problems)[:2000]
    current = kind.status_model.model_validate(raw["status"] or {})
    generation = raw["metadata"].get("generation", 0)
    conditions = merge(
        getattr(current, "conditions", []),
        [Want.false(READY, "InvalidSpec", f"{message}. Fix the spec; nothing was done until then.")],
        generation=generation,
        now=deps.clock(),
    )
    new_status = current.model_copy(update={"conditions": conditions, "observed_generation": generation})
    before = (raw["status"] or {}).get("conditions")
    await _write_status(kind, raw, new_status.to_wire(), deps)
    if before != new_status.to_wire()["conditions"]:
        await events.post(deps.kube, raw, "Warning", "InvalidSpec", message)


def register(registry: kopf.OperatorRegistry, kind: Kind) -> None:
    """Create/update/resume handlers for one kind, all leading to ``handle``."""
    group, version, plural = kind.resource.group, kind.resource.version, kind.resource.plural

    async def on_change(body: kopf.Body, memo: Any, old: Any = None, reason: Any = None, **_: Any) -> None:
        old_spec = dict(old.get("spec") or {}) if isinstance(old, dict) else None
        raw = plain(body)
        if reason == kopf.Reason.RESUME and kind.at_rest(raw):
            return  # finished before this start: the resync loop looks at it now and then
        try:
            await handle(kind, raw, memo.deps, old_spec)
        except (KubeError, OSError, httpx.HTTPError, OperationalError) as error:
            # The API server, the store or the router is away for a moment (a restart, a network
            # blip): a one-line retry soon, not a traceback and Kopf's default minute of waiting.
            # A refusal (403, 422, ...) will not pass by itself: retry it only every minute.
            refused = (
                isinstance(error, KubeError) and 400 <= error.status < 500 and error.status not in (409, 429)
            )
            raise kopf.TemporaryError(
                f"{type(error).__name__}: {error}", delay=60 if refused else 5
            ) from error

    for decorator in (kopf.on.create, kopf.on.resume):
        decorator(group, version, plural, registry=registry, id=f"reconcile-{plural}")(on_change)
    kopf.on.update(group, version, plural, registry=registry, id=f"reconcile-{plural}", field="spec")(
        on_change
    )


async def resync(kind: Kind, deps: Dependencies, namespaces: list[str], concurrency: int = 8) -> None:
    """Reconcile every object of ``kind`` every ``kind.interval`` seconds, ``concurrency`` at a time;
    objects at rest only every ``kind.rest_interval`` (first seen: at a random point of it, so that
    a restart does not look at everything at once). Moving objects go first in each pass, and a
    large pass is spread over half the interval.
    A failing object is logged and retried on the next pass; it never stops the loop."""
    gate = asyncio.Semaphore(concurrency)
    due: dict[str, float] = {}  # uid -> when an object at rest is looked at next
    clock = asyncio.get_running_loop().time

    async def one(raw: dict[str, Any], delay: float) -> None:
        await asyncio.sleep(delay)
        async with gate:
            try:
                await handle(kind, raw, deps)
            except Exception as error:  # the next pass retries; Kopf's change handlers retry too
                deps.metrics.errors.labels(kind.name).inc()
                log.warning(
                    "%s %s/%s: %s",
                    kind.name,
                    raw["metadata"].get("namespace"),
                    raw["metadata"].get("name"),
                    error,
                )

    while True:
        started = clock()
        try:
            items = []
            scopes: list[str | None] = list(namespaces) or [None]
            for namespace in scopes:
                items += await deps.kube.list(kind.resource, namespace)
            live = [i for i in items if not i["metadata"].get("deletionTimestamp")]
            batch = _this_pass(kind, live, due, clock())
            # Many objects: spread their starts over half the interval, so that a pass is a steady
            # trickle beside Kopf's change handlers (a new object's first status) and not a burst
            # that queues them behind a thousand timers. A few objects go at once.
            step = kind.interval / 2 / len(batch) if len(batch) > concurrency else 0.0
            await asyncio.gather(*(one(item, i * step) for i, item in enumerate(batch)))
        except (KubeError, OSError, httpx.HTTPError) as error:
            log.warning("resync of %s failed: %s", kind.resource.plural, error)
        elapsed = clock() - started
        await asyncio.sleep(max(0.05, kind.interval - elapsed))


def _this_pass(
    kind: Kind, items: list[dict[str, Any]], due: dict[str, float], now: float
) -> list[dict[str, Any]]:
    """The objects to reconcile now: every moving one, then those at rest whose time has come."""
    moving, resting = [], []
    seen = set()
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
    for uid in set(due) - seen:  # deleted
        del due[uid]
    return moving + resting
