"""A stopped job resumes from its checkpoint; a submission id starts at most one job; a finished run
is not trained again; bad input fails fast with the exit code that says "do not retry".

The stop is the real thing: the Jobs API's stop, which signals the driver and takes its Ray Train
workers down mid-training. The next attempt is a new job with the next deterministic submission id.
"""

from __future__ import annotations

import asyncio
import json
import re
import sys
from collections.abc import Callable
from pathlib import Path

from controllers.builders.jobspec import JobSpec, job_spec
from controllers.clients.ray_jobs import JobStatus, RayJobsClient, SubmitOutcome
from tests.trainer.support import run_job, task_snapshot, tiny_config
from trainer.config import Checkpointing, DatasetSpec, Method, TrainerConfig, TrainerManifest

ENTRYPOINT_RAN = re.compile(r"config \S+ parsed")


def _latest_checkpoint_step(config: TrainerConfig) -> int | None:
    """The newest checkpoint Ray Train has registered for this config's run (None before the first)."""
    snapshot = Path(config.storage_uri) / config.ray_run_name / "checkpoint_manager_snapshot.json"
    try:
        # Ray rewrites this file in place: a read can catch it empty or half-written; that is "not yet".
        latest = json.loads(snapshot.read_text()).get("latest_checkpoint_result") or {}
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    name = latest.get("checkpoint_dir_name", "")
    return int(name.split("-")[1]) if name.startswith("checkpoint-") else None


async def when_one_attempt_is_submitted_twice_at_once(ray: RayJobsClient, config: TrainerConfig) -> JobSpec:
    """Two concurrent submissions of one attempt (a reconcile retried after a lost answer): one job."""
    first = job_spec(config, 1, python=sys.executable)
    outcomes = await asyncio.gather(ray.submit(first), ray.submit(first))
    assert sorted(outcomes) == [SubmitOutcome.ALREADY_SUBMITTED, SubmitOutcome.SUBMITTED]
    assert [j.submission_id for j in await ray.jobs()].count(first.submission_id) == 1
    return first


async def given_it_checkpointed_step(ray: RayJobsClient, config: TrainerConfig, job: str, step: int) -> None:
    """Wait (up to 240s) for the running job ``job`` to register a checkpoint at ``step`` or later."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 240
    while (_latest_checkpoint_step(config) or 0) < step:
        info = await ray.get(job)
        assert info is not None
        assert not info.status.terminal, f"job ended early: {info}"
        assert loop.time() < deadline, f"no checkpoint at step {step} within 240s"
        await asyncio.sleep(0.2)


async def when_it_is_stopped_mid_training(
    ray: RayJobsClient, config: TrainerConfig, job: str, total: int
) -> int:
    """Stop ``job``; it ran its entrypoint once, kept a checkpoint short of ``total``, published nothing."""
    assert await ray.stop(job)
    stopped = await ray.wait(job, timeout=120)
    assert stopped.status == JobStatus.STOPPED
    first_logs = await ray.logs(job)
    assert len(ENTRYPOINT_RAN.findall(first_logs)) == 1, "the entrypoint must have run exactly once"
    checkpointed = _latest_checkpoint_step(config)
    assert checkpointed is not None
    assert 50 <= checkpointed < total, checkpointed
    assert not Path(config.manifest_uri).exists(), "a stopped job must not publish a manifest"
    return checkpointed


def then_the_manifest_and_logs_show_the_resume(
    config: TrainerConfig, checkpointed: int, total: int, logs: str
) -> TrainerManifest:
    manifest = TrainerManifest.model_validate_json(Path(config.manifest_uri).read_text())
    print(f"resumed from step {manifest.resume.resumed_from_step}, ran {manifest.resume.steps_this_attempt}")
    assert manifest.resume.resumed_from_step == checkpointed
    assert manifest.resume.steps_this_attempt == total - checkpointed
    assert manifest.metrics.steps == total
    assert f"resuming from checkpoint at step {checkpointed}" in logs
    assert "starting DPO from step 0" not in logs
    assert f"trained to step {total} ({total - checkpointed} steps in this attempt)" in logs
    assert manifest.metrics.preference_accuracy is not None
    assert manifest.metrics.preference_accuracy >= 0.75
    return manifest


def test_stopped_job_resumes_from_its_checkpoint_and_one_id_starts_one_job(
    tmp_path: Path, jobs_api: Callable[[], RayJobsClient]
) -> None:
    snapshot = task_snapshot(tmp_path / "snapshot", Method.DPO)
    config = tiny_config(
        tmp_path, "resume-dpo", Method.DPO, snapshot, checkpointing=Checkpointing(every_steps=25)
    )
    total = config.hyperparameters.max_steps
    assert total is not None

    async def scenario() -> tuple[int, str]:
        async with jobs_api() as ray:
            first = await when_one_attempt_is_submitted_twice_at_once(ray, config)
            # Given a job that has checkpointed step 50 of 150 ...
            await given_it_checkpointed_step(ray, config, first.submission_id, step=50)
            # ... when it is stopped mid-training ...
            checkpointed = await when_it_is_stopped_mid_training(ray, config, first.submission_id, total)
            # ... then the next attempt (a new submission id) continues from that checkpoint.
            second = await run_job(ray, config, attempt=2)
            logs = await ray.logs(second.submission_id)
            assert second.status == JobStatus.SUCCEEDED, f"{second.message}\n{logs[-4000:]}"
            return checkpointed, logs

    checkpointed, logs = asyncio.run(scenario())
    manifest = then_the_manifest_and_logs_show_the_resume(config, checkpointed, total, logs)

    # A third attempt of the finished run trains nothing: the manifest already records this config.
    async def again() -> str:
        async with jobs_api() as ray:
            third = await run_job(ray, config, attempt=3)
            assert third.status == JobStatus.SUCCEEDED
            return await ray.logs(third.submission_id)

    assert "already records this config" in asyncio.run(again())
    assert TrainerManifest.model_validate_json(Path(config.manifest_uri).read_text()) == manifest


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
