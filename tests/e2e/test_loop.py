"""The whole loop on one machine: pairs → TrainingRun (a real Ray job via the RayJob stand-in) →
ShadowModel (a real model server via the InferenceService stand-in) → Experiment fed by traffic through
the router → Promote; and a regressing challenger rolled back with the champion restored."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx

from devstack.agents import Population
from devstack.demo import demo_policy, routed
from devstack.runtime import LocalRuntime
from tests.e2e.conftest import World


def decided(world: World, name: str) -> dict[str, Any] | None:
    exp = world.get("experiment", name)
    status = (exp or {}).get("status") or {}
    return exp if status.get("decision") in ("Promote", "RollBack", "Inconclusive") else None


def test_full_loop_trains_serves_experiments_and_promotes_then_rolls_back_a_regression(
    world: World, runtime: LocalRuntime, tmp_path: Path
) -> None:
    agent = f"coder-{uuid.uuid4().hex[:6]}"
    agents = Population(world.gateway.url, world.token, world.namespace, "coder", agent, seed=7)
    # Given a policy that trains after 60 new approved pairs, and the pairs
    world.apply(demo_policy("coder", agent, tmp_path, min_pairs=60))
    assert agents.post_pairs(96, seed=1) >= 60
    # Then a TrainingRun trains on a real Ray job and passes the offline gate
    world.wait_until(
        "coder-0001 to succeed",
        lambda: (c := world.condition("trainingrun", "coder-0001")) and c["status"] == "True" and c,
        timeout=600,
    )
    run = world.get("trainingrun", "coder-0001")
    assert run is not None
    assert run["status"]["adapter"]["digest"].startswith("sha256:")
    assert run["status"]["dataset"]["trainRows"] > 0
    assert run["status"]["metrics"]["preferenceAccuracy"] >= 0.5
    # And its ShadowModel is served, and an Experiment against the plain base opens on the policy's route
    world.wait_until(
        "coder-0001 to serve",
        lambda: (c := world.condition("shadowmodel", "coder-0001")) and c["status"] == "True" and c,
        timeout=300,
    )
    world.wait_until(
        "the Experiment routed", lambda: routed(world.get("experiment", "coder-0001")), timeout=60
    )
    # When agents do better with the adapter than with the plain base model
    served = agents.work(160, {"kaizen-tiny": 0.4, "coder-0001": 0.8})
    assert set(served) == {"kaizen-tiny", "coder-0001"}
    # Then the challenger is promoted and becomes the policy's champion
    exp = world.wait_until("a decision on coder-0001", lambda: decided(world, "coder-0001"), timeout=120)
    assert exp["status"]["decision"] == "Promote", exp["status"]["decisionReason"]
    policy = world.wait_until(
        "the policy's champion",
        lambda: (p := world.get("learningpolicy", "coder"))
        and (p["status"].get("champion") or {}).get("shadowModel") == "coder-0001"
        and p,
    )
    assert policy["status"]["lineage"][0]["shadowModel"] == "coder-0001"
    shadow = world.wait_until(
        "coder-0001 to be Champion",
        lambda: (s := world.get("shadowmodel", "coder-0001")) and s["status"].get("role") == "Champion" and s,
    )
    assert shadow["status"]["endpoint"]
    # When a second adapter is trained and agents do worse with it
    assert agents.post_pairs(96, seed=3) >= 60
    world.wait_until(
        "coder-0002 to serve",
        lambda: (c := world.condition("shadowmodel", "coder-0002")) and c["status"] == "True" and c,
        timeout=900,
    )
    world.wait_until(
        "the second Experiment routed", lambda: routed(world.get("experiment", "coder-0002")), timeout=60
    )
    agents.work(160, {"coder-0001": 0.8, "coder-0002": 0.3})
    # Then it is rolled back, with its evidence, and the champion serves every request again
    exp = world.wait_until("a decision on coder-0002", lambda: decided(world, "coder-0002"), timeout=120)
    assert exp["status"]["decision"] == "RollBack", exp["status"]["decisionReason"]
    rolled = world.wait_until(
        "coder-0002 RolledBack",
        lambda: (s := world.get("shadowmodel", "coder-0002"))
        and s["status"].get("role") == "RolledBack"
        and s,
    )
    assert rolled["status"]["rollbackEvidence"]["experiment"] == "coder-0002"
    assert agents.work(40, {"coder-0001": 0.8, "coder-0002": 0.3}) == {"coder-0001": 40}
    # and the route belongs to the newest experiment: the decided first one no longer writes it
    route = httpx.get(
        f"{world.gateway.url}/v1/routes/{world.namespace}/coder",
        headers={"Authorization": f"Bearer {world.token}"},
        timeout=10,
    ).json()["config"]
    assert route["experiment"] == f"{world.namespace}/coder-0002"
    assert {v["name"]: v["weight"] for v in route["variants"]} == {"champion": 100, "challenger": 0}
    # and after the whole loop no spec was written by anyone but the test (a write bumps generation)
    for kind in ("learningpolicies", "trainingruns", "shadowmodels", "experiments"):
        for obj in world.items(kind):
            assert obj["metadata"]["generation"] == 1, f"{kind}/{obj['metadata']['name']}"
    assert (world.get("learningpolicy", "coder") or {})["status"]["champion"]["shadowModel"] == "coder-0001"


def test_the_operator_never_writes_a_spec(world: World) -> None:
    # Given a policy and the objects the operator makes from it (a manual trigger starts a run)
    agent = f"spec-{uuid.uuid4().hex[:6]}"
    world.apply(demo_policy("spec", agent, Path("/tmp"), min_pairs=1_000_000))
    world.kubectl("annotate", "learningpolicy", "spec", "kaizen.dev/train-now=1")
    world.wait_until("a run", lambda: world.get("trainingrun", "spec-0001"), timeout=60)
    world.wait_until(
        "the run to be looked at a few times",
        lambda: ((world.get("trainingrun", "spec-0001") or {}).get("status") or {}).get("observedGeneration")
        == 1,
    )
    # Then every object is still at generation 1 (any spec write bumps it), and the only annotations
    # are the operator's own (kaizen.dev/...) and kubectl's
    for kind in ("learningpolicies", "trainingruns"):
        for obj in world.items(kind):
            assert obj["metadata"]["generation"] == 1, obj["metadata"]["name"]
            for key in obj["metadata"].get("annotations", {}):
                assert key.startswith("kaizen.dev/") or key.startswith("kubectl.kubernetes.io/"), key
            assert not obj["metadata"].get("finalizers"), "no finalizer is needed for in-cluster cleanup"
