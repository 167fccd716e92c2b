"""The drift watch of a promoting Experiment: the I/O around ``controllers.decisions.experiments.drift_watch``.

On every reconcile of a settled A/B Promote whose Drift condition is not final:

1. unless already rolling back: is the track still this experiment's (the stored route feeds it, no
   later experiment of the policy exists, its challenger is still the policy's champion)? If not,
   say why and stop for good. Otherwise read the champion's two windows and judge them.
2. on a regression, write-ahead: Drift True/RollingBack, with the check's sentence, is patched onto
   the status before anything acts on it. A reconcile killed after that finds it and finishes the
   same rollback; one killed before it judges again from the evidence, with nothing done yet.
3. the rollback, re-applied on every reconcile until it all holds, in an order that never leaves
   the track without a serving model: the previous champion serves (a retired ShadowModel is put
   back in service and the promoted model keeps the traffic until it is Ready again); the route
   sends it everything; the promoted ShadowModel becomes RolledBack with its evidence; the
   policy's champion goes back to the previous one (none for the plain base model).
4. then Drift True/Regressed, the Warning Event ``DriftRollback`` and the metric: after the effects,
   so that a kill before the status is written repeats them rather than losing them.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from functools import partial
from typing import Any

from controllers.api import kinds
from controllers.api.experiment import (
    DRIFT,
    Experiment,
    ExperimentStatus,
    Variant,
    VariantRole,
    challenger_weight,
)
from controllers.api.experiment import FINAL_DRIFT_STAGES as FINAL_STAGES
from controllers.api.experiment import DriftStage as Stage
from controllers.api.learningpolicy import LineageEntry
from controllers.api.routes import experiment_key
from controllers.api.shadowmodel import Role
from controllers.builders.lineage import champion_patch, restored
from controllers.decisions.conditions import Want, find, merge
from controllers.decisions.experiments.drift_watch import (
    DriftStep,
    DriftWindows,
    judge,
    rollback_evidence,
    stage_of,
    stop_reason,
    window_size,
)
from controllers.reconcile.deps import Dependencies
from controllers.reconcile.effects import (
    endpoints,
    route_config,
    route_name,
    serving,
    set_role,
)
from controllers.store.db import transaction
from controllers.store.drift import drift_windows
from controllers.store.experiments import get_route

Events = list[tuple[str, str, str]]


async def watch(
    body: dict[str, Any], exp: Experiment, status: ExperimentStatus, deps: Dependencies
) -> Events:
    """Advance the watch one step, recording it in ``status``; returns the Events to post."""
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    key = experiment_key(namespace, name)
    condition = find(status.conditions, DRIFT)
    stage = stage_of(condition)
    if stage in FINAL_STAGES or status.decided_at is None:
        return []
    champion, challenger = _variant(exp, VariantRole.CHAMPION), _variant(exp, VariantRole.CHALLENGER)
    read = partial(_windows, deps, key, challenger.name, status.decided_at, window_size(exp.spec.rollout))
    if stage == Stage.ROLLING_BACK:
        assert condition is not None
        reason, windows = condition.message, await asyncio.to_thread(read)
    else:
        stop = stop_reason(
            key,
            await asyncio.to_thread(_route_owner, deps, namespace, route_name(body, exp.spec)),
            await _successor(body, exp, deps),
            await _champion(namespace, exp.spec.policy_ref, deps),
            challenger.shadow_model,
            route=route_name(body, exp.spec),
            policy=exp.spec.policy_ref,
        )
        if stop is not None:
            _record(status, stop, deps.clock())
            return []
        windows = await asyncio.to_thread(read)
        step = judge(windows, exp.spec.rollout, challenger.shadow_model or challenger.name)
        _record(status, step, deps.clock())
        if step.stage != Stage.ROLLING_BACK:
            return []
        # Write-ahead: the regression is on record before anything acts on it.
        conditions = [{k: v for k, v in c.to_wire().items() if v != ""} for c in status.conditions]
        await deps.kube.patch_status(kinds.EXPERIMENTS, namespace, name, {"conditions": conditions})
        reason = step.message
    if not await _roll_back(body, exp, status, deps, reason, windows):
        return []  # the previous champion is not serving again yet; the promoted model keeps the traffic
    said = f"rolled back to {_describe(champion)}: {reason}"
    _record(status, DriftStep(Stage.REGRESSED, said), deps.clock())
    deps.metrics.drift_rollbacks.labels(name).inc()
    return [("Warning", "DriftRollback", said)]


def _variant(exp: Experiment, role: VariantRole) -> Variant:
    return next(v for v in exp.spec.variants if v.role == role)


def _describe(variant: Variant) -> str:
    if variant.shadow_model:
        return f"ShadowModel {variant.shadow_model}"
    return f"variant {variant.name} ({variant.model or variant.endpoint})"


def _record(status: ExperimentStatus, step: DriftStep, now: datetime) -> None:
    want = Want(DRIFT, step.status, step.stage.value, step.message)
    status.conditions = merge(status.conditions, [want], generation=status.observed_generation, now=now)


def _windows(deps: Dependencies, key: str, variant: str, since: datetime, size: int) -> DriftWindows:
    with transaction(deps.factory) as session:
        return drift_windows(session, key, variant, since, size)


def _route_owner(deps: Dependencies, namespace: str, route: str) -> str | None:
    """The experiment the stored route feeds (None when there is no route)."""
    with transaction(deps.factory) as session:
        found = get_route(session, namespace, route)
    return found[0].experiment if found else None


async def _successor(body: dict[str, Any], exp: Experiment, deps: Dependencies) -> str | None:
    """A later experiment of the same policy: it takes the route over on its first pass."""
    if not exp.spec.policy_ref:
        return None
    meta = body["metadata"]
    mine = (meta.get("creationTimestamp") or "", meta["name"])
    others = await deps.kube.list(
        kinds.EXPERIMENTS, meta["namespace"], {kinds.POLICY_LABEL: exp.spec.policy_ref}
    )
    later = [
        (o["metadata"].get("creationTimestamp") or "", o["metadata"]["name"])
        for o in others
        if not o["metadata"].get("deletionTimestamp")
    ]
    newest = max(later, default=mine)
    return newest[1] if newest > mine else None


async def _champion(namespace: str, policy: str | None, deps: Dependencies) -> str | None:
    if not policy:
        return None
    found = await deps.kube.get(kinds.POLICIES, namespace, policy)
    return (((found or {}).get("status") or {}).get("champion") or {}).get("shadowModel")


async def _roll_back(
    body: dict[str, Any],
    exp: Experiment,
    status: ExperimentStatus,
    deps: Dependencies,
    reason: str,
    windows: DriftWindows,
) -> bool:
    """Apply the rollback's effects (each a no-op once it holds); True when all of them hold."""
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    champion, challenger = _variant(exp, VariantRole.CHAMPION), _variant(exp, VariantRole.CHALLENGER)
    drifted = challenger.shadow_model or challenger.name
    if champion.shadow_model:
        back = f"back in service: {drifted} drifted after promotion (experiment {name})"
        await set_role(namespace, champion.shadow_model, Role.CHAMPION, back, deps)
        if not await serving(namespace, champion.shadow_model, deps, Role.CHAMPION):
            return False
    # The drifted model's deployment may be gone already (a pass that died after its role was set).
    route = route_config(
        body, exp, (await endpoints(namespace, exp.spec, deps, running=False)).found, {champion.name: 100},
        attributed=False,
    )  # fmt: skip
    if route is None:
        return False
    owner = await asyncio.to_thread(_route_owner, deps, namespace, route_name(body, exp.spec))
    if owner in (None, experiment_key(namespace, name)):  # a later experiment's route is not ours to set
        await deps.router.put(route)
    for row in status.variants:  # the status shows the route's weights; later passes keep them
        row.weight = 100 if row.name == champion.name else 0
    status.challenger_weight = challenger_weight(exp.spec, status.variants)
    if not challenger.shadow_model:
        return True
    evidence = rollback_evidence(name, reason, windows)
    said = f"rolled back by experiment {name}: {evidence.reason}"
    await set_role(namespace, challenger.shadow_model, Role.ROLLED_BACK, said, deps, evidence)
    if exp.spec.policy_ref:
        await _restore_champion(
            namespace, exp.spec.policy_ref, challenger.shadow_model, champion.shadow_model, reason, deps
        )
    return True


async def _restore_champion(
    namespace: str, policy: str, drifted: str, previous: str | None, reason: str, deps: Dependencies
) -> None:
    """The policy's champion back to ``previous`` (cleared for the plain base model), with a lineage
    entry for its new reign; only while ``drifted`` is still the champion, so a repeat changes nothing."""
    found = await deps.kube.get(kinds.POLICIES, namespace, policy)
    status = (found or {}).get("status") or {}
    if found is None or (status.get("champion") or {}).get("shadowModel") != drifted:
        return
    now = deps.clock()
    before = [LineageEntry.model_validate(entry) for entry in status.get("lineage") or []]
    run = ""
    if previous:
        shadow = await deps.kube.get(kinds.SHADOW_MODELS, namespace, previous)
        run = ((shadow or {}).get("spec") or {}).get("trainingRunRef") or ""
    lineage = restored(before, drifted, previous, run, reason, now)
    await deps.kube.patch_status(kinds.POLICIES, namespace, policy, champion_patch(previous, lineage, now))
