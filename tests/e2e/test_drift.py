"""Drift after promotion: the Experiment that promoted an adapter keeps watching it against its own
post-promotion baseline, and rolls the track back to the previous champion when it regresses."""

from __future__ import annotations

import json
import time
import uuid
from pathlib import Path
from typing import Any

from devstack.agents import Population
from devstack.demo import demo_policy, routed
from devstack.runtime import LocalRuntime
from tests.e2e.conftest import World
from tests.e2e.test_failures import use_fast_trainer

GOOD, BAD = 0.85, 0.15  # the simulated users' pass rate with the adapter, before and after it drifts


def drift(world: World, reason: str) -> dict[str, Any] | None:
    condition = world.condition("experiment", "drift-0001", "Drift")
    return condition if condition and condition["reason"] == reason else None


def promote(world: World, agents: Population) -> dict[str, Any]:
    """Agents do better with the adapter than with the plain base model until the Experiment promotes
    it. After each round the decision gets a moment to land, so no round runs past it."""
    for _ in range(12):
        agents.scripted(40, {"kaizen-tiny": 0.3, "drift-0001": GOOD})
        deadline = time.monotonic() + 4
        while time.monotonic() < deadline:
            exp = world.get("experiment", "drift-0001") or {}
            if (exp.get("status") or {}).get("decision") in ("Promote", "RollBack", "Inconclusive"):
                return exp
            time.sleep(0.25)
    raise AssertionError("drift-0001 undecided after 12 rounds")


def given_a_served_and_routed_first_adapter(world: World, fast_python: Path, tmp_path: Path) -> Population:
    """A policy whose first adapter (the one-second trainer's) is served and routed, deciding and
    watching over windows of 20 rewards; the agents of its track."""
    use_fast_trainer(world, fast_python)
    agent = f"drift-{uuid.uuid4().hex[:6]}"
    policy = demo_policy("drift", agent, world.storage, min_pairs=1_000_000)
    policy["spec"]["rollout"]["minSamplesPerVariant"] = 20
    world.apply(policy)
    agents = Population(world.gateway.url, world.token, world.namespace, "drift", agent, seed=5)
    assert agents.post_pairs(16, seed=1) > 0
    world.kubectl("annotate", "learningpolicy", "drift", "kaizen.dev/train-now=1")
    world.wait_until(
        "drift-0001 serving",
        lambda: (c := world.condition("shadowmodel", "drift-0001")) and c["status"] == "True",
        timeout=180,
    )
    world.wait_until("the Experiment routed", lambda: routed(world.get("experiment", "drift-0001")))
    return agents


def given_it_promoted_to_champion_and_watched(world: World, agents: Population) -> None:
    exp = promote(world, agents)
    assert exp["status"]["decision"] == "Promote", exp["status"]["decisionReason"]
    world.wait_until(
        "drift-0001 champion",
        lambda: ((world.get("learningpolicy", "drift") or {}).get("status") or {}).get("champion"),
    )
    waiting = world.wait_until("the watch to start", lambda: drift(world, "WaitingForTraffic"))
    assert waiting["status"] == "Unknown"


def then_the_regression_is_recorded_and_routed_away(world: World, agents: Population) -> None:
    regressed = world.wait_until("the drift rollback", lambda: drift(world, "Regressed"), timeout=30)
    assert regressed["status"] == "True"
    assert regressed["message"].startswith("rolled back to variant champion (kaizen-tiny): drift-0001 ")
    assert regressed["message"].endswith("the champion regressed")
    assert agents.scripted(20, {"kaizen-tiny": 0.3, "drift-0001": BAD}) == {"kaizen-tiny": 20}
    route = world.route_config("drift")
    assert route.get("experiment") is None  # settled: its traffic is no longer counted
    assert {v["name"]: v["weight"] for v in route["variants"]} == {"champion": 100, "challenger": 0}


def then_the_adapter_is_rolled_back_with_the_evidence(world: World) -> None:
    shadow = (world.get("shadowmodel", "drift-0001") or {})["status"]
    assert shadow["role"] == "RolledBack"
    evidence = shadow["rollbackEvidence"]
    assert evidence["experiment"] == "drift-0001"
    assert evidence["reason"].startswith("drift after promotion: ")
    assert evidence["samples"] == 20
    assert evidence["meanDelta"] < -0.4
    # its deployment still serves the route's champion (the plain base model), so it keeps its endpoint
    assert shadow["endpoint"]
    status = (world.get("experiment", "drift-0001") or {})["status"]
    assert status["decision"] == "Promote"
    assert {v["name"]: v["weight"] for v in status["variants"]} == {"champion": 100, "challenger": 0}
    assert status["challengerWeight"] == 0  # kubectl's SHARE column


def then_the_policy_has_no_champion_and_the_reign_is_closed(world: World) -> None:
    policy_status = (world.get("learningpolicy", "drift") or {})["status"]
    assert "champion" not in policy_status
    assert policy_status["lineage"][0]["shadowModel"] == "drift-0001"
    assert policy_status["lineage"][0]["retiredAt"]
    assert "drift" in policy_status["lineage"][0]["reason"]


def then_a_warning_event_says_so(world: World) -> None:
    events = json.loads(world.kubectl("get", "events", "-o", "json"))["items"]
    rollbacks = [e for e in events if e["reason"] == "DriftRollback"]
    assert [(e["type"], e["involvedObject"]["name"]) for e in rollbacks] == [("Warning", "drift-0001")]


def test_a_promoted_adapter_that_regresses_is_rolled_back_to_the_previous_champion(
    world: World, runtime: LocalRuntime, fast_python: Path, tmp_path: Path
) -> None:
    # Given a policy whose first adapter (the one-second trainer's) is served and routed, deciding and
    # watching over windows of 20 rewards
    agents = given_a_served_and_routed_first_adapter(world, fast_python, tmp_path)
    # And the adapter promoted over the plain base model, the policy's champion
    given_it_promoted_to_champion_and_watched(world, agents)
    # When agents keep doing as well with it as before, the watch sees no drift
    assert agents.scripted(50, {"drift-0001": GOOD}) == {"drift-0001": 50}
    steady = world.wait_until("the watch to judge", lambda: drift(world, "NoDrift"), timeout=30)
    assert steady["status"] == "False"
    assert ((world.get("shadowmodel", "drift-0001") or {}).get("status") or {})["role"] == "Champion"
    # When their rewards with it drop well below its post-promotion baseline
    agents.scripted(30, {"drift-0001": BAD})
    # Then the Experiment records the regression, and the route sends everything to the plain base
    # model again (still served by the adapter's deployment, which stays up while routed)
    then_the_regression_is_recorded_and_routed_away(world, agents)
    # And the adapter is RolledBack with the evidence, the experiment still records its promotion
    then_the_adapter_is_rolled_back_with_the_evidence(world)
    # And the policy's champion is the plain base model again (none), the adapter's reign closed
    then_the_policy_has_no_champion_and_the_reign_is_closed(world)
    # And a Warning Event says so
    then_a_warning_event_says_so(world)
