"""A run whose dataset, checkpoints, adapter and manifest all live in a bucket of a real S3-protocol
server (authentication on), reached by each job only through the environment variables a trainer pod
gets (``ObjectStore.env()`` in the job's runtime env; the Ray head itself holds none).

One run goes through what a cluster does to it: two concurrent submissions of its first attempt start
one job; that attempt is stopped mid-training (the Jobs API's stop, which takes its Ray Train workers
down); the second resumes from the checkpoint in the bucket until the store goes away under it (that
attempt fails, in bounded time, saying the store could not be reached); the third resumes from the
newest checkpoint that reached the store and publishes; a fourth finds the manifest and trains nothing.
Bad input fails fast: a job without the key or with a wrong one names the refusal, a wrong dataset
hash exits with the code that says "do not retry".
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

from controllers.builders.jobspec import job_spec
from controllers.clients.ray_jobs import JobInfo, JobStatus, RayJobsClient, SubmitOutcome
from devstack.objectstore import ObjectStore
from tests.trainer.support import run_job, store_fs, task_snapshot, tiny_config, upload_snapshot
from trainer.config import Checkpointing, DatasetSpec, Method, TrainerConfig, TrainerManifest

ENTRYPOINT_RAN = re.compile(r"config \S+ parsed")
TOTAL_STEPS = 80


def s3_config(tmp_path: Path, store: ObjectStore, bucket: str, name: str) -> TrainerConfig:
    """A tiny DPO run whose dataset is uploaded to ``<bucket>/<name>/dataset`` and whose outputs go
    under ``<bucket>/<name>``; nothing of it stays on the local disk."""
    snapshot = task_snapshot(tmp_path / "snapshot", Method.DPO)
    dataset = upload_snapshot(store, snapshot, f"{bucket}/{name}/dataset")
    config = tiny_config(tmp_path, name, Method.DPO, snapshot)
    return config.model_copy(
        update={
            "dataset": DatasetSpec(uri=dataset, content_hash=snapshot.content_hash),
            "output_uri": f"{bucket}/{name}",
            "hyperparameters": config.hyperparameters.model_copy(update={"max_steps": TOTAL_STEPS}),
            # No worker-group restart inside a job: a failed attempt ends, and the next one resumes.
            "checkpointing": Checkpointing(every_steps=10, keep=2, max_failures=0),
        }
    )


def latest_checkpoint_step(store: ObjectStore, config: TrainerConfig) -> int:
    """The newest checkpoint Ray Train has registered in the bucket (0 before the first)."""
    key = f"{config.storage_uri.removeprefix('s3://')}/{config.ray_run_name}/checkpoint_manager_snapshot.json"
    try:
        latest = json.loads(store_fs(store).cat_file(key)).get("latest_checkpoint_result") or {}
    except (FileNotFoundError, json.JSONDecodeError):
        return 0
    name = latest.get("checkpoint_dir_name", "")
    return int(name.split("-")[1]) if name.startswith("checkpoint-") else 0


async def when_one_attempt_is_submitted_twice_at_once(
    ray: RayJobsClient, config: TrainerConfig, env: dict[str, str]
) -> str:
    """Two concurrent submissions of one attempt (a reconcile retried after a lost answer): one job."""
    first = job_spec(config, 1, python=sys.executable, env=env)
    outcomes = await asyncio.gather(ray.submit(first), ray.submit(first))
    assert sorted(outcomes) == [SubmitOutcome.ALREADY_SUBMITTED, SubmitOutcome.SUBMITTED]
    assert [j.submission_id for j in await ray.jobs()].count(first.submission_id) == 1
    return first.submission_id


async def submit(ray: RayJobsClient, config: TrainerConfig, attempt: int, env: dict[str, str]) -> str:
    job = job_spec(config, attempt, python=sys.executable, env=env)
    await ray.submit(job)
    return job.submission_id


async def until_checkpointed_past(
    ray: RayJobsClient, store: ObjectStore, config: TrainerConfig, job: str, step: int
) -> int:
    """Wait (up to 240 s) for the running ``job`` to register a checkpoint after ``step`` in the bucket."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 240
    while (latest := latest_checkpoint_step(store, config)) <= step:
        info = await ray.get(job)
        assert info is not None
        assert not info.status.terminal, f"job ended early: {info}"
        assert loop.time() < deadline, f"no checkpoint after step {step} within 240s"
        await asyncio.sleep(0.2)
    assert latest < TOTAL_STEPS, "the run must still be training for the scenario to mean anything"
    return latest


async def when_the_store_goes_away(ray: RayJobsClient, store: ObjectStore, job: str) -> JobInfo:
    """The store refuses every connection until the attempt has ended; it must end, failed, in bounds."""
    with store.outage(0):
        info = await ray.wait(job, timeout=240)
    assert info.status == JobStatus.FAILED, info
    return info


def then_the_adapter_in_the_bucket_matches_the_manifest(
    store: ObjectStore, config: TrainerConfig
) -> TrainerManifest:
    fs = store_fs(store)
    manifest = TrainerManifest.model_validate_json(fs.cat_file(config.manifest_uri.removeprefix("s3://")))
    assert manifest.adapter.uri == config.adapter_uri
    assert manifest.dataset.uri == config.dataset.uri
    assert manifest.dataset.content_hash == config.dataset.content_hash
    for item in manifest.adapter.files:
        data = fs.cat_file(f"{config.adapter_uri.removeprefix('s3://')}/{item.name}")
        assert "sha256:" + hashlib.sha256(data).hexdigest() == item.sha256, item.name
        assert len(data) == item.size
    assert manifest.adapter.digest == next(
        f.sha256 for f in manifest.adapter.files if f.name == "adapter_model.safetensors"
    )
    return manifest


def then_nothing_was_written_locally(tmp_path: Path, config: TrainerConfig) -> None:
    """No local copy of the run: not in the test's folder (the snapshot was moved to the bucket), not
    beside the jobs (a storage path taken for a relative one), not in Ray's default results folder.
    (Ray's own temp folder, its logs and sockets, is Ray's business.)"""
    assert sorted(p.name for p in tmp_path.iterdir()) == [], sorted(tmp_path.iterdir())
    bucket_name = config.output_uri.removeprefix("s3://").split("/")[0]
    for root in (Path.cwd(), Path.home() / "ray_results"):
        if root.exists():
            strays = [p for p in root.rglob(f"*{config.ray_run_name}*")] + list(root.rglob(bucket_name))
            assert not strays, f"local copies of the run: {strays[:5]}"


def test_a_run_in_the_bucket_resumes_across_a_stop_and_an_outage_and_publishes_once(
    tmp_path: Path, object_store: ObjectStore, bucket: str, jobs_api: Callable[[], RayJobsClient]
) -> None:
    config = s3_config(tmp_path, object_store, bucket, "s3-resume")
    env = object_store.env()

    async def scenario() -> tuple[int, int, str, str]:
        async with jobs_api() as ray:
            # Given a first attempt that checkpointed into the bucket, when it is stopped ...
            first = await when_one_attempt_is_submitted_twice_at_once(ray, config, env)
            await until_checkpointed_past(ray, object_store, config, first, 0)
            assert await ray.stop(first)
            assert (await ray.wait(first, timeout=120)).status == JobStatus.STOPPED
            assert len(ENTRYPOINT_RAN.findall(await ray.logs(first))) == 1, "one entrypoint per attempt"
            assert not store_fs(object_store).exists(config.manifest_uri.removeprefix("s3://"))
            stopped_at = latest_checkpoint_step(object_store, config)
            # ... the second resumes from it, until the store goes away: that attempt fails, saying so.
            second = await submit(ray, config, 2, env)
            await until_checkpointed_past(ray, object_store, config, second, stopped_at)
            failed = await when_the_store_goes_away(ray, object_store, second)
            print(f"--- the attempt the outage failed (log tail) ---\n{(await ray.logs(second))[-3000:]}")
            reached = latest_checkpoint_step(object_store, config)
            # The third resumes from the newest checkpoint that reached the store and finishes.
            third = await submit(ray, config, 3, env)
            finished = await ray.wait(third, timeout=300)
            logs = await ray.logs(third)
            assert finished.status == JobStatus.SUCCEEDED, f"{finished.message}\n{logs[-4000:]}"
            # A fourth attempt of the finished run trains nothing.
            fourth = await submit(ray, config, 4, env)
            assert (await ray.wait(fourth, timeout=120)).status == JobStatus.SUCCEEDED
            assert "already records this config" in await ray.logs(fourth)
            return stopped_at, reached, failed.message or "", logs

    stopped_at, reached, failure, logs = asyncio.run(scenario())
    print(f"stopped at step {stopped_at}; the outage struck after step {reached}; failure: {failure[-600:]}")
    assert "StorageError:" in failure, failure[-2000:]
    assert "could not be reached" in failure, failure[-2000:]
    assert env["AWS_ENDPOINT_URL"] in failure
    assert stopped_at < reached < TOTAL_STEPS
    manifest = then_the_adapter_in_the_bucket_matches_the_manifest(object_store, config)
    assert manifest.resume.resumed_from_step == reached
    assert manifest.metrics.steps == TOTAL_STEPS
    assert f"resuming from checkpoint at step {reached}" in logs
    assert f"trained to step {TOTAL_STEPS} ({TOTAL_STEPS - reached} steps in this attempt)" in logs
    then_nothing_was_written_locally(tmp_path, config)


def test_a_job_without_the_key_or_with_a_wrong_one_fails_naming_the_refusal(
    tmp_path: Path, object_store: ObjectStore, bucket: str, jobs_api: Callable[[], RayJobsClient]
) -> None:
    config = s3_config(tmp_path, object_store, bucket, "s3-refused")
    endpoint_only = {
        k: v
        for k, v in object_store.env().items()
        if not k.startswith("AWS_SECRET") and k != "AWS_ACCESS_KEY_ID"
    }
    wrong_key = {**object_store.env(), "AWS_SECRET_ACCESS_KEY": "not-the-secret"}

    async def scenario() -> list[JobInfo]:
        async with jobs_api() as ray:
            jobs = [
                await submit(ray, config, attempt, env)
                for attempt, env in ((1, endpoint_only), (2, wrong_key))
            ]
            return [await ray.wait(job, timeout=180) for job in jobs]

    for info in asyncio.run(scenario()):
        message = info.message or ""
        assert info.status == JobStatus.FAILED
        assert info.driver_exit_code == 1
        last = message.strip().splitlines()[-1]
        assert last.startswith("StorageError: reading the manifest " + config.manifest_uri), last
        assert "403 Forbidden" in last or "no storage credentials" in last, last
    assert not store_fs(object_store).exists(config.storage_uri.removeprefix("s3://")), "nothing may train"


def test_wrong_dataset_hash_fails_fast_with_the_do_not_retry_exit_code(
    tmp_path: Path, jobs_api: Callable[[], RayJobsClient]
) -> None:
    snapshot = task_snapshot(tmp_path / "snapshot", Method.DPO)
    config = tiny_config(tmp_path, "bad-hash", Method.DPO, snapshot)
    config = config.model_copy(
        update={"dataset": DatasetSpec(uri=config.dataset.uri, content_hash="sha256:" + "0" * 64)}
    )

    async def scenario() -> tuple[int | None, JobStatus, str]:
        async with jobs_api() as ray:
            info = await run_job(ray, config)
            return info.driver_exit_code, info.status, await ray.logs(info.submission_id)

    exit_code, status, logs = asyncio.run(scenario())
    assert status == JobStatus.FAILED
    assert exit_code == 2
    assert "invalid dataset" in logs
    assert snapshot.content_hash in logs
    assert not Path(config.storage_uri).exists(), (
        "no training may start on data that is not the snapshot named"
    )
