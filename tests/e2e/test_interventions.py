"""A person on call acts on a live Experiment through the CLI, against the real API server, the real
operator process and the real router: promote, abort (the challenger at 0 % within 2 s), approve,
pause/resume, and a promotion whose operator is killed (SIGKILL) right after the request is written.

Each test trains its policy's first model with the one-second trainer stand-in (``fastjob``), so the
experiment is live in about a minute; the CLI runs in-process (``CliRunner``) with the plane's
kubeconfig, as a person's shell would run ``kaizen``.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from typer.testing import CliRunner, Result

from controllers.cli.main import app
from devstack.agents import Population
from devstack.controlplane import ADMIN
from devstack.demo import demo_policy, routed
from devstack.runtime import LocalRuntime
from tests.e2e.conftest import World
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
    spec = demo_policy(policy, agent, tmp_path, min_pairs=1_000_000)
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


def events(world: World, name: str, reason: str) -> list[dict[str, Any]]:
    listed = json.loads(world.kubectl("get", "events", "-o", "json"))["items"]
    return [e for e in listed if e["reason"] == reason and e["involvedObject"]["name"] == name]


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
    # When a person aborts it (the CLI waits for the answer while the route is watched)
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
    assert agents.work(20, {BASE: 0.5, name: 0.5}) == {BASE: 20}
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


def test_promote_survives_an_operator_killed_right_after_the_request_is_written(
    world: World, runtime: LocalRuntime, fast_python: Path, tmp_path: Path
) -> None:
    # Given a live experiment with no evidence either way
    name, _ = given_a_live_experiment(world, fast_python, tmp_path, "promote")
    # When a person promotes its challenger without waiting, and the operator is killed at once
    written = kaizen(world, "promote", "experiments", name, "--reason", "hotfix", "--wait", "0")
    world.operator.kill()
    said = ok(written)
    # (the operator may have answered before the CLI's one look; the kill then comes after it)
    answered = f"experiment.kaizen.dev/{name} promoted: all traffic on challenger"
    assert said == answered or (
        "promote request promote-" in said
        and f"kaizen describe experiment {name} -n {world.namespace}" in said
    ), said
    world.operator.start()
    # Then it is promoted exactly once, and every effect is in place: roles, champion, lineage, route
    then_it_is_promoted_once_with_every_effect(world, "promote", name, "hotfix")
    lineage = (world.get("learningpolicy", "promote") or {})["status"]["lineage"]
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
        agents.work(20, {BASE: 0.3, name: 0.95})
        conditions = status(world, name).get("conditions", [])
        return any(c["type"] == "Ready" and c["reason"] == "AwaitingApproval" for c in conditions)

    world.wait_until("AwaitingApproval", awaiting, timeout=240)
    assert status(world, name)["decision"] == "Continue"
    # and a person approves
    approved = kaizen(world, "approve", "exp", name, "--reason", "read the transcripts")
    # Then it is promoted as autoPromote would have, the approval named in the decision
    assert ok(approved) == f"experiment.kaizen.dev/{name} approved: Promote"
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


def test_pause_holds_the_weights_and_resume_lets_the_experiment_decide(
    world: World, runtime: LocalRuntime, fast_python: Path, tmp_path: Path
) -> None:
    # Given a live experiment, paused by a person
    name, agents = given_a_live_experiment(world, fast_python, tmp_path, "pause")
    paused = kaizen(world, "pause", "exp", name, "--reason", "incident 42")
    assert ok(paused) == (
        f"experiment.kaizen.dev/{name} paused: weights held at champion 50%, challenger 50%"
    )
    assert kaizen(world, "pause", "exp", name).exit_code == 1  # already paused

    # When agents do clearly better with the challenger, with more than enough rewards to decide
    def counted() -> bool:
        agents.work(20, {BASE: 0.3, name: 0.95})
        rows = status(world, name).get("variants", [])
        return len(rows) == 2 and all(row.get("samples", 0) >= 40 for row in rows)

    world.wait_until("the rewards counted while paused", counted, timeout=240)
    # Then nothing is decided and the weights stay where they were
    held = status(world, name)
    assert held["decision"] == "Continue"
    assert next(c for c in held["conditions"] if c["type"] == "Ready")["reason"] == "Paused"
    assert weights(world, "pause") == {"champion": 50, "challenger": 50}
    # When a person resumes it
    resumed = kaizen(world, "resume", "experiment", name)
    assert ok(resumed).startswith(f"experiment.kaizen.dev/{name} resumed: ")
    # Then it decides on the evidence gathered meanwhile
    world.wait_until("the promotion", lambda: status(world, name).get("decision") == "Promote", timeout=60)
    assert [r["action"] for r in status(world, name)["interventions"]] == ["Pause", "Resume"]
