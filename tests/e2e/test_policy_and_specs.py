"""A policy turns new approved pairs into a TrainingRun; contradictory specs become conditions."""

from __future__ import annotations

from typing import Any

from devstack.demo import Storage
from tests.e2e.conftest import World


def policy(name: str, storage: Storage, min_new_pairs: int = 5, agent: str = "coder") -> dict[str, Any]:
    return {
        "apiVersion": "kaizen.dev/v1alpha1",
        "kind": "LearningPolicy",
        "metadata": {"name": name},
        "spec": {
            "track": {"agent": agent},
            "trigger": {"minNewPairs": min_new_pairs, "cooldown": "1s"},
            "training": {
                "baseModel": {"name": "kaizen-tiny", "uri": "file:///models/kaizen-tiny"},
                "scaling": {"submission": "RayJob", "gpusPerWorker": 0, "cpusPerWorker": 1},
                "outputUri": storage.output_uri,
                "storage": dict(storage.access),
            },
        },
    }


def pairs(agent: str, count: int, offset: int = 0) -> dict[str, Any]:
    return {
        "pairs": [
            {
                "agent": agent,
                "prompt": f"task {i}: add two numbers",
                "chosen": f"def add(a, b):\n    return a + b  # {i}",
                "rejected": f"def add(a, b):\n    return a - b  # {i}",
            }
            for i in range(offset, offset + count)
        ]
    }


def test_contradictory_experiment_is_reported_as_invalid_spec_naming_the_field(world: World) -> None:
    # Given an ABTest with three variants, which a v1.20 API server (no CEL) stores
    experiment = {
        "apiVersion": "kaizen.dev/v1alpha1",
        "kind": "Experiment",
        "metadata": {"name": "three-way"},
        "spec": {
            "strategy": "ABTest",
            "variants": [
                {"name": "a", "role": "Champion", "endpoint": "http://127.0.0.1:9/v1"},
                {"name": "b", "endpoint": "http://127.0.0.1:9/v1"},
                {"name": "c", "endpoint": "http://127.0.0.1:9/v1"},
            ],
        },
    }
    # When it is applied
    world.apply(experiment)
    # Then the operator reports it, naming the rule, at the current generation, and stays up
    ready = world.wait_until(
        "InvalidSpec on three-way",
        lambda: (c := world.condition("experiment", "three-way")) and c["reason"] == "InvalidSpec" and c,
    )
    assert ready["status"] == "False"
    assert "spec: an ABTest has exactly two variants, one of them the Champion" in ready["message"]
    body = world.get("experiment", "three-way")
    assert body is not None
    assert body["status"]["observedGeneration"] == body["metadata"]["generation"]
    assert world.operator.alive()
    events = world.kubectl("get", "events", "--field-selector", "involvedObject.name=three-way")
    assert "InvalidSpec" in events


def test_policy_starts_a_training_run_when_new_pairs_cross_the_threshold(world: World) -> None:
    # Given a policy that trains after 5 new approved pairs, and 3 pairs so far
    agent = f"coder-{world.namespace}"
    world.apply(policy("coder-dpo", world.storage, min_new_pairs=5, agent=agent))
    assert world.post("/v1/pairs/batch", pairs(agent, 3)).status_code == 200
    waiting = world.wait_until(
        "the policy to count 3 pairs",
        lambda: (p := world.get("learningpolicy", "coder-dpo"))
        and ((p.get("status") or {}).get("data") or {}).get("newApprovedPairs") == 3
        and p,
    )
    assert world.items("trainingruns") == []
    assert "waiting for data: 3/5" in world.condition("learningpolicy", "coder-dpo")["message"]  # type: ignore[index]
    assert waiting["status"]["data"]["pairsBySource"] == {"explicit": 3}
    # When two more arrive
    assert world.post("/v1/pairs/batch", pairs(agent, 2, offset=3)).status_code == 200
    # Then exactly one TrainingRun starts, named after the policy, with the policy's training settings
    runs = world.wait_until("a TrainingRun", lambda: world.items("trainingruns"))
    assert [r["metadata"]["name"] for r in runs] == ["coder-dpo-0001"]
    run = runs[0]
    assert run["spec"]["trigger"] == "Threshold"
    assert run["spec"]["policyRef"] == "coder-dpo"
    assert run["spec"]["training"]["baseModel"]["name"] == "kaizen-tiny"
    assert run["metadata"]["ownerReferences"][0]["kind"] == "LearningPolicy"
    status = world.wait_until(
        "the policy to record its run",
        lambda: (world.get("learningpolicy", "coder-dpo") or {}).get("status", {}).get("lastTrainingRun")
        == "coder-dpo-0001",
    )
    assert status
    # and no second run while the first is in progress, however often the policy is reconciled
    world.wait_until(
        "more reconciles", lambda: world.operator.metrics().count("kaizen_operator_reconciles_total") > 0
    )
    assert len(world.items("trainingruns")) == 1
