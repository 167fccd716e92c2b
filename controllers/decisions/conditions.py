"""Conditions the Kubernetes way: one per type, lastTransitionTime kept while the status holds.

Pure functions over the API's Condition model, shared by every planner. A planner says what each
condition should be now; ``merge`` keeps the old transition time when nothing but the message or the
generation changed, so a status patch that repeats itself is a no-op and ``kubectl describe`` shows when
things really changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from controllers.api.common import Condition, ConditionStatus
from controllers.api.kindinfo import READY as READY


@dataclass(frozen=True)
class Want:
    """A condition as a planner wants it; time and generation are filled in by ``merge``."""

    type: str
    status: ConditionStatus
    reason: str
    message: str = ""

    @classmethod
    def true(cls, type_: str, reason: str, message: str = "") -> Want:
        return cls(type_, ConditionStatus.TRUE, reason, message)

    @classmethod
    def false(cls, type_: str, reason: str, message: str = "") -> Want:
        return cls(type_, ConditionStatus.FALSE, reason, message)

    @classmethod
    def unknown(cls, type_: str, reason: str, message: str = "") -> Want:
        return cls(type_, ConditionStatus.UNKNOWN, reason, message)


def merge(
    current: Iterable[Condition], wanted: Iterable[Want], *, generation: int, now: datetime
) -> list[Condition]:
    """The new condition list: wanted types replaced or added, other types kept, Ready first.

    When ``wanted`` names a type twice the last one wins, compared with ``current``: a step's
    "Ready Unknown" followed by what stopped it ("Ready False") is one state, not two transitions
    (else lastTransitionTime moved on every reconcile, and with it a status write)."""
    by_type = {c.type: c for c in current}
    last_word = {want.type: want for want in wanted}
    for want in last_word.values():
        old = by_type.get(want.type)
        transitioned = old is None or old.status != want.status
        by_type[want.type] = Condition(
            type=want.type,
            status=want.status,
            reason=want.reason,
            message=want.message[:4096],
            last_transition_time=now if transitioned or old is None else old.last_transition_time,
            observed_generation=generation,
        )
    return sorted(by_type.values(), key=lambda c: (c.type != READY, c.type))


def find(conditions: Iterable[Condition], type_: str) -> Condition | None:
    return next((c for c in conditions if c.type == type_), None)


def is_true(conditions: Iterable[Condition], type_: str) -> bool:
    condition = find(conditions, type_)
    return condition is not None and condition.status == ConditionStatus.TRUE


def holds(conditions: Iterable[Condition], want: Want) -> bool:
    """Whether the conditions already say what ``want`` says (same status, reason and message)."""
    condition = find(conditions, want.type)
    return condition is not None and (condition.status, condition.reason, condition.message) == (
        want.status,
        want.reason,
        want.message[:4096],
    )
