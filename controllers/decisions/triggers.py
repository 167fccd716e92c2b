"""When a LearningPolicy starts a TrainingRun, and how it answers a person's request. Pure.

Any trigger fires (enough new approved pairs, the cron schedule with new pairs waiting, or a person's
``kaizen.dev/train-now`` annotation with a value not used before); the GPU-hour budget can hold it
back, the cooldown only the automatic triggers (a person asking is the reason to train now); pausing
the policy and a run still in progress always do (one run per track at a time, including a finished
run that a person's Retry set going again).

The budget counts the GPU-hours of runs active in its window, created or finished in it: a run retried
a week after its creation spends its hours now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from controllers.api.common import parse_duration
from controllers.api.intervention import Action, Intervention
from controllers.api.learningpolicy import TriggerSettings
from controllers.api.trainingrun import TriggerReason
from controllers.decisions.answers import declined, not_applicable


@dataclass(frozen=True)
class RunSeen:
    """One of the policy's TrainingRuns, as far as triggering cares."""

    name: str
    created: datetime
    finished: bool
    gpu_hours: float
    trigger_token: str | None
    completed: datetime | None = None  # when it finished (a retried run finishes again)

    def active_since(self, start: datetime) -> bool:
        return self.created >= start or (self.completed is not None and self.completed >= start)


@dataclass(frozen=True)
class TriggerFacts:
    new_pairs: int
    runs: tuple[RunSeen, ...]
    train_now: str | None  # the annotation's current value
    paused: bool


@dataclass(frozen=True)
class TriggerDecision:
    fire: TriggerReason | None
    message: str  # why it fired, or what holds it back
    next_eligible: datetime | None
    gpu_hours_used: float
    window_start: datetime


def previous_cron_fire(schedule: str, now: datetime) -> datetime | None:
    """The latest minute at or before ``now`` that matches the five-field UTC cron ``schedule``
    (searched back up to 8 days; None if it never matches in that span)."""
    fields = schedule.split()
    minute = now.replace(second=0, microsecond=0)
    for _ in range(8 * 24 * 60):
        if _matches(fields, minute):
            return minute
        minute -= timedelta(minutes=1)
    return None


def _matches(fields: list[str], moment: datetime) -> bool:
    values = (moment.minute, moment.hour, moment.day, moment.month, (moment.weekday() + 1) % 7)
    return all(_field(spec, value) for spec, value in zip(fields, values, strict=True))


def _field(spec: str, value: int) -> bool:
    for part in spec.split(","):
        body, _, step_text = part.partition("/")
        step = int(step_text) if step_text else 1
        if body == "*":
            low, high = 0, 10_000
        elif "-" in body:
            low, high = (int(x) for x in body.split("-"))
        else:
            low = high = int(body)
        if low <= value <= high and (value - low) % step == 0:
            return True
    return False


def decide(trigger: TriggerSettings, facts: TriggerFacts, now: datetime) -> TriggerDecision:
    window = parse_duration(trigger.budget.window)
    window_start = now - window
    used = sum(r.gpu_hours for r in facts.runs if r.active_since(window_start))
    # Reported to the hour: a start that moved on every poll (or every minute) would rewrite every
    # policy's status as often, and wake every watcher of policies, for nothing a reader needs.
    reported_start = window_start.replace(minute=0, second=0, microsecond=0)
    latest = max(facts.runs, key=lambda r: r.created, default=None)
    cooldown_end = latest.created + parse_duration(trigger.cooldown) if latest else None

    def hold(message: str, eligible: datetime | None) -> TriggerDecision:
        return TriggerDecision(None, message, eligible, used, reported_start)

    if facts.paused:
        return hold("paused: no new TrainingRuns until spec.paused is false", None)
    if (going := next((r for r in facts.runs if not r.finished), None)) is not None:
        return hold(f"TrainingRun {going.name} is still in progress", None)
    used_tokens = {r.trigger_token for r in facts.runs}
    reason: TriggerReason | None = None
    if facts.train_now and facts.train_now not in used_tokens:
        reason = TriggerReason.MANUAL
    elif facts.new_pairs >= trigger.min_new_pairs:
        reason = TriggerReason.THRESHOLD
    elif trigger.schedule and facts.new_pairs > 0:
        fired = previous_cron_fire(trigger.schedule, now)
        if fired is not None and (latest is None or latest.created < fired):
            reason = TriggerReason.SCHEDULE
    if reason is None:
        return hold(
            f"waiting for data: {facts.new_pairs}/{trigger.min_new_pairs} new approved pairs", cooldown_end
        )
    if cooldown_end is not None and now < cooldown_end and reason != TriggerReason.MANUAL:
        return hold(
            f"{reason.value} trigger held by the cooldown until {cooldown_end:%Y-%m-%d %H:%M:%S}Z",
            cooldown_end,
        )
    if used >= trigger.budget.gpu_hours:
        active = [
            max(r.created, r.completed or r.created) for r in facts.runs if r.active_since(window_start)
        ]
        oldest = min(active, default=now)
        return hold(
            f"{reason.value} trigger held: GPU budget used ({used:.2f} of {trigger.budget.gpu_hours} GPU-hours"
            f" per {trigger.budget.window})",
            oldest + window,
        )
    return TriggerDecision(
        reason, f"{reason.value}: {facts.new_pairs} new approved pairs", now, used, reported_start
    )


def answer(request: Intervention, decision: TriggerDecision, started: str, paused: bool) -> str:
    """The outcome of a person's request on a policy. ``started``: the run the request's train-now
    value started (this pass or an earlier one cut short), "" when none."""
    if request.action == Action.TRAIN:
        return f"started TrainingRun {started}" if started else declined(decision.message)
    if request.action == Action.PAUSE:
        return "no new TrainingRuns until resumed" if paused else declined("spec.paused is false; not paused")
    if request.action == Action.RESUME:
        return "resumed" if not paused else declined("spec.paused is still true; still paused")
    return not_applicable(request, "LearningPolicy")
