"""What a final Experiment decision does beyond the route: the ShadowModels' roles, and after a
promotion the policy's champion and lineage. Every step is a no-op once it holds, so the reconcile
repeats them on every pass until ``DecisionApplied`` says they all hold (``controllers.reconcile
.experiments``)."""

from __future__ import annotations

from typing import Any

from controllers.api import kinds
from controllers.api.experiment import Decision, Experiment, ExperimentStatus, VariantRole
from controllers.api.learningpolicy import LineageEntry
from controllers.api.shadowmodel import Evidence, Role
from controllers.builders.lineage import champion_patch, crowned
from controllers.reconcile.deps import Dependencies
from controllers.reconcile.effects import set_role


async def apply_decision(
    body: dict[str, Any], exp: Experiment, status: ExperimentStatus, deps: Dependencies
) -> None:
    namespace = body["metadata"]["namespace"]
    challenger = next(v for v in exp.spec.variants if v.role == VariantRole.CHALLENGER)
    # A bandit that routes between models may have no champion: nothing to retire or compare with.
    champion = next((v for v in exp.spec.variants if v.role == VariantRole.CHAMPION), None)
    if not challenger.shadow_model:
        return
    if status.decision == Decision.ROLL_BACK:
        evidence = decision_evidence(
            body["metadata"]["name"], status, challenger.name, champion.name if champion else ""
        )
        await set_role(
            namespace, challenger.shadow_model, Role.ROLLED_BACK, status.decision_reason, deps, evidence
        )
    elif status.decision == Decision.INCONCLUSIVE:
        await set_role(namespace, challenger.shadow_model, Role.RETIRED, status.decision_reason, deps)
    elif status.decision == Decision.PROMOTE:
        await set_role(namespace, challenger.shadow_model, Role.CHAMPION, status.decision_reason, deps)
        if champion is not None and champion.shadow_model:
            await set_role(
                namespace, champion.shadow_model, Role.RETIRED, f"replaced by {challenger.shadow_model}", deps
            )
        if exp.spec.policy_ref:
            await _crown(namespace, exp.spec.policy_ref, challenger.shadow_model, deps)


def decision_evidence(experiment: str, status: ExperimentStatus, challenger: str, champion: str) -> Evidence:
    """What a challenger rolled back by the experiment records: its samples, p-value and mean delta."""
    rows = {row.name: row for row in status.variants}
    row, champion_row = rows.get(challenger), rows.get(champion)
    delta = None
    if row and champion_row and row.mean_reward is not None and champion_row.mean_reward is not None:
        delta = round(row.mean_reward - champion_row.mean_reward, 6)
    return Evidence(
        experiment=experiment,
        samples=row.samples if row else 0,
        reason=status.decision_reason,
        p_value=row.p_value if row else None,
        mean_delta=delta,
    )


async def _crown(namespace: str, policy_name: str, shadow_model: str, deps: Dependencies) -> None:
    """The policy's champion and lineage (newest first; the previous champion gets its retirement)."""
    policy = await deps.kube.get(kinds.POLICIES, namespace, policy_name)
    if policy is None:
        return
    status = policy.get("status") or {}
    if (status.get("champion") or {}).get("shadowModel") == shadow_model:
        return
    now = deps.clock()
    shadow = await deps.kube.get(kinds.SHADOW_MODELS, namespace, shadow_model)
    run = ((shadow or {}).get("spec") or {}).get("trainingRunRef", "")
    before = [LineageEntry.model_validate(entry) for entry in status.get("lineage") or []]
    patch = champion_patch(shadow_model, crowned(before, shadow_model, run, now), now)
    await deps.kube.patch_status(kinds.POLICIES, namespace, policy_name, patch)
