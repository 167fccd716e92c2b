"""Experiment reconcile: read the traffic's statistics from the store, ask the planner, set the router's
weights, and carry out a final decision on the ShadowModels and the policy.

The route is pushed before the status is written, so the moment an Experiment says RollBack the router
already serves the champion alone. The effects of a final decision (roles, champion, lineage, the
route) are re-applied on every reconcile until they hold, so a crash between any two of them is
finished by the next pass. After a promotion the experiment keeps watching its champion for drift
while it still owns the track (``controllers.reconcile.drift``).

A person's request (``kaizen promote|abort|approve|pause|resume``) is answered by the pure rules of
``controllers.decisions.experiments.interventions``: Promote, Abort and an approved promotion replace
the planner's plan with a final one and go the same way as any decision (the write-ahead carries the
answer too, so a kill after it neither acts twice nor loses the record); the rest are only recorded.
Recording and the Event are in ``controllers.reconcile.experiment_requests``.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

from controllers.api import kinds
from controllers.api.common import created_at
from controllers.api.experiment import (
    DECISION_APPLIED,
    Decision,
    Experiment,
    ExperimentStatus,
    Strategy,
    VariantRole,
    challenger_weight,
)
from controllers.api.intervention import pending
from controllers.api.routes import experiment_key
from controllers.api.shadowmodel import Role
from controllers.decisions.conditions import READY, Want, holds, is_true, merge
from controllers.decisions.experiments.evidence import ExperimentPlan
from controllers.decisions.experiments.interventions import Ruling, rule, settled, unroutable
from controllers.decisions.experiments.observations import Traffic
from controllers.decisions.experiments.references import blocked, give_up, give_up_at
from controllers.decisions.experiments.rollout import plan
from controllers.reconcile import drift
from controllers.reconcile.decision_effects import apply_decision
from controllers.reconcile.deps import Dependencies
from controllers.reconcile.effects import Lookup, endpoints, route_config, set_role
from controllers.reconcile.experiment_requests import announce, announce_ending, note_malformed, record, wire
from controllers.reconcile.outcome import Outcome
from controllers.store.db import transaction
from controllers.store.experiment_traffic import traffic

__all__ = ["DECISION_APPLIED", "experiment_key", "reconcile"]

FINAL = (Decision.PROMOTE, Decision.ROLL_BACK, Decision.INCONCLUSIVE)


async def reconcile(body: dict[str, Any], exp: Experiment, deps: Dependencies) -> Outcome[ExperimentStatus]:
    meta = body["metadata"]
    namespace, name, now, previous = meta["namespace"], meta["name"], deps.clock(), exp.status
    out = Outcome.start(previous, ExperimentStatus(), meta)
    out.events += note_malformed(meta, out.status, now)
    request = pending(meta, out.status.interventions)  # a person's, not yet answered
    finishing = previous is not None and previous.decision in FINAL
    if finishing and previous is not None and is_true(previous.conditions, DECISION_APPLIED):
        if request is not None:
            await _answer(body, out.status, settled(request, previous), deps)  # the decision stands
        await _settled(body, exp, previous, out, deps, now)
        return out
    lookup = await endpoints(namespace, exp.spec, deps, running=not finishing)
    if lookup.blocked and not finishing and request is None:
        await _blocked(body, exp, lookup, out, deps, now)
        return out
    seen = await asyncio.to_thread(_traffic, deps, experiment_key(namespace, name))
    decided = plan(exp.spec, previous, seen, now)
    ruling = None if request is None else rule(request, exp.spec, previous, seen, now, decided)
    if ruling is not None:
        ruling = await _answer(body, out.status, ruling, deps, lookup)
        decided = ruling.forced or decided
    forced = ruling is not None and ruling.forced is not None
    if lookup.blocked and not finishing and not forced:
        await _blocked(body, exp, lookup, out, deps, now)
        return out
    if (stuck := _stuck(lookup, decided)) is not None:
        _set(out.status, [stuck], now)
        return out
    status = out.status
    newly_final = decided.final and not finishing
    status.decision, status.decision_reason, status.step = (
        decided.decision,
        decided.reason[:1024],
        decided.step,
    )
    status.variants, status.sample_ratio = decided.variants, decided.sample_ratio
    status.challenger_weight = challenger_weight(exp.spec, status.variants)
    status.started_at = decided.started_at
    if newly_final:
        await _write_ahead(namespace, name, status, now, deps)
        if ruling is not None and forced:  # its Event says who decided, and why
            await announce(body, ruling, deps)
        else:
            out.events.append((_kind(decided), decided.decision.value, decided.reason))
    elif finishing:  # a decision stored by a pass that may have died before announcing its request
        await announce_ending(body, status, deps)
    await _route(body, exp, lookup, decided, deps)
    if newly_final and decided.decision == Decision.ROLL_BACK:
        deps.metrics.rollback_seconds.observe((deps.clock() - now).total_seconds())
    wants = []
    if decided.final:
        await apply_decision(body, exp, status, deps)
        done = f"route, roles and champion updated for {decided.decision.value}"
        wants.append(Want.true(DECISION_APPLIED, "Applied", done))
    wants.append(_ready(decided))
    _set(status, wants, now)
    return out


async def _answer(
    body: dict[str, Any],
    status: ExperimentStatus,
    ruling: Ruling,
    deps: Dependencies,
    lookup: Lookup | None = None,
) -> Ruling:
    """Record the answer to a request; announce it now unless it ends the experiment (that one is
    announced once its decision is stored). An ending the models cannot carry out yet is declined."""
    if ruling.forced is not None and lookup is not None and (stuck := _stuck(lookup, ruling.forced)):
        ruling = unroutable(ruling, stuck.message)
    record(status, ruling)
    if ruling.forced is None:
        await announce(body, ruling, deps)
    return ruling


async def _route(
    body: dict[str, Any], exp: Experiment, lookup: Lookup, decided: ExperimentPlan, deps: Dependencies
) -> None:
    # After a promotion the drift watch reads the champion's traffic under this experiment's key.
    attributed = not decided.final or decided.decision == Decision.PROMOTE
    route = route_config(body, exp, lookup.found, decided.weights, attributed=attributed)
    if route is not None:  # None: a loser's deployment is gone, taken down after this route was pushed
        await deps.router.put(route)


def _kind(decided: ExperimentPlan) -> str:
    return "Warning" if decided.decision == Decision.ROLL_BACK else "Normal"


def _set(status: ExperimentStatus, wants: list[Want], now: datetime) -> None:
    status.conditions = merge(status.conditions, wants, generation=status.observed_generation, now=now)


def _stuck(lookup: Lookup, decided: ExperimentPlan) -> Want | None:
    """Why a decision cannot be carried out yet: a variant it sends traffic to has no endpoint."""
    needed = [name for name, weight in decided.weights.items() if weight > 0 and name not in lookup.found]
    if not needed:
        return None
    said = f"{decided.decision.value} decided, but variant {', '.join(needed)} cannot be routed"
    missing = [u for u in lookup.unresolved if u.variant in needed]
    if missing:
        return Want.false(READY, missing[0].reason, f"{said}: {missing[0].message}. Create it again")
    return Want.unknown(READY, "WaitingForModels", f"{said} yet: {lookup.waiting}")


async def _blocked(
    body: dict[str, Any], exp: Experiment, lookup: Lookup, out: Outcome[ExperimentStatus], deps: Dependencies,
    now: datetime,
) -> None:  # fmt: skip
    """A model is not serving yet (wait), or will not serve unless a person acts (say so, once, and
    give up at the deadline: ``controllers.decisions.experiments.references``)."""
    status = out.status
    if not lookup.unresolved:
        _set(status, [Want.unknown(READY, "WaitingForModels", lookup.waiting)], now)
        return
    due = give_up_at(exp.spec, status.started_at, created_at(body["metadata"], now), lookup.unresolved)
    if now >= due:
        await _give_up(body, exp, lookup, out, deps, now)
        return
    want = blocked(lookup.unresolved, due)
    if not holds(status.conditions, want):  # one Event, not one per reconcile
        out.events.append(("Warning", want.reason, want.message))
    _set(status, [want], now)


async def _give_up(
    body: dict[str, Any], exp: Experiment, lookup: Lookup, out: Outcome[ExperimentStatus], deps: Dependencies,
    now: datetime,
) -> None:  # fmt: skip
    """Inconclusive, traffic on the champion when it serves; the challengers that exist are retired.
    Every step repeats safely, so a pass that dies half-way is finished by the next one."""
    meta, status = body["metadata"], out.status
    end = give_up(exp.spec, status, lookup.unresolved, set(lookup.found))
    status.decision, status.decision_reason, status.decided_at = Decision.INCONCLUSIVE, end.reason, now
    status.variants = end.rows
    status.challenger_weight = challenger_weight(exp.spec, end.rows)
    route = route_config(body, exp, lookup.found, end.weights, attributed=False) if end.weights else None
    if route is not None:
        await deps.router.put(route)
    unresolved = {u.variant for u in lookup.unresolved}
    for variant in exp.spec.variants:
        if variant.role == VariantRole.CHALLENGER and variant.shadow_model and variant.name not in unresolved:
            await set_role(meta["namespace"], variant.shadow_model, Role.RETIRED, end.reason, deps)
    deps.metrics.decisions.labels(meta["name"], Decision.INCONCLUSIVE.value).inc()
    routed = "traffic on the champion" if route is not None else "nothing routed"
    _set(status, [Want.true(DECISION_APPLIED, "Applied", f"gave up: {routed}"), end.ready], now)
    out.events.append(("Warning", Decision.INCONCLUSIVE.value, end.reason))


async def _settled(
    body: dict[str, Any],
    exp: Experiment,
    previous: ExperimentStatus,
    out: Outcome[ExperimentStatus],
    deps: Dependencies,
    now: datetime,
) -> None:
    """The decision and its effects are recorded. The track's route and the models' roles now belong
    to later experiments, and the figures the decision was made on stay as they were (the Event, the
    status and the report show the same numbers), so this one only watches the new champion after a
    promotion, until the track moves on."""
    out.status.challenger_weight = challenger_weight(exp.spec, out.status.variants)
    if previous.decision == Decision.PROMOTE and exp.spec.strategy == Strategy.AB_TEST:
        out.events += await drift.watch(body, exp, out.status, deps)


async def _write_ahead(
    namespace: str, name: str, status: ExperimentStatus, now: datetime, deps: Dependencies
) -> None:
    """Store a new final decision before anything acts on it.

    A reconcile killed after this point finds the decision sticky and finishes the same effects; one
    killed before it decides again from the evidence, with nothing yet done. The decision's weights go
    with it: the pass that finishes the effects routes by the weights the status holds, and the last
    step's split (say 50/50) would keep sending a rolled-back challenger traffic for good."""
    status.decided_at = now
    await deps.kube.patch_status(
        kinds.EXPERIMENTS, namespace, name,
        {"decision": status.decision.value, "decisionReason": status.decision_reason,
         "decidedAt": now.isoformat(), "step": status.step, "challengerWeight": status.challenger_weight,
         "variants": [row.to_wire() for row in status.variants],
         "interventions": wire(status.interventions)},
    )  # fmt: skip
    deps.metrics.decisions.labels(name, status.decision.value).inc()


def _ready(decided: ExperimentPlan) -> Want:
    """A decided experiment has done its job (True); one still collecting evidence is Unknown; only a
    blocked one (assignment broken) needs a person (False)."""
    if decided.final:
        return Want.true(READY, decided.condition_reason, decided.reason)
    if decided.condition_reason == "SampleRatioMismatch":
        return Want.false(READY, decided.condition_reason, decided.reason)
    return Want.unknown(READY, decided.condition_reason, decided.reason)


def _traffic(deps: Dependencies, key: str) -> Traffic:
    with transaction(deps.factory) as session:
        return traffic(session, key)
