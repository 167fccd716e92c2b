"""Object storage is the data plane between the operator, the trainer's Ray job and the model servers.

The RayJob stand-in is as strict as KubeRay: its Ray "cluster" cannot see the operator's disk (the
operator's scratch folders are hidden from it), and its jobs get only the credentials their pod spec
names. So a snapshot the operator keeps on its own disk is out of the trainer's reach — the mistake a
``file://`` outputUri without a shared volume makes on a real cluster — while the same data in the
bucket trains, serves and is promoted (``test_loop`` runs the whole loop on the bucket). And a store
that goes away for a while costs an attempt, not the run.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import httpx

from controllers.api import kinds
from devstack.agents import Population
from devstack.demo import Storage, demo_policy
from devstack.localray import LocalRayHead
from devstack.objectstore import ObjectStore
from devstack.runtime import LocalRuntime
from tests.e2e.conftest import World
from tests.e2e.test_failures import use_fast_trainer


def hand_made_run(
    world: World, name: str, agent: str, storage: Storage, max_attempts: int, backoff: str = "1s"
) -> None:
    """A TrainingRun by hand on the demo policy's training settings, kept where ``storage`` says."""
    training = demo_policy("unused", agent, storage, min_pairs=1)["spec"]["training"]
    run = {"apiVersion": kinds.API_VERSION, "kind": "TrainingRun", "metadata": {"name": name}}
    world.apply(
        {**run, "spec": {"training": training, "retry": {"maxAttempts": max_attempts, "backoff": backoff}}}
    )


def failed(world: World, name: str) -> dict[str, Any] | None:
    condition = world.condition("trainingrun", name)
    return condition if condition and condition["reason"] == "JobFailed" else None


def test_a_snapshot_on_the_operators_own_disk_is_out_of_the_trainers_reach(
    world: World, runtime: LocalRuntime, tmp_path: Path
) -> None:
    # Given experience, and a run whose outputUri is a folder on the operator's own disk
    agent = f"disk-{uuid.uuid4().hex[:6]}"
    assert Population(world.gateway.url, world.token, world.namespace, "x", agent).post_pairs(8, seed=3) > 0
    on_the_operators_disk = world.operator.data_root / "runs"
    hand_made_run(world, "on-disk", agent, Storage(on_the_operators_disk.as_uri()), max_attempts=1)
    # When the operator snapshots it there and the trainer's job starts on the Ray "cluster"
    condition = world.wait_until("on-disk to fail", lambda: failed(world, "on-disk"), timeout=300)
    # Then the snapshot is there for the operator, but the job could not read it, and says so
    dataset = (world.get("trainingrun", "on-disk") or {})["status"]["dataset"]
    assert dataset["uri"] == (on_the_operators_disk / "on-disk" / "dataset").as_uri()
    assert (on_the_operators_disk / "on-disk" / "dataset" / "snapshot.json").is_file()
    assert "on-disk/dataset" in condition["message"], condition["message"]
    assert world.get("shadowmodel", "on-disk") is None


def test_an_object_store_outage_during_a_run_costs_an_attempt_not_the_run(
    world: World,
    runtime: LocalRuntime,
    ray_head: LocalRayHead,
    object_store: ObjectStore,
    fast_python: Path,
) -> None:
    # Given a run in the bucket, whose first attempt has just been handed to Ray. Its backoff (20 s)
    # outlasts what is left of the outage once attempt 1 has failed (at most 10 s): with a shorter
    # one, attempt 2 could start inside the outage and fail as well (a CI run saw 3 attempts).
    use_fast_trainer(world, fast_python)
    agent = f"outage-{uuid.uuid4().hex[:6]}"
    assert Population(world.gateway.url, world.token, world.namespace, "x", agent).post_pairs(8, seed=4) > 0
    hand_made_run(world, "outage", agent, world.storage, max_attempts=3, backoff="20s")
    world.wait_until("attempt 1's RayJob", lambda: attempt_rayjob(world, "outage", 1), timeout=120)
    # When the store refuses every connection for at least 10 s, until that attempt has failed
    with object_store.outage(10):
        world.wait_until("attempt 1 to fail", lambda: attempt_failed(world, "outage", 1), timeout=120)
        assert attempt_rayjob(world, "outage", 2) is None, "attempt 2 started before its backoff"
    # Then the next attempt finds the store again and the run succeeds: one job per attempt, no more
    world.wait_until(
        "outage to succeed",
        lambda: (c := world.condition("trainingrun", "outage")) and c["status"] == "True" and c,
        timeout=180,
    )
    run = (world.get("trainingrun", "outage") or {})["status"]
    assert run["attempts"] == 2
    rayjobs = [j for j in world.items("rayjobs") if j["metadata"]["labels"][RUN] == "outage"]
    assert sorted(j["metadata"]["labels"][ATTEMPT] for j in rayjobs) == ["1", "2"]
    ids = {j["spec"]["jobId"] for j in rayjobs}
    submitted = httpx.get(f"{ray_head.dashboard_url}/api/jobs/", headers=ray_head.auth_headers, timeout=30)
    assert sorted(j["submission_id"] for j in submitted.json() if j["submission_id"] in ids) == sorted(ids)
    assert run["adapter"]["uri"].startswith(world.storage.output_uri)


RUN, ATTEMPT = "kaizen.dev/training-run", "kaizen.dev/attempt"


def attempt_rayjob(world: World, run: str, attempt: int) -> dict[str, Any] | None:
    for job in world.items("rayjobs"):
        labels = job["metadata"].get("labels") or {}
        if labels.get(RUN) == run and labels.get(ATTEMPT) == str(attempt):
            return job
    return None


def attempt_failed(world: World, run: str, attempt: int) -> bool:
    job = attempt_rayjob(world, run, attempt) or {}
    return (job.get("status") or {}).get("jobStatus") == "FAILED"
