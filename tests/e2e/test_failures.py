"""Failures and cleanup: a failing training job is retried and then marked Failed with its reason;
deleting a policy deletes everything it owns (the garbage collector follows the owner references)."""

from __future__ import annotations

import uuid
from pathlib import Path

from devstack.agents import Population
from devstack.demo import demo_policy
from devstack.runtime import LocalRuntime
from tests.e2e.conftest import World


def use_fast_trainer(world: World, fast_python: Path) -> None:
    world.operator.stop()
    world.operator.python = str(fast_python)
    world.operator.start()


def test_a_failing_training_job_is_retried_then_marked_failed_with_its_reason(
    world: World, runtime: LocalRuntime, fast_python: Path, tmp_path: Path
) -> None:
    # Given data, and a TrainingRun by hand whose job always fails, with two attempts 1 s apart
    use_fast_trainer(world, fast_python)
    agent = f"fail-{uuid.uuid4().hex[:6]}"
    assert Population(world.gateway.url, world.token, world.namespace, "x", agent).post_pairs(8, seed=5) > 0
    training = demo_policy("unused", agent, world.storage, min_pairs=1)["spec"]["training"]
    world.apply(
        {
            "apiVersion": "kaizen.dev/v1alpha1",
            "kind": "TrainingRun",
            "metadata": {"name": "will-fail"},
            "spec": {"training": training, "retry": {"maxAttempts": 2, "backoff": "1s"}},
        }
    )
    # Then it is tried twice, one RayJob per attempt, and ends Failed naming why
    ready = world.wait_until(
        "will-fail to fail",
        lambda: (c := world.condition("trainingrun", "will-fail")) and c["reason"] == "JobFailed" and c,
        timeout=240,
    )
    assert ready["status"] == "False"
    assert "attempt 2 of 2 failed" in ready["message"]
    # in one line: the log's last line with the exit code, and where the whole log is
    assert (
        f"fails on purpose (exit code 1). Full log: kaizen logs trainingrun will-fail -n {world.namespace}"
        in ready["message"]
    )
    assert "\n" not in ready["message"]
    run = world.get("trainingrun", "will-fail")
    assert run is not None
    assert run["status"]["attempts"] == 2
    assert run["status"]["completionTime"]
    assert len(world.items("rayjobs")) == 2
    events = world.kubectl("get", "events", "--field-selector", "involvedObject.name=will-fail")
    assert "AttemptFailed" in events
    assert "Failed" in events
    assert world.operator.alive()


def test_deleting_a_policy_deletes_everything_it_owns(
    world: World, runtime: LocalRuntime, fast_python: Path, tmp_path: Path
) -> None:
    # Given a policy whose first run trained, is served and is in an experiment
    use_fast_trainer(world, fast_python)
    agent = f"gc-{uuid.uuid4().hex[:6]}"
    world.apply(demo_policy("gc", agent, world.storage, min_pairs=1_000_000))
    assert Population(world.gateway.url, world.token, world.namespace, "gc", agent).post_pairs(8, seed=6) > 0
    world.kubectl("annotate", "learningpolicy", "gc", "kaizen.dev/train-now=first")
    world.wait_until("the experiment", lambda: world.get("experiment", "gc-0001"), timeout=180)
    assert world.items("inferenceservices")
    assert world.items("rayjobs")
    # When the policy is deleted
    world.kubectl("delete", "learningpolicy", "gc", "--wait=false")
    # Then runs, jobs, shadow models, inference services and experiments all go, none left hanging
    kinds = (
        "learningpolicies",
        "trainingruns",
        "rayjobs",
        "shadowmodels",
        "inferenceservices",
        "experiments",
    )
    world.wait_until("everything to be gone", lambda: all(not world.items(k) for k in kinds), timeout=120)
