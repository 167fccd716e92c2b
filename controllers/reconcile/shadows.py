"""ShadowModel reconcile: serve the adapter on KServe, record its endpoint, open its Experiment, and
take the deployment down again when the model is retired or rolled back (once no route sends
traffic there any more).

Dedicated models get their own InferenceService (owned by the ShadowModel), with the adapter fetched
by KServe's storage initializer at start. Shared models are one more adapter on the warm base
deployment named by ``serving.sharedBase``: its predictor stays as it is, and the adapter is loaded
into every replica at run time (``controllers.reconcile.lora``); Ready means every replica lists it.
Roles are written by the Experiment that decides them; this reconcile only follows them.
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from controllers.api import kinds
from controllers.api.experiment import DECISION_APPLIED, FINAL_DECISIONS
from controllers.api.kindinfo import condition
from controllers.api.routes import RouteConfig
from controllers.api.serving_settings import DeploymentMode, RolloutSettings
from controllers.api.shadowmodel import (
    STILL_ROUTED,
    OfflineEvaluation,
    Role,
    ShadowModel,
    ShadowModelSpec,
    ShadowModelStatus,
)
from controllers.api.trainingrun import TrainingMetrics
from controllers.builders.children import Parent, challenger_experiment
from controllers.builders.inferenceservice import (
    InvalidServingSpec,
    ObjectRef,
    build_inference_service,
    inference_service_name,
    ready_endpoint,
    served_model_name,
)
from controllers.builders.shared_base import build_shared_base
from controllers.decisions.conditions import READY, Want, holds, merge
from controllers.reconcile import lora
from controllers.reconcile.deps import Dependencies
from controllers.reconcile.outcome import Outcome
from controllers.store.db import transaction
from controllers.store.experiments import get_route

SERVING_ROLES = (Role.CHALLENGER, Role.CHAMPION)


async def reconcile(
    body: dict[str, Any], shadow: ShadowModel, deps: Dependencies
) -> Outcome[ShadowModelStatus]:
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    out = Outcome.start(shadow.status, ShadowModelStatus(), meta)
    now = deps.clock()
    serving = shadow.spec.serving
    if out.status.role not in SERVING_ROLES:
        routed = await _routed_here(shadow, out.status, namespace, deps)
        pending = await _take_down(body, shadow, namespace, deps, keep=bool(routed))
        if not routed:  # nothing serves this adapter any more: an endpoint left here would answer 502
            out.status.endpoint = out.status.inference_service = ""
        message = f"{out.status.role.value}: {out.status.role_reason or 'no longer serving'}"
        if routed:
            message += f"; {STILL_ROUTED} {routed} still sends traffic to it"
        message += pending
        out.status.conditions = merge(
            out.status.conditions, [Want.false(READY, out.status.role.value, message)],
            generation=out.status.observed_generation, now=now,
        )  # fmt: skip
        return out
    try:
        if serving.mode == DeploymentMode.SHARED:
            assert serving.shared_base
            manifest = build_shared_base(
                serving.shared_base, namespace, await _members(namespace, serving.shared_base, deps),
                loader_image=deps.settings.loader_image,
            )  # fmt: skip
        else:
            manifest = build_inference_service(ObjectRef.from_metadata(meta), shadow.spec)
    except InvalidServingSpec as error:
        out.status.conditions = merge(
            out.status.conditions, [Want.false(READY, "InvalidSpec", str(error))],
            generation=out.status.observed_generation, now=now,
        )  # fmt: skip
        return out
    isvc = await _apply(manifest, deps)
    if serving.mode == DeploymentMode.SHARED:
        await lora.ensure_loader_access(deps.kube, isvc)
    out.status.inference_service = manifest["metadata"]["name"]
    out.status.served_model_name = served_model_name(name)
    if shadow.status is None:
        out.status.evaluation = await _evaluation(shadow, namespace, deps)
    want = await _serving(body, shadow, isvc, out, deps)
    out.status.conditions = merge(
        out.status.conditions, [want], generation=out.status.observed_generation, now=now
    )
    return out


async def _serving(
    body: dict[str, Any],
    shadow: ShadowModel,
    isvc: dict[str, Any],
    out: Outcome[ShadowModelStatus],
    deps: Dependencies,
) -> Want:
    """Ready once the deployment serves (its endpoint recorded, the challenger's Experiment opened)."""
    status = out.status
    endpoint = ready_endpoint(isvc, served_model_name(body["metadata"]["name"]))
    if endpoint is None:
        return Want.unknown(
            READY, "Deploying", f"waiting for InferenceService {status.inference_service} to be Ready"
        )
    if shadow.spec.serving.mode == DeploymentMode.SHARED:
        name = body["metadata"]["name"]
        placed = await lora.ensure_loaded(
            deps.kube, body["metadata"]["namespace"], status.inference_service,
            shadow.spec.base_model.name, endpoint.model, shadow.spec.adapter.uri,
        )  # fmt: skip
        if not placed.everywhere:
            return Want.unknown(
                READY, "LoadingAdapter",
                f"adapter {name} listed on {placed.listed_on} of {placed.replicas} replicas of"
                f" {status.inference_service}: {placed.problem}",
            )  # fmt: skip
    url = _rehost(endpoint.base_url, deps.settings.served_host)
    if status.endpoint != url:
        out.events.append(("Normal", "Serving", f"adapter served at {url} as model {endpoint.model}"))
    status.endpoint = url
    opens = shadow.spec.policy_ref and status.role == Role.CHALLENGER
    if opens and (missing := await _ensure_experiment(body, shadow, status, deps)) is not None:
        if not holds(status.conditions, missing):  # one Event, not one per reconcile
            out.events.append(("Warning", missing.reason, missing.message))
        return missing
    return Want.true(READY, "Serving", f"{status.role.value} served by {status.inference_service}")


def _rehost(url: str, host: str | None) -> str:
    if not host:
        return url
    parts = urlsplit(url)
    return urlunsplit(
        parts._replace(netloc=host if ":" in host else f"{host}:{parts.port}" if parts.port else host)
    )


async def _apply(manifest: dict[str, Any], deps: Dependencies) -> dict[str, Any]:
    """Create, or update what changed: a shared base's owners and digests follow its members (metadata
    only, so no rollout); its spec changes only with the members' common settings."""
    current, created = await deps.kube.ensure(kinds.INFERENCE_SERVICES, manifest)
    wanted_annotations = manifest["metadata"].get("annotations", {})
    if created or (
        current.get("spec") == manifest["spec"]
        and current["metadata"].get("ownerReferences", []) == manifest["metadata"].get("ownerReferences", [])
        and wanted_annotations.items() <= (current["metadata"].get("annotations") or {}).items()
    ):
        return current
    current["spec"] = manifest["spec"]
    current["metadata"]["ownerReferences"] = manifest["metadata"].get("ownerReferences", [])
    current["metadata"].setdefault("annotations", {}).update(manifest["metadata"].get("annotations", {}))
    return await deps.kube.replace(kinds.INFERENCE_SERVICES, current)


async def _members(namespace: str, base: str, deps: Dependencies) -> list[tuple[ObjectRef, ShadowModelSpec]]:
    """The ShadowModels that serve on the shared base ``base`` now."""
    members = []
    for item in await deps.kube.list(kinds.SHADOW_MODELS, namespace):
        model = ShadowModel.model_validate(item)
        role = model.status.role if model.status else Role.CHALLENGER
        if (
            model.spec.serving.mode == DeploymentMode.SHARED
            and model.spec.serving.shared_base == base
            and role in SERVING_ROLES
            and not item["metadata"].get("deletionTimestamp")
        ):
            members.append((ObjectRef.from_metadata(item["metadata"]), model.spec))
    return members


async def _routed_here(
    shadow: ShadowModel, status: ShadowModelStatus, namespace: str, deps: Dependencies
) -> str:
    """The policy's route when it still sends traffic to this model's endpoint, else "".

    A track without a champion compares its challenger against the plain base model served by the
    challenger's own deployment. When that challenger is rolled back (by its experiment, or for drift
    after its promotion) the route sends everything to the base model there, until the track's next
    model takes the route over; taking the deployment down at once would leave agents nothing."""
    if not shadow.spec.policy_ref or not status.endpoint:
        return ""
    found = await asyncio.to_thread(_route, deps, namespace, shadow.spec.policy_ref)
    if found is None or not any(v.weight > 0 and v.endpoint == status.endpoint for v in found.variants):
        return ""
    return found.key


def _route(deps: Dependencies, namespace: str, name: str) -> RouteConfig | None:
    with transaction(deps.factory) as session:
        found = get_route(session, namespace, name)
    return found[0] if found else None


async def _take_down(
    body: dict[str, Any], shadow: ShadowModel, namespace: str, deps: Dependencies, keep: bool
) -> str:
    """Remove the model from serving; ``keep`` leaves a deployment that a route still needs. What is
    not done yet (an adapter some replica still lists), for the condition's message; the next pass
    tries again."""
    serving = shadow.spec.serving
    if serving.mode == DeploymentMode.DEDICATED:
        if not keep:
            await deps.kube.delete(
                kinds.INFERENCE_SERVICES, namespace, inference_service_name(body["metadata"]["name"])
            )
        return ""
    assert serving.shared_base
    members = await _members(namespace, serving.shared_base, deps)
    if members:  # the shared base keeps serving the others (and the base model) without this adapter
        base = build_shared_base(
            serving.shared_base, namespace, members, loader_image=deps.settings.loader_image
        )
        await _apply(base, deps)
        left = await lora.ensure_unloaded(
            deps.kube, namespace, serving.shared_base, shadow.spec.base_model.name,
            served_model_name(body["metadata"]["name"]),
        )  # fmt: skip
        return f"; unloading its adapter: {left}" if left else ""
    elif not keep:
        await deps.kube.delete(kinds.INFERENCE_SERVICES, namespace, serving.shared_base)
    return ""


async def _evaluation(shadow: ShadowModel, namespace: str, deps: Dependencies) -> OfflineEvaluation | None:
    """The held-out metrics of the run that trained the adapter, copied for people comparing versions."""
    if not shadow.spec.training_run_ref:
        return None
    run = await deps.kube.get(kinds.RUNS, namespace, shadow.spec.training_run_ref)
    metrics = TrainingMetrics.model_validate(((run or {}).get("status") or {}).get("metrics") or {})
    return OfflineEvaluation(
        preference_accuracy=metrics.preference_accuracy,
        reward_margin=metrics.reward_margin,
        eval_loss=metrics.eval_loss,
    )


async def _ensure_experiment(
    body: dict[str, Any], shadow: ShadowModel, status: ShadowModelStatus, deps: Dependencies
) -> Want | None:
    """The challenger's Experiment against the policy's champion (or, for a track's first model, the
    plain base model served by the same deployment). A Ready condition when no policy of that name
    exists (one owned by its policy is being garbage-collected with it: nothing to say)."""
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    policy_name = shadow.spec.policy_ref
    assert policy_name
    policy = await deps.kube.get(kinds.POLICIES, namespace, policy_name)
    if policy is None:
        owned = any(ref.get("kind") == "LearningPolicy" for ref in meta.get("ownerReferences") or [])
        return None if owned else missing_policy(namespace, policy_name)
    if await deps.kube.get(kinds.EXPERIMENTS, namespace, name) is not None:
        return None  # made on an earlier pass; its spec never changes
    if await _decision_in_flight(namespace, policy_name, deps):
        # An earlier experiment of the track has decided but not yet crowned its winner (a pass died
        # between the write-ahead and the effects): the champion read now may be retired a moment
        # later, leaving this experiment to compare against a deployment that is going away.
        return None
    champion = ((policy.get("status") or {}).get("champion") or {}).get("shadowModel")
    if champion == name:
        return None
    rollout = RolloutSettings.model_validate(policy["spec"].get("rollout", {}))
    experiment = challenger_experiment(
        name, Parent.of(policy), rollout, champion, shadow.spec.base_model.name, status.endpoint
    )
    await deps.kube.ensure(kinds.EXPERIMENTS, experiment.to_wire())
    return None


def missing_policy(namespace: str, policy: str) -> Want:
    """A challenger whose policyRef names no LearningPolicy: served, but no Experiment opens for it."""
    message = (
        f"spec.policyRef: no LearningPolicy {policy!r} in namespace {namespace!r}; the model serves, but no"
        " Experiment opens until that policy exists (or name the model in an Experiment by hand)"
    )
    return Want.false(READY, "PolicyNotFound", message)


async def _decision_in_flight(namespace: str, policy: str, deps: Dependencies) -> bool:
    """Whether an experiment of ``policy`` has a final decision whose effects are not all in place."""
    for found in await deps.kube.list(kinds.EXPERIMENTS, namespace, {kinds.POLICY_LABEL: policy}):
        decision = (found.get("status") or {}).get("decision")
        applied = condition(found, DECISION_APPLIED).get("status") == "True"
        if decision in FINAL_DECISIONS and not applied and not found["metadata"].get("deletionTimestamp"):
            return True
    return False
