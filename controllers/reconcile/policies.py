"""LearningPolicy reconcile: keep the store's reward weights in step, count the track's data, start a
TrainingRun when a trigger fires and the cooldown and budget allow, and then mine the track's pairs
with the policy's pair sources (controllers.reconcile.mining) for the next poll to count.

Run names are ``<policy>-<NNNN>``: the number after the highest the policy has ever used (its own
runs and status.lastTrainingRun), so a reconcile repeated after a crash finds the run it just made.
The champion and lineage are written by the Experiment that decides them, never here.

A person's Train request (``kaizen train``) is the train-now trigger whose value is the request's id,
answered with the run it started or why none was (``triggers.answer``); Pause and Resume are the
``spec.paused`` switch the CLI set beside the request, answered with what the switch now does.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from controllers.api import kinds
from controllers.api.common import parse_duration
from controllers.api.intervention import Action, Intervention, pending, recorded
from controllers.api.learningpolicy import BudgetStatus, DataHealth, LearningPolicy, LearningPolicyStatus
from controllers.api.trainingrun import TrainingRun
from controllers.builders.children import Child, Parent, training_run
from controllers.decisions.answers import event
from controllers.decisions.conditions import READY, Want, holds, merge
from controllers.decisions.triggers import RunSeen, TriggerDecision, TriggerFacts, answer, decide
from controllers.reconcile import mining, storage
from controllers.reconcile.deps import Dependencies
from controllers.reconcile.history import prune_history
from controllers.reconcile.outcome import Outcome
from controllers.store.db import transaction
from controllers.store.health import TrackHealth, track_health
from controllers.store.policies import upsert_policy
from controllers.store.review_stats import upsert_review_settings


def run_number(policy: str, name: str) -> int:
    match = re.fullmatch(re.escape(policy) + r"-(\d{4,})", name)
    return int(match.group(1)) if match else 0


def run_seen(body: dict[str, Any]) -> RunSeen:
    status = body.get("status") or {}
    created = datetime.fromisoformat(body["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    completed = status.get("completionTime")
    return RunSeen(
        name=body["metadata"]["name"],
        created=created,
        finished=bool(completed),
        completed=datetime.fromisoformat(completed.replace("Z", "+00:00")) if completed else None,
        gpu_hours=float((status.get("metrics") or {}).get("gpuHours") or 0.0),
        trigger_token=(body["metadata"].get("annotations") or {}).get(kinds.TRIGGER_TOKEN),
    )


def last_watermark(runs: list[dict[str, Any]]) -> datetime | None:
    marks = [
        datetime.fromisoformat(r["status"]["dataset"]["watermark"].replace("Z", "+00:00"))
        for r in runs
        if (r.get("status") or {}).get("dataset")
        and (r["status"].get("conditions") or [])
        and any(c["type"] == "Succeeded" and c["status"] == "True" for c in r["status"]["conditions"])
    ]
    return max(marks, default=None)


@dataclass(frozen=True)
class Window:
    """What the policy counts: its track's trainable data since the last trained-on watermark."""

    policy: LearningPolicy
    namespace: str  # the policy's row in the store is (namespace, name); its data is the namespace's
    name: str
    since: datetime | None
    now: datetime


async def reconcile(
    body: dict[str, Any], policy: LearningPolicy, deps: Dependencies
) -> Outcome[LearningPolicyStatus]:
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    spec = policy.spec
    now = deps.clock()
    out = Outcome.start(policy.status, LearningPolicyStatus(), meta)
    runs = await deps.kube.list(kinds.RUNS, namespace, {kinds.POLICY_LABEL: name})
    window = Window(policy, namespace, name, last_watermark(runs), now)
    health = await asyncio.to_thread(_rewards_and_count, window, deps)
    seen = tuple(run_seen(r) for r in runs)
    request = pending(meta, out.status.interventions)
    train_now = (meta.get("annotations") or {}).get(kinds.TRAIN_NOW)
    if request is not None and request.action == Action.TRAIN:
        train_now = request.id  # the request is the trigger, whatever became of the annotation
    facts = TriggerFacts(health.new_approved_pairs, seen, train_now, spec.paused)
    decision = decide(spec.trigger, facts, now)
    out.status.budget = BudgetStatus(
        gpu_hours_used=round(decision.gpu_hours_used, 4), window_start=decision.window_start
    )
    out.status.next_eligible_time = decision.next_eligible
    want = Want.true(READY, "Watching", decision.message)
    if decision.fire is not None:
        number = max(run_number(name, run) for run in [out.status.last_training_run, *(r.name for r in seen)])
        run = training_run(Parent.of(body), spec, number + 1, decision.fire, train_now)
        want = await _start(run, decision.message, out, deps, now)
        seen += (RunSeen(run.name, now, False, 0.0, (run.annotations or {}).get(kinds.TRIGGER_TOKEN)),)
    if request is not None:
        await _answer(body, request, decision, seen, out, deps)
    # Mining comes last: it reads the track's whole data window, seconds on a busy track, and a
    # trigger (a person's train-now above all) must not wait for it, nor be lost with it when the
    # operator stops mid-way. What it finds counts towards the trigger from the next poll on.
    found, report = await _mine(body, policy, deps)
    if found is not None and any(found.mined.inserted.values()):  # new pairs: the status shows them now
        health = await asyncio.to_thread(_count, window, deps)
    out.events += report.events
    out.status.data = data_health(out.status.data, health, now)
    wants = [want, *report.wants]
    if (unwritable := await storage.check_policy(body, policy, deps)) is not None:
        # Said on the policy before a run needs it; a run started meanwhile waits for the fix.
        wants.append(unwritable)
        if not holds(out.status.conditions, unwritable):
            out.events.append(("Warning", unwritable.reason, unwritable.message))
    out.status.conditions = merge(
        out.status.conditions, wants, generation=out.status.observed_generation, now=now
    )
    out.events += await prune_history(deps.kube, body, policy, runs)
    return out


def forget_deleted(deps: Dependencies, live: set[str]) -> None:
    """Drop what the operator remembers about policies that no longer exist."""
    mining.forget_deleted(deps, live)
    storage.forget_deleted(deps, live)


def _count(window: Window, deps: Dependencies) -> TrackHealth:
    spec = window.policy.spec
    track = spec.track
    with transaction(deps.factory) as session:
        return track_health(
            session, agent=track.agent, role=track.role, task_family=track.task_family,
            require_review=spec.data.require_review, since=window.since,
            sources=mining.trainable_sources(spec.pair_sources),
            window_start=window.now - parse_duration(spec.data.max_age), namespace=window.namespace,
        )  # fmt: skip


def _rewards_and_count(window: Window, deps: Dependencies) -> TrackHealth:
    """Store the policy's reward weights, then count: the counts (and mining, later) read them."""
    spec = window.policy.spec
    track = spec.track
    with transaction(deps.factory) as session:
        upsert_policy(
            session, window.namespace, window.name, track.agent or "", track.role or "", track.task_family or "",
            spec.reward.to_wire(),
        )  # fmt: skip
        upsert_review_settings(
            session, window.namespace, window.name, spec.review.reviewers_per_item, spec.review.guidelines, window.now,
        )  # fmt: skip
    return _count(window, deps)


async def _start(
    run: Child[TrainingRun], why: str, out: Outcome[LearningPolicyStatus], deps: Dependencies, now: datetime
) -> Want:
    """Create the run (or find the one an interrupted pass created) and record it in the status."""
    _, created = await deps.kube.ensure(kinds.RUNS, run.to_wire())
    out.status.last_training_run = run.name
    out.status.last_training_time = now
    if created:
        out.events.append(("Normal", "TrainingRunCreated", f"{run.name}: {why}"))
    return Want.true(READY, "Training", f"started {run.name}: {why}")


async def _answer(
    body: dict[str, Any],
    request: Intervention,
    decision: TriggerDecision,
    seen: tuple[RunSeen, ...],
    out: Outcome[LearningPolicyStatus],
    deps: Dependencies,
) -> None:
    """Record the answer to a person's request. A Train's train-now value is taken away first, started
    or declined: a declined request must not start a run later, when the budget frees up."""
    meta = body["metadata"]
    started = next((r.name for r in seen if r.trigger_token == request.id), "")
    outcome = answer(request, decision, started, body["spec"].get("paused", False))
    if (meta.get("annotations") or {}).get(kinds.TRAIN_NOW) == request.id:
        cleared = {"metadata": {"annotations": {kinds.TRAIN_NOW: None}}}
        await deps.kube.patch(kinds.POLICIES, meta["namespace"], meta["name"], cleared)
    out.status.interventions = recorded(out.status.interventions, request, outcome)
    out.events.append(event(request, outcome))


async def _mine(
    body: dict[str, Any], policy: LearningPolicy, deps: Dependencies
) -> tuple[mining.Found | None, mining.Report]:
    """Mine the track's pairs when its activity or the mining settings moved since the last time."""
    memory = mining.memory_of(body, deps)
    found = None
    namespace, name = body["metadata"]["namespace"], body["metadata"]["name"]
    if (mark := await asyncio.to_thread(mining.new_mark, policy, namespace, memory, deps)) is not None:
        # One mining at a time: it is CPU-bound Python, so minings side by side only share one core
        # and starve the event loop (every other reconcile) of the interpreter while they last.
        async with deps.mining_gate:
            found = await asyncio.to_thread(mining.mine, policy, (namespace, name), mark, memory, deps)
    report = await mining.finish(found, policy, body["metadata"]["namespace"], memory, deps)
    return found, report


def data_health(before: DataHealth | None, health: TrackHealth, now: datetime) -> DataHealth:
    """The policy's data counts; observedAt moves only when the counts do: a status rewritten on
    every poll of every policy would load the API server (and every watcher) for nothing."""
    data = DataHealth(
        runs=health.runs,
        approved_pairs=health.approved_pairs,
        new_approved_pairs=health.new_approved_pairs,
        pending_review=health.pending_review,
        pairs_by_source=health.pairs_by_source,
        scrubbed_values=(before.scrubbed_values if before else 0),
    )
    unchanged = before is not None and before.model_copy(update={"observed_at": None}) == data
    data.observed_at = before.observed_at if unchanged and before else now
    return data
