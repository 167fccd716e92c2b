"""The Ray Jobs REST client against a real Ray head: status, logs, stop, delete, errors, auth."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Callable

import pytest

from controllers.builders.jobspec import JobSpec
from controllers.clients.ray_jobs import JobStatus, RayJobsClient, RayJobsError, SubmitOutcome
from devstack.localray import LocalRayHead


def _python(code: str) -> str:
    return f"{sys.executable} -c {code!r}"


def test_a_job_runs_reports_its_logs_and_can_be_deleted(jobs_api: Callable[[], RayJobsClient]) -> None:
    job = JobSpec(
        submission_id="kz-jobs-api-hello",
        entrypoint=_python("print('hello from the job')"),
        metadata={"kaizen.dev/training-run": "hello"},
    )

    async def scenario() -> None:
        async with jobs_api() as ray:
            assert (await ray.version())["ray_version"]
            assert await ray.submit(job) == SubmitOutcome.SUBMITTED
            info = await ray.wait(job.submission_id, timeout=120)
            assert info.status == JobStatus.SUCCEEDED
            assert info.driver_exit_code == 0
            assert info.metadata == {"kaizen.dev/training-run": "hello"}
            assert "hello from the job" in await ray.logs(job.submission_id)
            assert await ray.stop(job.submission_id) is False  # finished jobs cannot be stopped
            assert await ray.delete(job.submission_id) is True
            assert await ray.get(job.submission_id) is None
            # A deleted id is forgotten; an id never seen is reported as unknown, not as an error.
            assert await ray.get("kz-never-submitted") is None

    asyncio.run(scenario())


def test_a_running_job_stops_and_a_failing_one_reports_its_exit_code(
    jobs_api: Callable[[], RayJobsClient],
) -> None:
    sleeper = JobSpec(submission_id="kz-jobs-api-sleeper", entrypoint=_python("import time; time.sleep(300)"))
    failing = JobSpec(submission_id="kz-jobs-api-failing", entrypoint=_python("raise SystemExit(3)"))

    async def scenario() -> None:
        async with jobs_api() as ray:
            await ray.submit(sleeper)
            await ray.wait(
                sleeper.submission_id, until=lambda info: info.status == JobStatus.RUNNING, timeout=120
            )
            assert await ray.stop(sleeper.submission_id) is True
            assert (await ray.wait(sleeper.submission_id, timeout=60)).status == JobStatus.STOPPED
            await ray.submit(failing)
            info = await ray.wait(failing.submission_id, timeout=120)
            assert info.status == JobStatus.FAILED
            assert info.driver_exit_code == 3
            with pytest.raises(TimeoutError, match="still"):
                await ray.wait(failing.submission_id, until=lambda info: False, timeout=0.5, interval=0.1)

    asyncio.run(scenario())


def test_wrong_token_is_refused_as_a_permanent_error(ray_head: LocalRayHead) -> None:
    async def scenario() -> None:
        async with RayJobsClient(ray_head.dashboard_url, token="not-the-token", retries=0) as ray:
            with pytest.raises(RayJobsError) as refused:
                await ray.get("anything")
            assert refused.value.status_code in (401, 403)
            assert not refused.value.transient

    asyncio.run(scenario())


def test_an_unreachable_cluster_is_a_transient_error_after_retries() -> None:
    async def scenario() -> None:
        async with RayJobsClient("http://127.0.0.1:9", retries=2, backoff=0.01) as ray:
            with pytest.raises(RayJobsError) as failed:
                await ray.get("anything")
            assert failed.value.transient

    asyncio.run(scenario())
