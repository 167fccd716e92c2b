"""An Experiment's decision survives a crash between its write-ahead and its effects.

The decision is patched onto the status before the route is pushed. When the pass dies right after
that patch (here: the router is unreachable, which fails the pass at exactly that point, as a kill
would), the next pass finds the decision and finishes its effects from what the status holds. So
the stored status must already carry the decision's weights, not the last step's split: a route
rebuilt from a 50/50 split keeps a retired challenger in traffic until another experiment takes the
track over. And while a decision is in that state, the track's next challenger must not open its
experiment against the champion about to be retired. Real API server, real gateway process, real store.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controllers.api import kinds
from controllers.api.experiment import Experiment
from controllers.api.identity import Role as CallerRole
from controllers.api.shadowmodel import Role, ShadowModel, ShadowModelStatus
from controllers.clients.router import RouterClient, RouterError
from controllers.gateway import auth
from controllers.reconcile import experiments, shadows
from controllers.reconcile.deps import Dependencies, Settings
from controllers.runtime.kube import Kube, load_configuration, without_empty_strings
from controllers.runtime.metrics import OperatorMetrics
from controllers.store import migrate
from controllers.store.db import make_engine, session_factory
from devstack.controlplane import ControlPlane
from devstack.gateway import GatewayProcess

SECRET = "recovery-secret-0123456789"
NOW = datetime.now(UTC)


@pytest.fixture
def gateway(tmp_path: Path) -> Any:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.upgrade(url)
    # The variants' endpoints are never called here, only routed to: allow their (reserved) domain.
    process = GatewayProcess(url, SECRET, tmp_path / "gateway.log", route_allowed_hosts="*.invalid")
    process.start()
    yield process
    process.stop()


def experiment(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": kinds.API_VERSION,
        "kind": "Experiment",
        "metadata": {"name": "crashed", "namespace": namespace},
        "spec": {
            "strategy": "ABTest",
            "variants": [
                {"name": "champion", "role": "Champion", "endpoint": "http://champion.invalid/v1"},
                {"name": "challenger", "role": "Challenger", "endpoint": "http://challenger.invalid/v1"},
            ],
            "rollout": {"steps": [50], "maxDuration": "1h"},
        },
    }


def deps_for(plane: ControlPlane, gateway: GatewayProcess, router_url: str) -> Dependencies:
    settings = Settings(database_url=gateway.database_url, data_root=Path("."), gateway_url=router_url)
    engine = make_engine(settings.database_url)
    return Dependencies(
        settings,
        Kube(load_configuration(str(plane.kubeconfig))),
        engine,
        session_factory(engine),
        RouterClient(
            router_url, auth.issue(SECRET, "operator", 3600, role=CallerRole.OPERATOR, namespaces=["*"])
        ),
        OperatorMetrics(),
        clock=lambda: NOW,
    )


async def close_deps(deps: Dependencies) -> None:
    await deps.kube.close()
    await deps.router.close()
    deps.engine.dispose()


async def one_pass(plane: ControlPlane, namespace: str, deps: Dependencies) -> None:
    body = json.loads(plane.kubectl("get", "experiment", "crashed", "-n", namespace, "-o", "json").stdout)
    outcome = await experiments.reconcile(body, Experiment.model_validate(body), deps)
    await deps.kube.patch_status(
        kinds.EXPERIMENTS, namespace, "crashed", without_empty_strings(outcome.status.to_wire())
    )


def test_a_decision_whose_pass_died_after_the_write_ahead_is_finished_with_the_decisions_weights(
    control_plane: ControlPlane, namespace: str, gateway: GatewayProcess
) -> None:
    # Given an experiment at a 50/50 step, started long enough ago that its next pass decides
    control_plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(experiment(namespace)))

    async def scenario() -> tuple[dict[str, Any], dict[str, Any]]:
        dead = deps_for(control_plane, gateway, "http://127.0.0.1:9")
        live = deps_for(control_plane, gateway, gateway.url)
        try:
            await live.kube.patch_status(
                kinds.EXPERIMENTS, namespace, "crashed",
                {"decision": "Continue", "step": 0, "startedAt": (NOW - timedelta(hours=2)).isoformat(),
                 "variants": [{"name": "champion", "weight": 50}, {"name": "challenger", "weight": 50}]},
            )  # fmt: skip
            # When its deciding pass dies right after the write-ahead (the router cannot be reached)
            with pytest.raises(RouterError):
                await one_pass(control_plane, namespace, dead)
            crashed = await live.kube.get(kinds.EXPERIMENTS, namespace, "crashed")
            # and the next pass finishes the decision
            await one_pass(control_plane, namespace, live)
            route = await live.router.get(namespace, "crashed")
            assert route is not None
            return crashed or {}, {v.name: v.weight for v in route.variants}
        finally:
            for deps in (dead, live):
                await close_deps(deps)

    crashed, weights = asyncio.run(scenario())
    # Then the write-ahead already held the decision's weights, and the route sends the retired
    # challenger nothing
    status = crashed["status"]
    assert status["decision"] == "Inconclusive"
    assert {v["name"]: v["weight"] for v in status["variants"]} == {"champion": 100, "challenger": 0}
    assert weights == {"champion": 100, "challenger": 0}
    applied = control_plane.kubectl(
        "get", "experiment", "crashed", "-n", namespace,
        "-o", "jsonpath={.status.conditions[?(@.type=='DecisionApplied')].status}",
    ).stdout  # fmt: skip
    assert applied == "True"


def given_a_track_whose_promotion_died_before_crowning(plane: ControlPlane, namespace: str) -> None:
    """A policy "track", its experiment "old", and a new challenger ShadowModel "new" on the track."""
    policy = {
        "apiVersion": kinds.API_VERSION, "kind": "LearningPolicy",
        "metadata": {"name": "track", "namespace": namespace},
        "spec": {"track": {"agent": "a"}, "paused": True,
                 "training": {"baseModel": {"name": "base", "uri": "file:///models/base"}}},
    }  # fmt: skip
    old = experiment(namespace)
    old["metadata"].update(name="old", labels={kinds.POLICY_LABEL: "track"})
    old["spec"]["policyRef"] = "track"
    shadow = {
        "apiVersion": kinds.API_VERSION, "kind": "ShadowModel",
        "metadata": {"name": "new", "namespace": namespace},
        "spec": {"policyRef": "track", "baseModel": {"name": "base", "uri": "file:///models/base"},
                 "adapter": {"uri": "file:///adapters/new", "digest": "sha256:" + "0" * 64}},
    }  # fmt: skip
    for obj in (policy, old, shadow):
        plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(obj))


async def given_old_decided_promote_while_the_policy_names_the_previous_champion(
    deps: Dependencies, namespace: str
) -> None:
    await deps.kube.patch_status(
        kinds.POLICIES,
        namespace,
        "track",
        {"champion": {"shadowModel": "previous", "since": NOW.isoformat()}},
    )
    await deps.kube.patch_status(kinds.EXPERIMENTS, namespace, "old", {"decision": "Promote"})


async def when_the_old_decision_is_applied(deps: Dependencies, namespace: str) -> None:
    """Its winner is crowned on the policy, and its DecisionApplied condition turns True."""
    await deps.kube.patch_status(
        kinds.POLICIES,
        namespace,
        "track",
        {"champion": {"shadowModel": "old-winner", "since": NOW.isoformat()}},
    )
    await deps.kube.patch_status(
        kinds.EXPERIMENTS, namespace, "old",
        {"conditions": [{"type": "DecisionApplied", "status": "True", "reason": "Applied",
                         "message": "applied", "lastTransitionTime": NOW.isoformat()}]},
    )  # fmt: skip


def test_a_new_challengers_experiment_waits_until_the_tracks_last_decision_is_applied(
    control_plane: ControlPlane, namespace: str, gateway: GatewayProcess
) -> None:
    # Given a track whose experiment "old" decided Promote but died before crowning its challenger
    # (the policy still names the previous champion), and a new challenger that is serving
    given_a_track_whose_promotion_died_before_crowning(control_plane, namespace)

    async def scenario() -> tuple[bool, dict[str, Any]]:
        deps = deps_for(control_plane, gateway, gateway.url)
        try:
            await given_old_decided_promote_while_the_policy_names_the_previous_champion(deps, namespace)
            body = await deps.kube.get(kinds.SHADOW_MODELS, namespace, "new")
            assert body is not None
            model = ShadowModel.model_validate(body)
            status = ShadowModelStatus(role=Role.CHALLENGER, endpoint="http://new.invalid/v1")
            # When the challenger's pass runs before and after the old decision is applied
            await shadows._ensure_experiment(body, model, status, deps)
            made_early = await deps.kube.get(kinds.EXPERIMENTS, namespace, "new") is not None
            await when_the_old_decision_is_applied(deps, namespace)
            await shadows._ensure_experiment(body, model, status, deps)
            made = await deps.kube.get(kinds.EXPERIMENTS, namespace, "new")
            return made_early, made or {}
        finally:
            await close_deps(deps)

    made_early, made = asyncio.run(scenario())
    # Then no experiment is made against the champion that is about to be retired; once the decision
    # is applied, the experiment compares the challenger with the new champion
    assert not made_early
    champion = next(v for v in made["spec"]["variants"] if v["role"] == "Champion")
    assert champion["shadowModel"] == "old-winner"
