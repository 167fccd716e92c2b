"""A TrainingRun's Ray jobs: submit an attempt under its deterministic id, and see how it is doing.

Two ways to run a job (``spec.training.scaling.submission``): a KubeRay RayJob object named after the
attempt, or a POST to an existing cluster's Ray Jobs API under the attempt's submission id. Either
way a repeat finds what the first call made (the API server refuses a second object of one name,
Ray a second job of one id), so submitting again after a crash never starts a second job.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any

from controllers.api import kinds
from controllers.api.training_settings import Submission
from controllers.api.trainingrun import TrainingRun, TrainingRunStatus
from controllers.builders.jobspec import job_spec, trainer_config
from controllers.builders.rayjob import PodSettings, build_rayjob
from controllers.builders.storage import pod_storage, runtime_env_vars
from controllers.clients.ray_jobs import RayJobsClient
from controllers.decisions.runplan import RAY_PHASES, JobPhase, JobState, logs_command, rayjob_state
from controllers.reconcile.deps import Dependencies
from controllers.reconcile.outcome import Outcome
from controllers.reconcile.storage import read_secret
from trainer.config import TrainerConfig


def config_for(run: TrainingRun, name: str, status: TrainingRunStatus) -> TrainerConfig:
    dataset = status.dataset
    assert dataset is not None
    # The store hashes the exported lines, the trainer the rows it reads: two different digests of the
    # same content, so the job records its own (manifest.dataset.contentHash) instead of checking ours.
    return trainer_config(name, run.spec.training, dataset_uri=dataset.uri, dataset_hash=None)


async def observe_job(
    run: TrainingRun, meta: dict[str, Any], status: TrainingRunStatus, deps: Dependencies
) -> JobState:
    """The attempt's phase, Ray's message and how to read its full log (a condition says one line of
    it): ``kaizen logs trainingrun``, which finds the log wherever this submission put the job."""
    namespace, logs = meta["namespace"], logs_command(meta["namespace"], meta["name"])
    scaling = run.spec.training.scaling
    if scaling.submission == Submission.RAY_JOBS_API:
        assert scaling.ray_address
        async with RayJobsClient(scaling.ray_address) as ray:
            info = await ray.get(status.submission_id)
        if info is None:
            return JobState(JobPhase.MISSING)
        return JobState(RAY_PHASES[info.status], info.message, logs)
    rayjob = await deps.kube.get(kinds.RAYJOBS, namespace, status.job_name)
    if rayjob is None:
        return JobState(JobPhase.MISSING)
    return replace(rayjob_state(rayjob), logs=logs)


async def submit(
    body: dict[str, Any],
    run: TrainingRun,
    out: Outcome[TrainingRunStatus],
    attempt: int,
    deps: Dependencies,
    now: datetime,
) -> None:
    """Submit ``attempt`` (a RayJob object, or a POST to the Ray Jobs API) under its deterministic id."""
    meta, status = body["metadata"], out.status
    config = config_for(run, meta["name"], status)
    scaling, storage = run.spec.training.scaling, run.spec.training.storage
    env = dict(deps.settings.trainer_env)
    if scaling.submission == Submission.RAY_JOBS_API:
        # An existing cluster cannot mount the Secret: the operator reads it and sends its keys as
        # the job's environment. That puts the storage key in the Ray cluster (its job table and the
        # driver's and workers' environment), readable by whoever can read that cluster's jobs.
        secret, _ = await read_secret(storage, meta["namespace"], deps.kube)
        env |= runtime_env_vars(storage, run.spec.training.output_uri, secret)
    job = job_spec(config, attempt, python=deps.settings.python, env=env)
    status.submission_id = job.submission_id
    if scaling.submission == Submission.RAY_JOBS_API:
        assert scaling.ray_address
        async with RayJobsClient(scaling.ray_address) as ray:
            await ray.submit(job)  # a repeat of the same id is refused by Ray and reported, not resubmitted
        deps.metrics.submissions.labels("RayJobsAPI").inc()
    else:
        pods = PodSettings.from_scaling(scaling, pod_storage(storage, run.spec.training.output_uri))
        manifest = build_rayjob(
            config, job, pods, namespace=meta["namespace"], attempt=attempt, owner=kinds.owner(body)
        )
        status.job_name = manifest["metadata"]["name"]
        _, created = await deps.kube.ensure(kinds.RAYJOBS, manifest)
        if created:
            deps.metrics.submissions.labels("RayJob").inc()
    status.attempts = attempt
    status.next_retry_time = None
    status.start_time = status.start_time or now
    out.events.append(("Normal", "Submitted", f"attempt {attempt}: {status.submission_id}"))
