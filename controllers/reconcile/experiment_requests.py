"""A person's request on an Experiment (``controllers.api.intervention``): read it, record the answer,
and announce it with an Event exactly once.

The rules themselves are pure (``controllers.decisions.experiments.interventions``); this is their I/O.

Exactly once, through a kill -9 anywhere: the answer's Event has a name made from the request's id
and is created only if absent, so a pass that dies after posting it and before recording the answer
answers again under the same name and adds nothing. A request that ends the experiment is recorded in
the decision's write-ahead, so the pass that finishes the effects after a kill finds it answered;
that pass posts the Event again under the same name, in case the killed one had not got that far.

A malformed annotation is not a request: it is said once, in a Warning Event and the condition
``InterventionReadable`` (False while it lasts, and gone once the annotation is readable again), so
neither a resync nor a restart repeats the Event.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any

from controllers.api.experiment import ExperimentStatus
from controllers.api.intervention import Action, Intervention, recorded, requested
from controllers.decisions.conditions import Want, holds, merge
from controllers.decisions.experiments.interventions import Ruling
from controllers.reconcile.deps import Dependencies
from controllers.runtime import events
from controllers.runtime.kube import KubeError, without_empty_strings

READABLE = "InterventionReadable"  # condition: False while the annotation cannot be read as a request
ENDING = (Action.PROMOTE, Action.ABORT, Action.APPROVE)  # the actions that can end an experiment


def note_malformed(
    meta: dict[str, Any], status: ExperimentStatus, now: datetime
) -> list[tuple[str, str, str]]:
    """Keep ``InterventionReadable`` in step with the annotation; the Warning Event, when it is new."""
    _, why = requested(meta)
    if not why:
        status.conditions = [c for c in status.conditions if c.type != READABLE]
        return []
    want = Want.false(READABLE, "MalformedRequest", why)
    said = holds(status.conditions, want)
    status.conditions = merge(status.conditions, [want], generation=status.observed_generation, now=now)
    return [] if said else [("Warning", "MalformedIntervention", why)]


def record(status: ExperimentStatus, ruling: Ruling) -> None:
    status.interventions = recorded(status.interventions, ruling.request, ruling.outcome)


def wire(history: list[Intervention]) -> list[dict[str, Any]]:
    """The interventions as a status patch carries them (no empty strings: see without_empty_strings)."""
    return [without_empty_strings(entry.to_wire()) for entry in history]


async def announce(body: dict[str, Any], ruling: Ruling, deps: Dependencies) -> None:
    """The answer's Event, under a name of its own request (best effort, like every Event)."""
    event_type, reason, message = ruling.event
    event = events.event_body(body, event_type, reason, message, deps.clock())
    event["metadata"]["name"] = f"{body['metadata']['name'][:180]}.{ruling.request.id}"
    with contextlib.suppress(KubeError, OSError):
        await deps.kube.ensure(events.EVENTS, event)


async def announce_ending(body: dict[str, Any], status: ExperimentStatus, deps: Dependencies) -> None:
    """Post again (a no-op when it exists) the Event of the request that ended this experiment, if one
    did: called while the decision's effects are being finished, perhaps after a kill."""
    for entry in status.interventions:
        if entry.action in ENDING and not entry.outcome.startswith("declined"):
            await announce(body, Ruling(entry, entry.outcome, honoured=True), deps)
