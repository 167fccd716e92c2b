"""A policy's history limits against a real API server (with its garbage collector), through the
policy reconcile itself: what goes, what stays, and that a champion older than every limit survives.

The track's history is written directly, each object with the status the operator would have given
it (through the status subresource): the full loop would take minutes to leave this much behind.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controllers.api import kinds
from controllers.api.learningpolicy import LearningPolicy
from controllers.reconcile import policies
from controllers.reconcile.deps import Dependencies
from controllers.reconcile.history import prune_history
from controllers.runtime.kube import Kube, Resource, load_configuration
from controllers.store import migrate
from controllers.store.db import make_engine, session_factory
from devstack.controlplane import ControlPlane
from tests.envtest.conftest import VIEWER
from tests.envtest.test_policy_mining import close, operator_for
from tests.schemas import load_examples

EXAMPLES = load_examples()
NOW = "2026-01-01T00:00:00Z"
POLICY = "coder"
LIMITS = {
    "succeededRunsLimit": 2,
    "failedRunsLimit": 1,
    "settledExperimentsLimit": 1,
    "retiredModelsLimit": 2,
}


def condition(
    type_: str, status: str, reason: str, message: str = "as the operator wrote it"
) -> dict[str, Any]:
    return {"type": type_, "status": status, "reason": reason, "message": message, "lastTransitionTime": NOW}


SUCCEEDED = {"completionTime": NOW, "conditions": [condition("Succeeded", "True", "Trained")]}
FAILED = {"completionTime": NOW, "conditions": [condition("Succeeded", "False", "JobFailed")]}
RUNNING = {"attempts": 1, "conditions": [condition("Ready", "Unknown", "Training")]}
APPLIED = condition("DecisionApplied", "True", "Applied")


def role(name: str) -> dict[str, Any]:
    ready = "Serving" if name in ("Champion", "Challenger") else name
    return {"role": name, "conditions": [condition("Ready", "True", ready)]}


# The track: coder-0001 trained the champion, which is the oldest of everything.
RUNS = {
    1: SUCCEEDED,
    2: SUCCEEDED,
    3: FAILED,
    4: FAILED,
    5: SUCCEEDED,
    6: SUCCEEDED,
    7: SUCCEEDED,
    8: RUNNING,
}
MODELS = {1: "Champion", 2: "RolledBack", 5: "Retired", 6: "RolledBack", 7: "Challenger"}
RUN_OWNED = {5}  # made while the policy was away: owned by its run, as children.shadow_model does then
EXPERIMENTS: dict[int, dict[str, Any]] = {
    1: {"decision": "Promote", "conditions": [APPLIED, condition("Drift", "False", "Superseded")]},
    2: {"decision": "RollBack", "conditions": [APPLIED]},
    5: {"decision": "Inconclusive", "conditions": [APPLIED]},
    6: {"decision": "RollBack", "conditions": [APPLIED]},
    7: {"decision": "Continue"},  # still deciding: coder-0007 against the champion
}


def name(number: int) -> str:
    return f"{POLICY}-{number:04d}"


def owner(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [kinds.owner(body)]


async def create(
    kube: Kube, resource: Resource, body: dict[str, Any], status: dict[str, Any]
) -> dict[str, Any]:
    made = await kube.create(resource, body)
    meta = made["metadata"]
    await kube.patch_status(resource, meta["namespace"], meta["name"], {"observedGeneration": 1, **status})
    return made


def child(kind: str, number: int, namespace: str, owners: list[dict[str, Any]]) -> dict[str, Any]:
    body = json.loads(json.dumps(EXAMPLES[kind]))
    body["metadata"] = {"name": name(number), "namespace": namespace, "ownerReferences": owners,
                        "labels": {kinds.POLICY_LABEL: POLICY}}  # fmt: skip
    body["spec"]["policyRef"] = POLICY
    if kind == "ShadowModel":
        body["spec"]["trainingRunRef"] = name(number)
    if kind == "Experiment":
        variants = body["spec"]["variants"]
        variants[0]["shadowModel"], variants[1]["shadowModel"] = name(1), name(number)
        if number == 1:  # the first model was compared with the plain base model
            variants[0] = {
                "name": "champion",
                "role": "Champion",
                "endpoint": "http://base:8000/v1",
                "model": "base",
            }
    return body


async def given_a_track_beyond_its_limits(kube: Kube, namespace: str) -> None:
    policy = json.loads(json.dumps(EXAMPLES["LearningPolicy"]))
    policy["metadata"] = {"name": POLICY, "namespace": namespace}
    policy["spec"]["history"] = LIMITS
    policy["spec"]["trigger"] = {"minNewPairs": 1_000_000}  # no run of its own in this test
    champion = {"champion": {"shadowModel": name(1), "since": NOW},
                "lineage": [{"shadowModel": name(1), "trainingRun": name(1), "promotedAt": NOW}]}  # fmt: skip
    made = await create(kube, kinds.POLICIES, policy, champion)
    runs = {n: await create(kube, kinds.RUNS, child("TrainingRun", n, namespace, owner(made)), status)
            for n, status in RUNS.items()}  # fmt: skip
    for number, role_name in MODELS.items():
        owners = owner(runs[number] if number in RUN_OWNED else made)
        await create(
            kube, kinds.SHADOW_MODELS, child("ShadowModel", number, namespace, owners), role(role_name)
        )
    for number, status in EXPERIMENTS.items():
        await create(kube, kinds.EXPERIMENTS, child("Experiment", number, namespace, owner(made)), status)
    # What a run's RayJob is to the garbage collector: a child that goes when the run goes.
    job = {"apiVersion": "v1", "kind": "ConfigMap",
           "metadata": {"name": f"{name(2)}-job", "namespace": namespace, "ownerReferences": owner(runs[2])}}  # fmt: skip
    await kube.create(Resource("", "v1", "configmaps"), job)


async def reconcile(plane: ControlPlane, namespace: str, deps: Dependencies) -> list[tuple[str, str, str]]:
    """One policy reconcile, as the operator runs it, on the policy as the server holds it."""
    body = json.loads(plane.kubectl("get", "learningpolicy", POLICY, "-n", namespace, "-o", "json").stdout)
    outcome = await policies.reconcile(body, LearningPolicy.model_validate(body), deps)
    return [event for event in outcome.events if event[1] == "HistoryPruned"]


def left(plane: ControlPlane, namespace: str, kind: str) -> list[str]:
    got = plane.kubectl("get", kind, "-n", namespace, "-o", "json")
    return sorted(item["metadata"]["name"] for item in json.loads(got.stdout)["items"])


def eventually(check: Callable[[], bool], seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "not within the deadline"
        time.sleep(0.2)


def numbers(*wanted: int) -> list[str]:
    return [name(n) for n in wanted]


def test_history_beyond_the_limits_is_deleted_and_the_champion_survives(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'kaizen.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    operator = operator_for(control_plane, namespace, engine, session_factory(engine), tmp_path)

    async def scenario() -> None:
        try:
            await steps()
        finally:
            await close(operator)

    async def steps() -> None:
        kube = operator.deps.kube
        await given_a_track_beyond_its_limits(kube, namespace)
        events = await reconcile(control_plane, namespace, operator.deps)
        assert [message for _, _, message in events] == [
            "deleted 2 TrainingRuns, 1 ShadowModel, 2 Experiments beyond the history limits (spec.history)"
        ]
        # Runs: the champion's (the oldest), the newest failed, the run that owns a model that stays,
        # the newest two succeeded and the one still training.
        assert left(control_plane, namespace, "trainingruns") == numbers(1, 4, 5, 6, 7, 8)
        assert left(control_plane, namespace, "shadowmodels") == numbers(1, 5, 6, 7)
        # Experiments: the one that promoted the champion, the newest settled, the one still deciding.
        assert left(control_plane, namespace, "experiments") == numbers(1, 6, 7)
        # The garbage collector takes the deleted run's job, and nothing that stays goes with it.
        eventually(lambda: not left(control_plane, namespace, "configmaps").count(f"{name(2)}-job"))
        assert left(control_plane, namespace, "shadowmodels") == numbers(1, 5, 6, 7)
        assert await reconcile(control_plane, namespace, operator.deps) == []  # nothing more to delete

        # Limits of 0: only what is protected stays.
        zero = {key: 0 for key in LIMITS}
        control_plane.kubectl("patch", "learningpolicy", POLICY, "-n", namespace, "--type=merge",
                              "-p", json.dumps({"spec": {"history": zero}}))  # fmt: skip
        events = await reconcile(control_plane, namespace, operator.deps)
        assert [message for _, _, message in events] == [
            "deleted 3 TrainingRuns, 2 ShadowModels, 1 Experiment beyond the history limits (spec.history)"
        ]
        assert left(control_plane, namespace, "trainingruns") == numbers(1, 7, 8)
        assert left(control_plane, namespace, "shadowmodels") == numbers(1, 7)
        assert left(control_plane, namespace, "experiments") == numbers(1, 7)

    try:
        asyncio.run(scenario())
    finally:
        engine.dispose()


def test_a_pass_that_may_not_read_or_delete_costs_the_policy_nothing(
    control_plane: ControlPlane, namespace: str, tmp_path: Path
) -> None:
    # An operator whose Role lacks a verb (here: a user with no RBAC at all) logs the refusal and
    # reports nothing; the policy's reconcile goes on, and the next poll tries again.
    viewer = Kube(load_configuration(str(control_plane.write_kubeconfig(tmp_path / "viewer.yaml", VIEWER))))
    policy = json.loads(json.dumps(EXAMPLES["LearningPolicy"]))
    body = {"metadata": {"name": POLICY, "namespace": namespace}}

    async def prune() -> list[tuple[str, str, str]]:
        try:
            return await prune_history(viewer, body, LearningPolicy.model_validate(policy), [])
        finally:
            await viewer.close()

    assert asyncio.run(prune()) == []
