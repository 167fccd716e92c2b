"""What an Experiment acts on, shared by its decision (``experiments``) and its drift watch (``drift``):
the variants' endpoints, the route built from them, and the ShadowModels' roles."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controllers.api import kinds
from controllers.api.common import ConditionStatus
from controllers.api.experiment import Experiment, ExperimentSpec, VariantRole
from controllers.api.routes import RouteConfig, RouteVariant, experiment_key
from controllers.api.shadowmodel import Evidence, Role
from controllers.decisions.conditions import READY
from controllers.decisions.experiments.references import Unresolved, not_found, out_of_service
from controllers.reconcile.deps import Dependencies

Endpoints = dict[str, tuple[str, str | None]]  # variant → (base URL, model sent upstream)
OUT_OF_SERVICE = (Role.RETIRED.value, Role.ROLLED_BACK.value)


@dataclass
class Lookup:
    """What the variants' ShadowModels say: who serves where, who is still deploying, and who will
    not serve unless a person acts (``controllers.decisions.experiments.references``)."""

    found: Endpoints = field(default_factory=dict)
    waiting: str = ""  # a sentence naming the first model that is not serving yet
    unresolved: list[Unresolved] = field(default_factory=list)

    @property
    def blocked(self) -> bool:
        return bool(self.waiting or self.unresolved)


def route_name(body: dict[str, Any], spec: ExperimentSpec) -> str:
    """Agents address a track once: the policy's route; a hand-made experiment routes under its own name."""
    return spec.policy_ref or body["metadata"]["name"]


async def endpoints(
    namespace: str, spec: ExperimentSpec, deps: Dependencies, *, running: bool = True
) -> Lookup:
    """Each variant's (base URL, model), or why it has none.

    A ``running`` experiment needs models that serve: one Retired or RolledBack is unresolved even
    while its deployment is still up. One carrying out its decision (or a drift rollback) sets those
    roles itself, and takes an endpoint wherever one is still recorded."""
    lookup = Lookup()
    for index, variant in enumerate(spec.variants):
        if variant.endpoint:
            lookup.found[variant.name] = (variant.endpoint, variant.model)
            continue
        assert variant.shadow_model
        shadow = await deps.kube.get(kinds.SHADOW_MODELS, namespace, variant.shadow_model)
        status = (shadow or {}).get("status") or {}
        role = status.get("role", "")
        if shadow is None:
            lookup.unresolved.append(not_found(index, variant.name, variant.shadow_model, namespace))
        elif running and role in OUT_OF_SERVICE:
            lookup.unresolved.append(out_of_service(index, variant.name, variant.shadow_model, role))
        elif status.get("endpoint"):
            lookup.found[variant.name] = (status["endpoint"], variant.model or status.get("servedModelName"))
        elif not lookup.waiting:
            lookup.waiting = (
                f"waiting for ShadowModel {variant.shadow_model} (variant {variant.name}) to serve"
            )
    return lookup


def route_config(
    body: dict[str, Any],
    exp: Experiment,
    found: Endpoints,
    weights: Mapping[str, int],
    *,
    attributed: bool = True,
) -> RouteConfig | None:
    """The route that sends this experiment's traffic to its variants at ``weights``.

    ``attributed=False`` once the experiment is settled and nothing watches its traffic any more (a
    rollback, an inconclusive end, a drift rollback): the router then stops recording assignments
    for it and stops naming it in ``X-Kaizen-Experiment``, so its figures stay those it decided on.

    Only variants in ``found`` are routed. None when that leaves no route: a variant with traffic, or
    the champion, has no endpoint (after a decision, a loser's deployment may already be gone: the
    pass that set its role had pushed the route already)."""
    routed = [v for v in exp.spec.variants if v.name in found]
    if len(routed) < len(exp.spec.variants):
        champion = any(v.role == VariantRole.CHAMPION for v in routed)
        if not champion or any(weights.get(v.name, 0) > 0 for v in exp.spec.variants if v.name not in found):
            return None
    meta = body["metadata"]
    return RouteConfig(
        namespace=meta["namespace"],
        name=route_name(body, exp.spec),
        experiment=experiment_key(meta["namespace"], meta["name"]) if attributed else None,
        unit=exp.spec.rollout.unit.value,
        variants=[
            RouteVariant(
                name=v.name, endpoint=found[v.name][0], model=found[v.name][1],
                weight=weights.get(v.name, 0), champion=v.role == VariantRole.CHAMPION,
            )
            for v in routed
        ],
    )  # fmt: skip


async def set_role(
    namespace: str,
    name: str,
    role: Role,
    reason: str,
    deps: Dependencies,
    evidence: Evidence | None = None,
) -> None:
    """Give a ShadowModel its role (a no-op when it has it already, so a repeat keeps the first reason)."""
    shadow = await deps.kube.get(kinds.SHADOW_MODELS, namespace, name)
    if shadow is None:
        return
    status = shadow.get("status") or {}
    if status.get("role") == role.value:
        return
    patch: dict[str, Any] = {
        "role": role.value,
        "roleReason": reason[:1024],
        "roleChangedAt": deps.clock().isoformat(),
    }
    if evidence is not None:
        # Empty strings left out: a v1.20 API server reads "" in a merge patch as null.
        patch["rollbackEvidence"] = {k: v for k, v in evidence.to_wire().items() if v != ""}
    await deps.kube.patch_status(kinds.SHADOW_MODELS, namespace, name, patch)


async def serving(namespace: str, name: str, deps: Dependencies, role: Role) -> bool:
    """Whether a ShadowModel has ``role`` and is Ready: its endpoint was read after it got the role
    (a model out of service is never Ready, so a stale endpoint from before is never trusted)."""
    shadow = await deps.kube.get(kinds.SHADOW_MODELS, namespace, name)
    status = (shadow or {}).get("status") or {}
    ready: dict[str, Any] = next((c for c in status.get("conditions") or [] if c.get("type") == READY), {})
    return status.get("role") == role.value and ready.get("status") == ConditionStatus.TRUE.value
