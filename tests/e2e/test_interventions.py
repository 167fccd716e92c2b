"""A person on call acts on a live Experiment through the CLI, against the real API server, the real
operator process and the real router: promote, abort (the challenger at 0 % within 2 s), approve and
pause/resume, each (but the timed abort) with the operator killed (SIGKILL) right after the request is
written and started again: every request is answered once, with one Event, and its effect holds.

Each test trains its policy's first model with the one-second trainer stand-in (``fastjob``), so the
experiment is live in about a minute; the CLI runs in-process (``CliRunner``) with the plane's
kubeconfig, as a person's shell would run ``kaizen``.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from controllers.cli.main import app
from devstack.agents import Population
from devstack.controlplane import ADMIN
from devstack.demo import demo_policy, routed
from devstack.runtime import LocalRuntime
from tests.e2e.conftest import World
from tests.e2e.on_call import events, the_answer
from tests.e2e.test_failures import use_fast_trainer
from tests.e2e.test_loop import ready

BASE = "kaizen-tiny"  # the policy's first champion: the plain base model


def kaizen(world: World, *args: str) -> Result:
    """``kaizen ARGS -n <the test's namespace>``, as the plane's admin."""
    runner = CliRunner(env={"KUBECONFIG": str(world.plane.kubeconfig)})
    return runner.invoke(app, [*args, "-n", world.namespace])


def ok(result: Result) -> str:
    """The command's output, once it is known to have succeeded."""
    assert result.exit_code == 0, f"{result.output}{result.exception!r}"
    return result.output.strip()


def given_a_live_experiment(
    world: World, fast_python: Path, tmp_path: Path, policy: str, **rollout: Any
) -> tuple[str, Population]:
    """A policy whose first model is trained, served and in an Experiment that routes traffic; the
    experiment's name and the agents that call its route."""
    use_fast_trainer(world, fast_python)
    agent = f"{policy}-{uuid.uuid4().hex[:6]}"
    spec = demo_policy(policy, agent, world.storage, min_pairs=1_000_000)
    spec["spec"]["rollout"].update(minSamplesPerVariant=20, **rollout)
    world.apply(spec)
    assert Population(world.gateway.url, world.token, world.namespace, policy, agent).post_pairs(16, seed=1)
    world.kubectl("annotate", "learningpolicy", policy, "kaizen.dev/train-now=1")
    name = f"{policy}-0001"
    world.wait_until(f"{name} to serve", lambda: ready(world, "shadowmodel", name), timeout=240)
    world.wait_until(f"experiment {name} routed", lambda: routed(world.get("experiment", name)), timeout=90)
    return name, Population(world.gateway.url, world.token, world.namespace, policy, agent, seed=2)


def status(world: World, name: str) -> dict[str, Any]:
    return dict(((world.get("experiment", name) or {}).get("status")) or {})


def weights(world: World, policy: str) -> dict[str, int]:
    return {v["name"]: v["weight"] for v in world.route_config(policy)["variants"]}


def then_it_is_promoted_once_with_every_effect(world: World, policy: str, name: str, reason: str) -> None:
    decided = world.wait_until(
        "a decision", lambda: (s := status(world, name)).get("decision") not in (None, "Continue") and s
    )
    assert decided["decision"] == "Promote"
    assert decided["decisionReason"] == f"promoted by {ADMIN}: {reason}"
    world.wait_until(
        "the policy's champion",
        lambda: ((world.get("learningpolicy", policy) or {}).get("status") or {})
        .get("champion", {})
        .get("shadowModel")
        == name,
    )
    world.wait_until(
        "the decision applied",
        lambda: any(
            c["type"] == "DecisionApplied" and c["status"] == "True"
            for c in status(world, name)["conditions"]
        ),
    )
    assert (world.get("shadowmodel", name) or {})["status"]["role"] == "Champion"
    assert weights(world, policy) == {"champion": 0, "challenger": 100}
    records = status(world, name)["interventions"]
    assert [(r["action"], r["outcome"]) for r in records] == [
        ("Promote", "promoted: all traffic on challenger")
    ]
    assert len(events(world, name, "Promote")) == 1


def test_abort_sends_every_request_to_the_champion_within_two_seconds(
    world: World, runtime: LocalRuntime, fast_python: Path, tmp_path: Path
) -> None:
    # Given a live experiment splitting the policy's traffic 50/50
    name, agents = given_a_live_experiment(world, fast_python, tmp_path, "abort")
    assert weights(world, "abort") == {"champion": 50, "challenger": 50}
    # When a person aborts it (the CLI waits for the answer while the route is watched). The CLI has
    # run once in this process first, so its one-time imports are not counted as the route's delay.
    assert ok(kaizen(world, "get", "experiment", name)).startswith("NAME")
    answer: list[Result] = []
    cli = threading.Thread(
        target=lambda: answer.append(kaizen(world, "abort", "exp", name, "--reason", "bad outputs"))
    )
    asked = time.monotonic()  # before the request is written: the measure errs on the long side
    cli.start()
    world.wait_until("the challenger at 0 %", lambda: weights(world, "abort")["challenger"] == 0, timeout=10)
    took = time.monotonic() - asked
    cli.join()
    # Then within 2 s the router gives the challenger nothing, and serves the champion alone
    print(f"\nabort: the challenger at 0 % {took:.2f}s after the request")
    assert took < 2.0, f"the route took {took:.2f}s"
    assert agents.scripted(20, {BASE: 0.5, name: 0.5}) == {BASE: 20}
    # and the CLI printed the operator's answer
    assert ok(answer[0]) == (f"experiment.kaizen.dev/{name} aborted: rolled back: all traffic on champion")
    # and the decision, the challenger's role, the record and the Event all say who and why
    decided = status(world, name)
    assert decided["decision"] == "RollBack"
    assert decided["decisionReason"] == f"aborted by {ADMIN}: bad outputs"
    world.wait_until(
        f"{name} RolledBack",
        lambda: ((world.get("shadowmodel", name) or {}).get("status") or {}).get("role") == "RolledBack",
    )
    assert [r["outcome"] for r in decided["interventions"]] == ["rolled back: all traffic on champion"]
    (event,) = events(world, name, "Abort")
    assert event["message"] == (f"Abort asked by {ADMIN} (bad outputs): rolled back: all traffic on champion")
    # and a second abort is refused before anything is written
    again = kaizen(world, "abort", "experiment", name)
    assert again.exit_code == 1
    assert f"experiment {name} is already decided: RollBack (aborted by {ADMIN}: bad outputs)" in again.output
    assert len(status(world, name)["interventions"]) == 1


def answered_or_written(world: World, result: Result, verb: str, name: str, answer: str) -> None:
    """The CLI (``--wait 0``, the operator killed at once) printed the operator's answer, or that the
    request is written and where to look: the operator may have answered before the CLI's one look
    (the kill then came after the answer), and the test accepts both."""
    said = ok(result)
    assert said == f"experiment.kaizen.dev/{name} {answer}" or (
        f"{verb} request {verb}-" in said
        and f"kaizen describe experiment {name} -n {world.namespace}" in said
    ), said


def then_it_is_rolled_back_once_with_every_effect(
    world: World, policy: str, name: str, reason: str, agents: Population
) -> None:
    decided = world.wait_until(
        "a decision", lambda: (s := status(world, name)).get("decision") not in (None, "Continue") and s
    )
    assert decided["decision"] == "RollBack"
    assert decided["decisionReason"] == f"aborted by {ADMIN}: {reason}"
    world.wait_until(
        "the decision applied",
        lambda: any(
            c["type"] == "DecisionApplied" and c["status"] == "True"
            for c in status(world, name)["conditions"]
        ),
    )
    assert (world.get("shadowmodel", name) or {})["status"]["role"] == "RolledBack"
    assert weights(world, policy).get("challenger", 0) == 0
    assert agents.scripted(10, {BASE: 0.5, name: 0.5}) == {BASE: 10}
    champion = ((world.get("learningpolicy", policy) or {}).get("status") or {}).get("champion") or {}
    assert champion.get("shadowModel") != name
    records = status(world, name)["interventions"]
    assert [(r["action"], r["outcome"]) for r in records] == [
        ("Abort", "rolled back: all traffic on champion")
    ]
    assert len(events(world, name, "Abort")) == 1


@pytest.mark.parametrize(
    ("verb", "answer"),
    [
        ("promote", "promoted: all traffic on challenger"),
        ("abort", "aborted: rolled back: all traffic on champion"),
    ],
    ids=["promote", "abort"],
)
def test_promote_or_abort_survives_an_operator_killed_right_after_the_request_is_written(
    world: World, runtime: LocalRuntime, fast_python: Path, tmp_path: Path, verb: str, answer: str
) -> None:
    # Given a live experiment with no evidence either way
    name, agents = given_a_live_experiment(world, fast_python, tmp_path, verb)
    # When a person promotes (aborts) it without waiting, and the operator is killed at once
    written = kaizen(world, verb, "experiments", name, "--reason", "hotfix", "--wait", "0")
    world.operator.kill()
    answered_or_written(world, written, verb, name, answer)
    world.operator.start()
    # Then it is decided exactly once, and every effect is in place: roles, champion, lineage, route
    if verb == "abort":
        then_it_is_rolled_back_once_with_every_effect(world, verb, name, "hotfix", agents)
        return
    then_it_is_promoted_once_with_every_effect(world, verb, name, "hotfix")
    lineage = (world.get("learningpolicy", verb) or {})["status"]["lineage"]
    assert lineage[0]["shadowModel"] == name
    assert len(events(world, name, "Promote")) == 1


def test_approve_promotes_a_winner_that_waits_for_a_person(
    world: World, runtime: LocalRuntime, fast_python: Path, tmp_path: Path
) -> None:
    # Given a live experiment that may not promote by itself
    name, agents = given_a_live_experiment(world, fast_python, tmp_path, "approve", autoPromote=False)
    # Then approving is refused while nothing awaits approval
    early = kaizen(world, "approve", "exp", name)
    assert early.exit_code == 1
    assert f"nothing awaits approval on experiment {name}" in early.output

    # When agents do clearly better with the challenger, until the experiment waits for a person
    def awaiting() -> bool:
        agents.scripted(20, {BASE: 0.3, name: 0.95})
        conditions = status(world, name).get("conditions", [])
        return any(c["type"] == "Ready" and c["reason"] == "AwaitingApproval" for c in conditions)

    world.wait_until("AwaitingApproval", awaiting, timeout=240)
    assert status(world, name)["decision"] == "Continue"
    # and a person approves, and the operator is killed right after the request is written
    approved = kaizen(world, "approve", "exp", name, "--reason", "read the transcripts", "--wait", "0")
    world.operator.kill()
    answered_or_written(world, approved, "approve", name, "approved: Promote")
    world.operator.start()
    # Then it is promoted once, as autoPromote would have, the approval named in the decision
    assert the_answer(world, "experiment", name, "Approve")["outcome"] == "approved: Promote"
    decided = status(world, name)
    assert decided["decision"] == "Promote"
    assert decided["decisionReason"].endswith(f", promoted; approved by {ADMIN}: read the transcripts")
    world.wait_until(
        "the policy's champion",
        lambda: ((world.get("learningpolicy", "approve") or {}).get("status") or {})
        .get("champion", {})
        .get("shadowModel")
        == name,
    )
    world.wait_until(
        "the decision applied",
        lambda: any(
            c["type"] == "DecisionApplied" and c["status"] == "True"
            for c in status(world, name)["conditions"]
        ),
    )
    assert (world.get("shadowmodel", name) or {})["status"]["role"] == "Champion"
    assert weights(world, "approve") == {"champion": 0, "challenger": 100}
    # and crowned once: one lineage entry, one record, one Event
    lineage = (world.get("learningpolicy", "approve") or {})["status"]["lineage"]
    assert [entry["shadowModel"] for entry in lineage].count(name) == 1
    assert len(status(world, name)["interventions"]) == 1
    assert len(events(world, name, "Approve")) == 1


def test_pause_holds_the_weights_and_resume_lets_the_experiment_decide(
    world: World, runtime: LocalRuntime, fast_python: Path, tmp_path: Path
) -> None:
    # Given a live experiment, paused by a person, the operator killed right after the request is written
    name, agents = given_a_live_experiment(world, fast_python, tmp_path, "pause")
    paused = kaizen(world, "pause", "exp", name, "--reason", "incident 42", "--wait", "0")
    world.operator.kill()
    held_at = "weights held at champion 50%, challenger 50%"
    answered_or_written(world, paused, "pause", name, f"paused: {held_at}")
    world.operator.start()
    assert the_answer(world, "experiment", name, "Pause")["outcome"] == held_at
    assert kaizen(world, "pause", "exp", name).exit_code == 1  # already paused

    # When agents do clearly better with the challenger, with more than enough rewards to decide
    def counted() -> bool:
        agents.scripted(20, {BASE: 0.3, name: 0.95})
        rows = status(world, name).get("variants", [])
        return len(rows) == 2 and all(row.get("samples", 0) >= 40 for row in rows)

    world.wait_until("the rewards counted while paused", counted, timeout=240)
    # Then nothing is decided and the weights stay where they were
    held = status(world, name)
    assert held["decision"] == "Continue"
    assert next(c for c in held["conditions"] if c["type"] == "Ready")["reason"] == "Paused"
    assert weights(world, "pause") == {"champion": 50, "challenger": 50}
    # When a person resumes it, and the operator is killed again right after the request is written
    resumed = kaizen(world, "resume", "experiment", name, "--wait", "0")
    world.operator.kill()
    said = ok(resumed)
    assert said.startswith(f"experiment.kaizen.dev/{name} resumed: ") or "resume request resume-" in said, (
        said
    )
    world.operator.start()
    assert the_answer(world, "experiment", name, "Resume")["outcome"].startswith("resumed: ")
    # Then it decides on the evidence gathered meanwhile
    world.wait_until("the promotion", lambda: status(world, name).get("decision") == "Promote", timeout=60)
    # and each request was answered once, with one Event
    assert [r["action"] for r in status(world, name)["interventions"]] == ["Pause", "Resume"]
    assert len(events(world, name, "Pause")) == len(events(world, name, "Resume")) == 1
