"""A person's request on an Experiment, answered exactly once however often the operator looks and
wherever a pass dies: real API server, real gateway process, real store, the operator's own dispatch.

A pass dies right after its write-ahead when the router cannot be reached (as a kill would there);
the next pass must finish the effects without deciding, recording or announcing a second time.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from controllers.api import experiment as experiment_api
from controllers.api import kinds
from controllers.api.intervention import ANNOTATION, Action, Intervention, annotation_value
from controllers.clients.router import RouterError
from controllers.operator.dispatch import Kind, handle
from controllers.reconcile import experiments
from controllers.reconcile.deps import Dependencies
from devstack.controlplane import ControlPlane
from devstack.gateway import GatewayProcess
from tests.envtest.test_experiment_recovery import (  # noqa: F401 (gateway is a fixture)
    close_deps,
    deps_for,
    experiment,
    gateway,
)

NOW = datetime.now(UTC)
EXPERIMENTS = Kind(experiment_api.INFO, experiments.reconcile, 1.0, 60.0)


def request(action: Action, ident: str, reason: str = "bad outputs") -> str:
    return annotation_value(Intervention(id=ident, action=action, by="alice", at=NOW, reason=reason))


def stamp(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def annotate(plane: ControlPlane, namespace: str, value: str) -> None:
    plane.kubectl(
        "annotate", "experiment", "crashed", "-n", namespace, f"{ANNOTATION}={value}", "--overwrite"
    )


def events(plane: ControlPlane, namespace: str, reason: str) -> list[dict[str, Any]]:
    listed = json.loads(plane.kubectl("get", "events", "-n", namespace, "-o", "json").stdout)["items"]
    return [e for e in listed if e["reason"] == reason and e["involvedObject"]["name"] == "crashed"]


async def passes(plane: ControlPlane, namespace: str, deps: Dependencies, count: int) -> dict[str, Any]:
    """``count`` reconciles as the operator runs them; the Experiment afterwards."""
    for _ in range(count):
        raw = json.loads(plane.kubectl("get", "experiment", "crashed", "-n", namespace, "-o", "json").stdout)
        await handle(EXPERIMENTS, raw, deps)
    return await deps.kube.get(kinds.EXPERIMENTS, namespace, "crashed") or {}


async def given_a_running_experiment(plane: ControlPlane, namespace: str, deps: Dependencies) -> None:
    """50/50 since ten minutes, no rewards yet: the planner alone would keep waiting for traffic."""
    plane.kubectl("apply", "-n", namespace, "-f", "-", stdin=json.dumps(experiment(namespace)))
    status = {
        "decision": "Continue",
        "step": 0,
        "startedAt": (NOW - timedelta(minutes=10)).isoformat(),
        "variants": [{"name": "champion", "weight": 50}, {"name": "challenger", "weight": 50}],
    }
    await deps.kube.patch_status(kinds.EXPERIMENTS, namespace, "crashed", status)


def test_an_abort_whose_pass_died_after_the_write_ahead_is_finished_once_recorded_once_announced_once(
    control_plane: ControlPlane,
    namespace: str,
    gateway: GatewayProcess,  # noqa: F811
) -> None:
    live = deps_for(control_plane, gateway, gateway.url)
    dead = deps_for(control_plane, gateway, "http://127.0.0.1:9")

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], dict[str, int]]:
        try:
            await given_a_running_experiment(control_plane, namespace, live)
            # When a person asks to abort, and the pass that answers dies right after its write-ahead
            annotate(control_plane, namespace, request(Action.ABORT, "abort-1"))
            with pytest.raises(RouterError):
                await passes(control_plane, namespace, dead, 1)
            crashed = await live.kube.get(kinds.EXPERIMENTS, namespace, "crashed") or {}
            # and the operator looks again, several times (a restart, a resync, a second replica)
            after = await passes(control_plane, namespace, live, 3)
            route = await live.router.get(namespace, "crashed")
            assert route is not None
            return crashed, after, {v.name: v.weight for v in route.variants}
        finally:
            for deps in (live, dead):
                await close_deps(deps)

    crashed, after, weights = asyncio.run(scenario())
    # Then the write-ahead already held the decision and the answer
    assert crashed["status"]["decision"] == "RollBack"
    assert crashed["status"]["decisionReason"] == "aborted by alice: bad outputs"
    assert [e["id"] for e in crashed["status"]["interventions"]] == ["abort-1"]
    # and the next passes finished the effects without a second decision, record or Event
    status = after["status"]
    assert status["decision"] == "RollBack"
    assert stamp(status["decidedAt"]) == stamp(crashed["status"]["decidedAt"])
    assert [(e["id"], e["outcome"]) for e in status["interventions"]] == [
        ("abort-1", "rolled back: all traffic on champion")
    ]
    assert weights == {"champion": 100, "challenger": 0}
    applied = next(c for c in status["conditions"] if c["type"] == "DecisionApplied")
    assert applied["status"] == "True"
    announced = events(control_plane, namespace, "Abort")
    assert len(announced) == 1
    assert announced[0]["message"] == (
        "Abort asked by alice (bad outputs): rolled back: all traffic on champion"
    )
    assert not events(control_plane, namespace, "RollBack")  # the request's Event is the decision's


def test_a_request_on_a_decided_experiment_is_declined_once_and_a_malformed_one_is_said_once(
    control_plane: ControlPlane,
    namespace: str,
    gateway: GatewayProcess,  # noqa: F811
) -> None:
    deps = deps_for(control_plane, gateway, gateway.url)

    async def scenario() -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        try:
            await given_a_running_experiment(control_plane, namespace, deps)
            # Given an experiment a person aborted
            annotate(control_plane, namespace, request(Action.ABORT, "abort-1"))
            await passes(control_plane, namespace, deps, 2)
            # When the annotation is overwritten with something that is not a request
            annotate(control_plane, namespace, '{"action": "Promote"}')
            malformed = await passes(control_plane, namespace, deps, 3)
            # and then with a promotion
            annotate(control_plane, namespace, request(Action.PROMOTE, "promote-1", "changed my mind"))
            declined = await passes(control_plane, namespace, deps, 3)
            route = await deps.router.get(namespace, "crashed")
            assert route is not None
            return malformed, declined, {v.name: v.weight for v in route.variants}
        finally:
            await close_deps(deps)

    malformed, declined, weights = asyncio.run(scenario())
    # Then the malformed annotation is said once, as an Event and a condition, and otherwise ignored
    readable = next(c for c in malformed["status"]["conditions"] if c["type"] == "InterventionReadable")
    assert readable["status"] == "False"
    assert "not a valid request" in readable["message"]
    assert len(events(control_plane, namespace, "MalformedIntervention")) == 1
    assert [e["id"] for e in malformed["status"]["interventions"]] == ["abort-1"]
    # and the promotion is declined once, naming the decision, which stands
    status = declined["status"]
    assert "InterventionReadable" not in {c["type"] for c in status["conditions"]}
    assert status["decision"] == "RollBack"
    assert weights == {"champion": 100, "challenger": 0}
    assert [e["id"] for e in status["interventions"]] == ["abort-1", "promote-1"]
    assert status["interventions"][1]["outcome"] == (
        "declined: the experiment is already decided (RollBack: aborted by alice: bad outputs)"
    )
    refused = events(control_plane, namespace, "InterventionDeclined")
    assert len(refused) == 1
    assert refused[0]["type"] == "Warning"
    assert refused[0]["message"].startswith("Promote asked by alice (changed my mind): declined:")
