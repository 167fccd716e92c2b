"""On call for training, through the ``kaizen`` CLI against the real operator: read a failed run's
trainer log, retry it (one new job, even with the operator killed as the request lands), and train,
pause and resume a policy (each with the operator killed as the request lands), each request recorded
once with its outcome and one Event."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import fsspec
import httpx

from controllers.api import kinds
from controllers.api.intervention import ANNOTATION
from devstack.agents import Population
from devstack.demo import demo_policy
from devstack.localray import LocalRayHead
from devstack.objectstore import ObjectStore
from devstack.runtime import LocalRuntime
from tests.e2e.conftest import World
from tests.e2e.on_call import events, kill_once_it_lands, request_on, the_answer
from tests.e2e.test_failures import use_fast_trainer

ROOT = Path(__file__).resolve().parents[2]
# The operator is killed and started again while the CLI waits for its answer: a restart on a loaded
# machine (imports, the dead holder's Lease running out) can outlast the CLI's default 30 s.
RESTART_ROOM = ("--timeout", "150")


def kaizen_command(world: World, *args: str) -> list[str]:
    return [sys.executable, "-m", "controllers.cli.main", *args, "-n", world.namespace]


def cli_env(world: World, ray_head: LocalRayHead | None = None) -> dict[str, str]:
    env = {**os.environ, "KUBECONFIG": str(world.plane.kubeconfig), "PYTHONPATH": str(ROOT)}
    if ray_head is not None:
        env["RAY_AUTH_TOKEN"] = (
            ray_head.token
        )  # the local Ray head has token authentication, as a cluster does
    return env


def kaizen(
    world: World, *args: str, ray_head: LocalRayHead | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        kaizen_command(world, *args),
        env=cli_env(world, ray_head),
        capture_output=True,
        text=True,
        timeout=120,
    )


def mend_in_the_bucket(store: ObjectStore, run_folder: str) -> None:
    """What fixes the fast trainer's "fail" runs: a FIXED object in the run's folder of the bucket."""
    env = store.env()
    client = {"endpoint_url": env["AWS_ENDPOINT_URL"], "region_name": env["AWS_DEFAULT_REGION"]}
    fs = fsspec.filesystem(
        "s3", key=env["AWS_ACCESS_KEY_ID"], secret=env["AWS_SECRET_ACCESS_KEY"], client_kwargs=client
    )
    fs.pipe(f"{run_folder.removeprefix('s3://')}/FIXED", b"")


def test_a_failed_run_is_read_and_retried_by_hand_into_one_new_job_even_with_the_operator_killed(
    world: World, runtime: LocalRuntime, ray_head: LocalRayHead, fast_python: Path, object_store: ObjectStore
) -> None:
    # Given a run by hand whose only attempt failed for good
    use_fast_trainer(world, fast_python)
    agent = f"retry-{uuid.uuid4().hex[:6]}"
    assert Population(world.gateway.url, world.token, world.namespace, "x", agent).post_pairs(8, seed=7) > 0
    training = demo_policy("unused", agent, world.storage, min_pairs=1)["spec"]["training"]
    run = {"apiVersion": kinds.API_VERSION, "kind": "TrainingRun", "metadata": {"name": "mend-fail"}}
    world.apply({**run, "spec": {"training": training, "retry": {"maxAttempts": 1}}})
    failed = world.wait_until(
        "mend-fail to fail",
        lambda: (c := world.condition("trainingrun", "mend-fail")) and c["reason"] == "JobFailed" and c,
        timeout=240,
    )
    # When the person on call runs the command its condition names
    assert failed["message"].endswith(f"Full log: kaizen logs trainingrun mend-fail -n {world.namespace}")
    logs = kaizen(world, "logs", "trainingrun", "mend-fail", ray_head=ray_head)
    # Then they read what the trainer printed
    assert logs.returncode == 0, logs.stderr
    assert "fastjob: mend-fail fails on purpose" in logs.stdout
    # When they mend the cause and retry, and the operator is killed as soon as the request is written
    mend_in_the_bucket(object_store, f"{world.storage.output_uri}/mend-fail")
    retry = subprocess.Popen(
        kaizen_command(
            world, "retry", "trainingrun", "mend-fail", "--reason", "node replaced", "--wait", *RESTART_ROOM
        ),
        env=cli_env(world),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    world.wait_until(
        "the retry request",
        lambda: ANNOTATION
        in ((world.get("trainingrun", "mend-fail") or {})["metadata"].get("annotations") or {}),
        timeout=30,
    )
    world.operator.kill()
    world.operator.start()
    out, err = retry.communicate(timeout=240)
    # Then the CLI says what the operator did and follows the run to its success
    assert retry.returncode == 0, f"{out}\n{err}"
    assert out.startswith("trainingrun/mend-fail: attempt 2 submitted (kaizen-mend-fail-a2-")
    assert "trainingrun/mend-fail: Succeeded: trained; ShadowModel mend-fail" in out
    # and exactly one new job was made: one RayJob and one Ray submission per attempt
    status = (world.get("trainingrun", "mend-fail") or {})["status"]
    assert status["attempts"] == 2
    assert len(world.items("rayjobs")) == 2
    jobs = httpx.get(f"{ray_head.dashboard_url}/api/jobs/", headers=ray_head.auth_headers, timeout=30).json()
    ids = [j["submission_id"] for j in jobs if str(j.get("submission_id")).startswith("kaizen-mend-fail-")]
    assert len(ids) == len(set(ids)) == 2
    # and the request is recorded once, with who asked and why, and an Event
    [record] = status["interventions"]
    assert (record["action"], record["reason"]) == ("Retry", "node replaced")
    assert record["outcome"].startswith("attempt 2 submitted")
    events = world.kubectl("get", "events", "--field-selector", "involvedObject.name=mend-fail")
    assert "Retry asked by" in events
    # and each attempt's log stays readable
    first = kaizen(world, "logs", "trainingrun", "mend-fail", "--attempt", "1", ray_head=ray_head)
    assert "fails on purpose" in first.stdout
    latest = kaizen(world, "logs", "trainingrun", "mend-fail", "-f", ray_head=ray_head)
    assert latest.returncode == 0, latest.stderr
    assert "fastjob: wrote" in latest.stdout
    assert "fails on purpose" not in latest.stdout


def test_train_starts_one_run_and_pause_declines_it_for_good(world: World, tmp_path: Path) -> None:
    # Given a policy that data alone would not trigger
    world.apply(demo_policy("tp", f"tp-{uuid.uuid4().hex[:6]}", world.storage, min_pairs=1_000_000))
    world.wait_until("the policy to be watched", lambda: world.condition("learningpolicy", "tp"), timeout=60)
    # When it is paused, the operator killed as the request is written (it may have answered already:
    # the CLI then printed the answer, else that the request waits; either is right)
    paused = kaizen(world, "pause", "lp", "tp", "--reason", "incident", "--wait", "0")
    world.operator.kill()
    assert paused.returncode == 0, paused.stderr
    world.operator.start()
    assert (
        the_answer(world, "learningpolicy", "tp", "Pause")["outcome"] == "no new TrainingRuns until resumed"
    )
    # a Train is declined saying why
    declined = kaizen(world, "train", "learningpolicy", "tp", "--reason", "try it")
    assert declined.returncode == 1
    assert (
        "learningpolicy/tp: declined: paused: no new TrainingRuns until spec.paused is false"
        in declined.stderr
    )
    # and when it is resumed (killed again), the declined request starts nothing
    resumed = kaizen(world, "resume", "lp", "tp", "--reason", "incident over", "--wait", "0")
    world.operator.kill()
    assert resumed.returncode == 0, resumed.stderr
    world.operator.start()
    assert the_answer(world, "learningpolicy", "tp", "Resume")["outcome"] == "resumed"
    assert world.items("trainingruns") == []
    # When a Train is asked of the running policy, and the operator is killed as the request lands
    before = request_on(world, "learningpolicy", "tp")
    train = subprocess.Popen(
        kaizen_command(world, "train", "learningpolicy", "tp", "--reason", "new data", *RESTART_ROOM),
        env=cli_env(world),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    kill_once_it_lands(world, "learningpolicy", "tp", before)
    out, err = train.communicate(timeout=240)
    # Then it prints the one run it started, and only that one exists
    assert train.returncode == 0, f"{out}\n{err}"
    assert out == "learningpolicy/tp: started TrainingRun tp-0001\n"
    assert [r["metadata"]["name"] for r in world.items("trainingruns")] == ["tp-0001"]
    # and every request is recorded once, in order, with its outcome, with one Event each
    policy = world.get("learningpolicy", "tp") or {}
    records = [(i["action"], i["outcome"].split(":")[0]) for i in policy["status"]["interventions"]]
    assert records == [
        ("Pause", "no new TrainingRuns until resumed"),
        ("Train", "declined"),
        ("Resume", "resumed"),
        ("Train", "started TrainingRun tp-0001"),
    ]
    assert kinds.TRAIN_NOW not in (policy["metadata"].get("annotations") or {})
    for reason in ("Pause", "Resume", "Train", "InterventionDeclined"):
        assert len(events(world, "tp", reason)) == 1, reason
