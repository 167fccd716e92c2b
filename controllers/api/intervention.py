"""A person's intervention on a Kaizen object, and how the operator records having honoured it.

The on-call CLI (``kaizen promote|abort|approve|pause|resume|retry|train``) writes one request into the
``kaizen.dev/intervention`` annotation: an id, the action, who asked, when and why. The operator acts on a
request whose id it has not recorded yet, then appends the request, with what it did, to the object's
``status.interventions`` and emits an Event. The id makes every intervention idempotent: an operator
killed after acting and before recording acts again on an outcome that is already reached (a promotion
that holds, a job that exists under its deterministic name), and one killed after recording never acts
twice.

Why an annotation and not a spec field: a spec is what Git holds under Argo CD, and a one-off action
must not be reverted on the next sync nor replayed by it. ``spec.paused`` stays the switch itself; the
CLI's ``pause``/``resume`` set it and record the request beside it.
"""

from __future__ import annotations

import json
from datetime import datetime
from enum import StrEnum
from typing import Any

from pydantic import Field, ValidationError

from controllers.api.common import KaizenModel

ANNOTATION = "kaizen.dev/intervention"
HISTORY = 10  # interventions a status keeps, newest last
ID_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class Action(StrEnum):
    PROMOTE = "Promote"  # Experiment: make the challenger champion now, whatever the evidence
    ABORT = "Abort"  # Experiment: roll the challenger back now (0 % traffic)
    APPROVE = "Approve"  # Experiment: let a promotion that waits on a person go ahead
    PAUSE = "Pause"  # LearningPolicy or Experiment: spec.paused set to true
    RESUME = "Resume"  # LearningPolicy or Experiment: spec.paused set to false
    RETRY = "Retry"  # TrainingRun: one more attempt of a failed run
    TRAIN = "Train"  # LearningPolicy: start one TrainingRun now (the train-now trigger)


class Intervention(KaizenModel):
    """One request, as the CLI wrote it and as the status records it (with ``outcome`` filled in)."""

    id: str = Field(min_length=1, max_length=63, pattern=ID_PATTERN, description="Unique per request.")
    action: Action = Field(
        description="What was asked: Promote, Abort, Approve, Pause, Resume, Retry or Train."
    )
    by: str = Field(default="", max_length=253, description="Who asked (the CLI's Kubernetes user).")
    at: datetime = Field(description="When it was asked.")
    reason: str = Field(default="", max_length=512, description="Why, in the asker's words (--reason).")
    outcome: str = Field(
        default="", max_length=300, description="What the operator did, or why it did nothing."
    )


def interventions_field() -> Any:
    return Field(
        default_factory=list,
        max_length=HISTORY,
        description="Interventions by people the operator has honoured (or declined), oldest first.",
    )


def requested(meta: dict[str, Any]) -> tuple[Intervention | None, str]:
    """The request in the object's annotation, or None with why it cannot be read ("" when absent)."""
    raw = (meta.get("annotations") or {}).get(ANNOTATION)
    if not raw:
        return None, ""
    try:
        return Intervention.model_validate(json.loads(raw)), ""
    except (ValueError, ValidationError) as bad:
        first = bad.errors()[0]["msg"] if isinstance(bad, ValidationError) else str(bad)
        return None, f"annotation {ANNOTATION} is not a valid request ({first}); write it with the kaizen CLI"


def pending(meta: dict[str, Any], history: list[Intervention]) -> Intervention | None:
    """The request not yet recorded in ``history``, if any."""
    request, _ = requested(meta)
    if request is None or any(done.id == request.id for done in history):
        return None
    return request


def recorded(history: list[Intervention], request: Intervention, outcome: str) -> list[Intervention]:
    """``history`` with ``request`` appended (with its outcome), the oldest dropped past HISTORY."""
    done = request.model_copy(update={"outcome": outcome[:300]})
    kept = [entry for entry in history if entry.id != request.id]
    return [*kept, done][-HISTORY:]


def annotation_value(request: Intervention) -> str:
    return json.dumps(request.to_wire(), separators=(",", ":"), sort_keys=True)
