"""One reconcile of one object, the same for every kind: read it fresh, validate, reconcile, write status.

Kopf's change handlers (controllers.operator.handlers) and the resync loops (controllers.operator.resync)
both end here. One reconcile at a time per object. ``handle`` parses the body once, refuses a contradictory
spec with an InvalidSpec condition that names the field, asks the kind's reconcile for the new status,
posts its Events and writes the status only when it changed. No Kopf here: this is plain asyncio.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from controllers.api import kinds
from controllers.api.intervention import pending, recorded, requested
from controllers.api.kindinfo import KindInfo, Resource
from controllers.decisions import answers, validation
from controllers.decisions.conditions import READY, Want, merge
from controllers.reconcile import loop_mirror
from controllers.reconcile.deps import Dependencies
from controllers.runtime import events
from controllers.runtime.kube import without_empty_strings

log = logging.getLogger("kaizen.operator")


class Outcome(Protocol):
    status: Any
    events: list[tuple[str, str, str]]


Reconcile = Callable[[dict[str, Any], Any, Dependencies], Awaitable[Outcome]]


@dataclass(frozen=True)
class Kind:
    """A kind as the operator runs it: its facts (controllers.api.kindinfo), its reconcile and its pace."""

    info: KindInfo
    reconcile: Reconcile
    interval: float  # seconds between timer reconciles
    rest_interval: float  # seconds between reconciles of an object at rest (KindInfo.at_rest)
    # Drops what the operator remembers per object for objects that are gone (given the live uids).
    forget: Callable[[Dependencies, set[str]], None] | None = None

    @property
    def name(self) -> str:
        return self.info.kind

    @property
    def resource(self) -> Resource:
        return self.info.resource


def status_patch(old: dict[str, Any] | None, new: dict[str, Any]) -> dict[str, Any]:
    """A merge patch from ``old`` to ``new``: changed keys, and None for keys that went away."""
    patch: dict[str, Any] = {k: v for k, v in new.items() if (old or {}).get(k) != v}
    patch.update({k: None for k in (old or {}) if k not in new})
    return patch


async def handle(kind: Kind, raw: dict[str, Any], deps: Dependencies, old_spec: Any = None) -> None:
    uid = raw["metadata"].get("uid") or ""
    async with deps.lock(uid):
        # Act on the object as it is now, not as a watch event or a resync page saw it a while ago:
        # another reconcile may have changed it since (an Experiment rolling this model back, say),
        # and acting on the old copy would undo that (re-create a deployment just taken down).
        meta = raw["metadata"]
        fresh = await deps.kube.get(kind.resource, meta["namespace"], meta["name"])
        if fresh is None or (fresh["metadata"].get("uid") or "") != uid:
            return  # deleted (or deleted and made anew: the new one has its own turn)
        fresh["metadata"].pop("managedFields", None)  # the server's bookkeeping: never read, only held
        raw = fresh
        raw.setdefault("status", None)
        deps.metrics.reconciles.labels(kind.name).inc()
        problems = validation.violations(kind.name, raw["spec"], old_spec)
        if kind.info.frozen_spec:
            problems += await _frozen(kind, raw, deps)
        obj, parse_problems = validation.parse(kind.info.model, raw)
        problems += parse_problems
        if problems or obj is None:
            await _invalid(kind, raw, problems, deps)
            return
        try:
            outcome = await kind.reconcile(raw, obj, deps)
        except Exception:
            deps.metrics.errors.labels(kind.name).inc()
            raise
        await post_events(raw, outcome, deps)
        status = outcome.status.to_wire()
        await loop_mirror.mirror(kind.name, raw, status, deps)
        await _write_status(kind, raw, status, deps)


async def post_events(raw: dict[str, Any], outcome: Outcome, deps: Dependencies) -> None:
    """The reconcile's Events. The one answering a person's request is named after the request's id:
    an operator killed after posting it and before writing the status answers the request again in
    its next pass, and that Event must not be said twice."""
    request, _ = requested(raw["metadata"])
    answered = {}
    for entry in getattr(outcome.status, "interventions", []):
        if request is not None and entry.id == request.id:
            answered = {answers.event(entry, entry.outcome): request.id}
    for event_type, reason, message in outcome.events:
        key = answered.get((event_type, reason, message))
        await events.post(deps.kube, raw, event_type, reason, message, key)


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
    return [] if frozen == current else [f"spec: spec is immutable; create a new {kind.name}"]


async def _write_status(kind: Kind, raw: dict[str, Any], new: dict[str, Any], deps: Dependencies) -> None:
    """Merge-patch the status subresource with what changed. The operator writes status itself (not
    through Kopf's patch, which Kopf folds into its own bookkeeping) so what is sent is exactly this."""
    changes = status_patch(raw["status"], without_empty_strings(new))
    if changes:
        meta = raw["metadata"]
        await deps.kube.patch_status(kind.resource, meta["namespace"], meta["name"], changes)


async def _invalid(kind: Kind, raw: dict[str, Any], problems: list[str], deps: Dependencies) -> None:
    message = "; ".join(problems)[:2000]
    current = kind.info.status_model.model_validate(raw["status"] or {})
    generation = raw["metadata"].get("generation", 0)
    conditions = merge(
        getattr(current, "conditions", []),
        [Want.false(READY, "InvalidSpec", f"{message}. Fix the spec; nothing was done until then.")],
        generation=generation,
        now=deps.clock(),
    )
    update: dict[str, Any] = {"conditions": conditions, "observed_generation": generation}
    history = getattr(current, "interventions", [])
    if (request := pending(raw["metadata"], history)) is not None:
        # Nothing is done for an invalid spec, a person's request included: say so now, or it would
        # stay unanswered (and the object never at rest) until someone fixed the spec.
        outcome = answers.declined(f"the spec is invalid ({message[:200]}); fix it, then ask again")
        update["interventions"] = recorded(history, request, outcome)
    new_status = current.model_copy(update=update)
    before = (raw["status"] or {}).get("conditions")
    await _write_status(kind, raw, new_status.to_wire(), deps)
    if request is not None:
        answer = answers.event(request, update["interventions"][-1].outcome)
        await events.post(deps.kube, raw, *answer, key=request.id)
    if before != new_status.to_wire()["conditions"]:
        await events.post(deps.kube, raw, "Warning", "InvalidSpec", message)
