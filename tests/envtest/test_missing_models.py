"""Honest status when a reference will not resolve by itself. Real API server, real gateway, real store.

An Experiment naming a ShadowModel that does not exist (or one already rolled back) says so: Ready
False naming the field, one Warning, and Inconclusive with the traffic on the champion once
``maxDuration`` has passed; a model that exists but is still deploying is waited for as before. A
rolled-back ShadowModel whose deployment is gone no longer shows its endpoint, and an experiment
finishing its decision after that still finishes. A challenger naming no LearningPolicy says that
no Experiment will open for it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from controllers.api import kinds
from controllers.api.experiment import Experiment, ExperimentStatus
from controllers.api.routes import RouteConfig, RouteVariant
from controllers.api.shadowmodel import ShadowModel, ShadowModelStatus
from controllers.reconcile import experiments, shadows
from controllers.reconcile.deps import Dependencies
from controllers.reconcile.outcome import Outcome
from controllers.runtime.kube import without_empty_strings
from devstack.controlplane import ControlPlane
from devstack.gateway import GatewayProcess
from tests.envtest.test_experiment_recovery import close_deps, deps_for, experiment, gateway

__all__ = ["gateway"]  # the fixture, used by name

T = TypeVar("T")
LATER = datetime.now(UTC) + timedelta(hours=2)  # past the 1h maxDuration of ``experiment``


def apply(plane: ControlPlane, namespace: str, *objects: dict[str, Any]) -> None:
    for obj in objects:
        plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(obj))


def shadow_model(name: str, policy: str | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "baseModel": {"name": "base", "uri": "file:///models/base"},
        "adapter": {"uri": f"file:///adapters/{name}", "digest": "sha256:" + "0" * 64},
    }
    if policy:
        spec["policyRef"] = policy
    return {"apiVersion": kinds.API_VERSION, "kind": "ShadowModel", "metadata": {"name": name}, "spec": spec}


def naming(namespace: str, challenger: str) -> dict[str, Any]:
    """``experiment`` with its challenger served by the ShadowModel ``challenger``."""
    body = experiment(namespace)
    body["spec"]["variants"][1] = {"name": "challenger", "role": "Challenger", "shadowModel": challenger}
    return body


def in_scenario(
    plane: ControlPlane, gateway: GatewayProcess, body: Callable[[Dependencies], Awaitable[T]]
) -> T:
    async def scenario() -> T:
        deps = deps_for(plane, gateway, gateway.url)
        try:
            return await body(deps)
        finally:
            await close_deps(deps)

    return asyncio.run(scenario())


async def experiment_pass(deps: Dependencies, namespace: str, now: datetime) -> Outcome[ExperimentStatus]:
    """One reconcile of Experiment "crashed" at ``now``, its status written as the operator writes it."""
    deps.clock = lambda: now
    body = await deps.kube.get(kinds.EXPERIMENTS, namespace, "crashed")
    assert body is not None
    out = await experiments.reconcile(body, Experiment.model_validate(body), deps)
    await deps.kube.patch_status(
        kinds.EXPERIMENTS, namespace, "crashed", without_empty_strings(out.status.to_wire())
    )
    return out


def ready(status: ExperimentStatus | ShadowModelStatus) -> dict[str, Any]:
    wire = status.to_wire()
    return next(c for c in wire["conditions"] if c["type"] == "Ready")


def test_an_experiment_naming_a_model_that_does_not_exist_says_so_then_gives_up(
    control_plane: ControlPlane, namespace: str, gateway: GatewayProcess
) -> None:
    # Given an experiment whose challenger names a ShadowModel nobody made
    apply(control_plane, namespace, naming(namespace, "nobody-made-me"))

    async def scenario(deps: Dependencies) -> tuple[Any, ...]:
        first = await experiment_pass(deps, namespace, datetime.now(UTC))
        second = await experiment_pass(deps, namespace, datetime.now(UTC))
        # When maxDuration has passed since it was created, with the model still missing
        late = await experiment_pass(deps, namespace, LATER)
        settled = await experiment_pass(deps, namespace, LATER + timedelta(minutes=1))
        return first, second, late, settled, await deps.router.get(namespace, "crashed")

    first, second, late, settled, route = in_scenario(control_plane, gateway, scenario)
    # Then it is not Ready, naming the field and the missing object, with one Warning, not one a pass
    said = ready(first.status)
    assert (said["status"], said["reason"]) == ("False", "ShadowModelNotFound")
    assert said["message"].startswith("spec.variants[1].shadowModel: no ShadowModel 'nobody-made-me'")
    assert "ends Inconclusive at" in said["message"]
    assert [e[:2] for e in first.events] == [("Warning", "ShadowModelNotFound")]
    assert second.events == []
    assert first.status.decision.value == "Continue"
    # and past the deadline it gives up: Inconclusive, the champion serves everything, a person is told
    status = late.status
    assert status.decision.value == "Inconclusive"
    assert "still so after maxDuration 1h: inconclusive, traffic on champion" in status.decision_reason
    assert {row.name: row.weight for row in status.variants} == {"champion": 100, "challenger": 0}
    assert status.challenger_weight == 0
    assert ready(status)["status"] == "False"
    assert [e[:2] for e in late.events] == [("Warning", "Inconclusive")]
    applied = next(c for c in status.to_wire()["conditions"] if c["type"] == "DecisionApplied")
    assert applied["status"] == "True"
    assert route is not None
    assert [(v.name, v.weight) for v in route.variants] == [("champion", 100)]
    # and stays so, quietly
    assert settled.events == []
    assert settled.status.decision.value == "Inconclusive"


def test_a_model_that_exists_but_does_not_serve_yet_is_waited_for_past_any_deadline(
    control_plane: ControlPlane, namespace: str, gateway: GatewayProcess
) -> None:
    # Given an experiment whose challenger is a ShadowModel still deploying
    apply(control_plane, namespace, shadow_model("deploying"), naming(namespace, "deploying"))

    out = in_scenario(control_plane, gateway, lambda deps: experiment_pass(deps, namespace, LATER))
    # Then it waits, as long as it takes, saying for what
    said = ready(out.status)
    assert (said["status"], said["reason"]) == ("Unknown", "WaitingForModels")
    assert "waiting for ShadowModel deploying (variant challenger) to serve" in said["message"]
    assert out.status.decision.value == "Continue"
    assert out.events == []


def test_an_experiment_naming_a_rolled_back_model_says_it_serves_no_more_and_gives_up(
    control_plane: ControlPlane, namespace: str, gateway: GatewayProcess
) -> None:
    # Given an experiment whose challenger was rolled back elsewhere, its deployment still up
    apply(control_plane, namespace, shadow_model("old"), naming(namespace, "old"))

    async def scenario(deps: Dependencies) -> Outcome[ExperimentStatus]:
        patch = {"role": "RolledBack", "endpoint": "http://old.invalid/v1"}
        await deps.kube.patch_status(kinds.SHADOW_MODELS, namespace, "old", patch)
        return await experiment_pass(deps, namespace, datetime.now(UTC))

    out = in_scenario(control_plane, gateway, scenario)
    said = ready(out.status)
    assert (said["status"], said["reason"]) == ("False", "ShadowModelOutOfService")
    assert said["message"].startswith("spec.variants[1].shadowModel: ShadowModel 'old' is RolledBack")
    # and, since a RolledBack model never serves again, it gives up at once instead of at maxDuration
    assert out.status.decision.value == "Inconclusive"
    assert "will not serve again" in said["message"]


async def shadow_pass(deps: Dependencies, namespace: str, name: str) -> Outcome[ShadowModelStatus]:
    body = await deps.kube.get(kinds.SHADOW_MODELS, namespace, name)
    assert body is not None
    out = await shadows.reconcile(body, ShadowModel.model_validate(body), deps)
    await deps.kube.patch_status(
        kinds.SHADOW_MODELS, namespace, name, without_empty_strings(out.status.to_wire(), as_null=True)
    )
    return out


def test_a_rolled_back_models_endpoint_goes_with_its_deployment(
    control_plane: ControlPlane, namespace: str, gateway: GatewayProcess
) -> None:
    # Given two rolled-back models that were serving: the route of track "kept" still sends traffic
    # to the first (the base model served there), no route sends any to the second
    apply(control_plane, namespace, shadow_model("kept", policy="kept"), shadow_model("gone", policy="gone"))

    async def scenario(deps: Dependencies) -> dict[str, dict[str, Any]]:
        variant = RouteVariant(name="champion", endpoint="http://kept.invalid/v1", weight=100, champion=True)
        await deps.router.put(RouteConfig(namespace=namespace, name="kept", variants=[variant]))
        for name in ("kept", "gone"):
            serving = {
                "role": "RolledBack",
                "endpoint": f"http://{name}.invalid/v1",
                "inferenceService": name,
            }
            await deps.kube.patch_status(kinds.SHADOW_MODELS, namespace, name, serving)
            await shadow_pass(deps, namespace, name)
        return {
            n: (await deps.kube.get(kinds.SHADOW_MODELS, namespace, n) or {})["status"]
            for n in ("kept", "gone")
        }

    status = in_scenario(control_plane, gateway, scenario)
    # Then the one whose deployment is gone shows no endpoint to pin, the other keeps its own
    assert "endpoint" not in status["gone"]
    assert "inferenceService" not in status["gone"]
    assert status["kept"]["endpoint"] == "http://kept.invalid/v1"
    assert status["kept"]["inferenceService"] == "kept"


def test_a_decision_whose_losers_deployment_is_already_gone_is_still_carried_out(
    control_plane: ControlPlane, namespace: str, gateway: GatewayProcess
) -> None:
    # Given an Inconclusive decision written ahead, its pass dead after retiring the challenger,
    # whose deployment (and so its endpoint) is gone since
    apply(control_plane, namespace, shadow_model("loser"), naming(namespace, "loser"))

    async def scenario(deps: Dependencies) -> Outcome[ExperimentStatus]:
        await deps.kube.patch_status(kinds.SHADOW_MODELS, namespace, "loser", {"role": "Retired"})
        await deps.kube.patch_status(
            kinds.EXPERIMENTS, namespace, "crashed",
            {"decision": "Inconclusive", "decisionReason": "no decision within maxDuration 1h",
             "variants": [{"name": "champion", "weight": 100}, {"name": "challenger", "weight": 0}]},
        )  # fmt: skip
        return await experiment_pass(deps, namespace, datetime.now(UTC))

    out = in_scenario(control_plane, gateway, scenario)
    # Then the next pass finishes it rather than waiting for a model that will never serve again
    conditions = {c["type"]: c for c in out.status.to_wire()["conditions"]}
    assert conditions["DecisionApplied"]["status"] == "True"
    assert (conditions["Ready"]["status"], conditions["Ready"]["reason"]) == ("True", "Inconclusive")


def test_a_challenger_naming_no_policy_says_no_experiment_opens(
    control_plane: ControlPlane, namespace: str, gateway: GatewayProcess
) -> None:
    # Given a serving challenger whose policyRef names no LearningPolicy
    apply(control_plane, namespace, shadow_model("stray", policy="no-such-policy"))

    async def scenario(deps: Dependencies) -> tuple[Any, Any]:
        body = await deps.kube.get(kinds.SHADOW_MODELS, namespace, "stray")
        assert body is not None
        status = ShadowModelStatus(endpoint="http://stray.invalid/v1")
        said = await shadows._ensure_experiment(body, ShadowModel.model_validate(body), status, deps)
        body["metadata"]["ownerReferences"] = [{"kind": "LearningPolicy", "name": "no-such-policy"}]
        dying = await shadows._ensure_experiment(body, ShadowModel.model_validate(body), status, deps)
        return said, dying

    said, dying = in_scenario(control_plane, gateway, scenario)
    # Then it is not Ready, naming the field and what it means; one owned by a policy being deleted
    # (garbage-collected with it) says nothing
    assert said is not None
    assert (said.status.value, said.reason) == ("False", "PolicyNotFound")
    assert said.message.startswith("spec.policyRef: no LearningPolicy 'no-such-policy'")
    assert "no Experiment opens" in said.message
    assert dying is None
