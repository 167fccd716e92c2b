"""LearningPolicy reconcile: keep the store's reward weights in step, count the track's data, start a
TrainingRun when a trigger fires and the cooldown and budget allow, and then mine the track's pairs
with the policy's pair sources (controllers.reconcile.mining) for the next poll to count.

Run names are ``<policy>-<NNNN>``: the number after the highest the policy has ever used (its own
runs and status.lastTrainingRun), so a reconcile repeated after a crash finds the run it just made.
The champion and lineage are written by the Experiment that decides them, never here.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controllers.api import kinds
from controllers.api.common import parse_duration
from controllers.api.learningpolicy import BudgetStatus, DataHealth, LearningPolicy, LearningPolicyStatus
from controllers.decisions.conditions import READY, Want, merge
from controllers.decisions.triggers import RunSeen, TriggerFacts, decide
from controllers.reconcile import mining
from controllers.reconcile.deps import Dependencies
from controllers.store.db import transaction
from controllers.store.health import TrackHealth, track_health
from controllers.store.ingest import upsert_policy

MAX_RUN_NAME = 63


@dataclass
class Outcome:
    status: LearningPolicyStatus
    events: list[tuple[str, str, str]] = field(default_factory=list)


def run_number(policy: str, name: str) -> int:
    match = re.fullmatch(re.escape(policy) + r"-(\d{4,})", name)
    return int(match.group(1)) if match else 0


def run_seen(body: dict[str, Any]) -> RunSeen:
    status = body.get("status") or {}
    created = datetime.fromisoformat(body["metadata"]["creationTimestamp"].replace("Z", "+00:00"))
    return RunSeen(
        name=body["metadata"]["name"],
        created=created,
        finished=bool(status.get("completionTime")),
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


async def reconcile(body: dict[str, Any], policy: LearningPolicy, deps: Dependencies) -> Outcome:
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    spec = policy.spec
    now = deps.clock()
    out = Outcome((policy.status or LearningPolicyStatus()).model_copy(deep=True))
    out.status.observed_generation = meta.get("generation", 0)
    runs = await deps.kube.list(kinds.RUNS, namespace, {kinds.POLICY_LABEL: name})
    track = spec.track
    since = last_watermark(runs)

    memory = mining.memory_of(body, deps)
    store_key = f"{namespace}.{name}"  # the policy's row in the store

    def count() -> TrackHealth:
        with transaction(deps.factory) as session:
            return track_health(
                session, agent=track.agent, role=track.role, task_family=track.task_family,
                require_review=spec.data.require_review, since=since,
                sources=mining.trainable_sources(spec.pair_sources),
                window_start=now - parse_duration(spec.data.max_age),
            )  # fmt: skip

    def rewards_and_count() -> TrackHealth:
        # Rewards first: the counts (and mining, later) read them.
        with transaction(deps.factory) as session:
            upsert_policy(
                session,
                store_key,
                track.agent or "",
                track.role or "",
                track.task_family or "",
                spec.reward.to_wire(),
            )
        return count()

    health = await asyncio.to_thread(rewards_and_count)
    seen = tuple(run_seen(r) for r in runs)
    train_now = (meta.get("annotations") or {}).get(kinds.TRAIN_NOW)
    decision = decide(
        spec.trigger, TriggerFacts(health.new_approved_pairs, seen, train_now, spec.paused), now
    )
    out.status.budget = BudgetStatus(
        gpu_hours_used=round(decision.gpu_hours_used, 4), window_start=decision.window_start
    )
    out.status.next_eligible_time = decision.next_eligible
    wants = [Want.true(READY, "Watching", decision.message)]
    if decision.fire is not None:
        number = (
            max([run_number(name, r.name) for r in seen] + [run_number(name, out.status.last_training_run)])
            + 1
        )
        run_name = f"{name}-{number:04d}"
        run = {
            "apiVersion": kinds.API_VERSION,
            "kind": "TrainingRun",
            "metadata": {
                "name": run_name,
                "namespace": namespace,
                "labels": {kinds.POLICY_LABEL: name, **kinds.MANAGED_BY},
                "annotations": {kinds.TRIGGER_TOKEN: train_now}
                if decision.fire.value == "Manual" and train_now
                else {},
                "ownerReferences": [kinds.owner(body)],
            },
            "spec": {
                "policyRef": name,
                "trigger": decision.fire.value,
                "training": spec.training.to_wire(),
                "data": spec.data.to_wire(),
                "gate": spec.gate.to_wire(),
            },
        }
        _, created = await deps.kube.ensure(kinds.RUNS, run)
        out.status.last_training_run = run_name
        out.status.last_training_time = now
        if created:
            out.events.append(("Normal", "TrainingRunCreated", f"{run_name}: {decision.message}"))
        wants = [Want.true(READY, "Training", f"started {run_name}: {decision.message}")]
    # Mining comes last: it reads the track's whole data window, seconds on a busy track, and a
    # trigger (a person's train-now above all) must not wait for it, nor be lost with it when the
    # operator stops mid-way. What it finds counts towards the trigger from the next poll on.
    found = None
    if (mark := await asyncio.to_thread(mining.new_mark, policy, memory, deps)) is not None:
        # One mining at a time: it is CPU-bound Python, so minings side by side only share one core
        # and starve the event loop (every other reconcile) of the interpreter while they last.
        async with deps.mining_gate:
            found = await asyncio.to_thread(mining.mine, policy, store_key, mark, memory, deps)
    report = await mining.finish(found, policy, namespace, memory, deps)
    if found is not None and any(found.mined.inserted.values()):  # new pairs: the status shows them now
        health = await asyncio.to_thread(count)
    out.events += report.events
    out.status.data = data_health(out.status.data, health, now)
    out.status.conditions = merge(
        out.status.conditions, [*wants, *report.wants], generation=out.status.observed_generation, now=now
    )
    return out


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
