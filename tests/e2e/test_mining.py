"""Zero-touch pairs: agents only report runs and people's corrections; the policy mines its pairs with
the sources it enables (explicit pairs switched off) and trains on them."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

from devstack.agents import Population
from devstack.demo import demo_policy
from devstack.runtime import LocalRuntime
from tests.e2e.conftest import World
from tests.e2e.test_failures import use_fast_trainer


def data(world: World, name: str) -> dict[str, Any]:
    return dict((((world.get("learningpolicy", name) or {}).get("status") or {}).get("data")) or {})


def mined_events(world: World) -> int:
    """New pairs the policy's PairsMined Events announced, in total."""
    events = json.loads(
        world.kubectl("get", "events", "--field-selector", "involvedObject.name=mining", "-o", "json")
    )
    return sum(int(e["message"].split()[0]) for e in events["items"] if e["reason"] == "PairsMined")


def test_a_policy_mines_runs_and_corrections_into_pairs_and_trains_on_them(
    world: World, runtime: LocalRuntime, fast_python: Path, tmp_path: Path
) -> None:
    # Given a policy that trains after 10 new pairs and does not take pairs agents post themselves
    use_fast_trainer(world, fast_python)
    agent = f"miner-{uuid.uuid4().hex[:6]}"
    agents = Population(world.gateway.url, world.token, world.namespace, "mining", agent, seed=11)
    policy = demo_policy("mining", agent, world.storage, min_pairs=10)
    policy["spec"]["pairSources"] = {"explicit": False}
    world.apply(policy)
    # and 12 explicit pairs, which it shows but does not count
    assert agents.post_pairs(12, seed=2) == 12
    world.wait_until("the explicit pairs counted", lambda: data(world, "mining").get("pairsBySource"))
    assert data(world, "mining")["pairsBySource"] == {"explicit": 12}
    assert data(world, "mining")["approvedPairs"] == 0
    assert world.items("trainingruns") == []
    assert "waiting for data: 0/10" in (world.condition("learningpolicy", "mining") or {})["message"]
    # When agents report only runs: two attempts per task with different test results, and a person
    # corrects a few wrong answers
    assert agents.report_attempts(8, seed=5, corrected=4) == {"runs": 20, "feedback": 4}
    # Then the policy mines a pair per task, by source, and starts a TrainingRun on them
    run = world.wait_until("a TrainingRun", lambda: world.get("trainingrun", "mining-0001"), timeout=60)
    assert run["spec"]["trigger"] == "Threshold"
    mined = {"rewardGap": 4, "errorRecovery": 4, "humanCorrection": 4}
    status = world.wait_until(
        "the mined pairs counted", lambda: (d := data(world, "mining")).get("approvedPairs") == 12 and d
    )
    assert status["pairsBySource"] == {"explicit": 12, **mined}
    mining = world.condition("learningpolicy", "mining", "Mining") or {}
    assert (mining["status"], mining["reason"]) == ("True", "Mined")
    assert mined_events(world) == 12  # one Event per mining that found new pairs (runs, then feedback)
    # and the run trains on the mined pairs alone, none of the explicit ones
    trained = world.wait_until(
        "mining-0001 to succeed",
        lambda: (c := world.condition("trainingrun", "mining-0001")) and c["status"] == "True" and c,
        timeout=120,
    )
    assert trained["reason"] == "Succeeded"
    dataset = (world.get("trainingrun", "mining-0001") or {})["status"]["dataset"]
    assert dataset["trainRows"] + dataset["evalRows"] == 12
    # and polling on without new experience mines nothing new
    world.wait_until(
        "a few more policy reconciles",
        lambda: (data(world, "mining").get("observedAt") or "") > status["observedAt"],
    )
    assert mined_events(world) == 12
    assert data(world, "mining")["approvedPairs"] == 12
