"""TrainingRun reconcile: the I/O around controllers.decisions.runplan.

Snapshot the dataset (content-addressed, so a repeat writes the same files), submit the attempt with
its deterministic id (a RayJob object, or a POST to the Ray Jobs API), follow it, read the trainer's
manifest, apply the offline gate and create the ShadowModel. Returns the new status; the handler
writes it.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from controllers.api import kinds
from controllers.api.common import parse_duration
from controllers.api.learningpolicy import PairSources
from controllers.api.settings import Submission
from controllers.api.trainingrun import (
    AdapterStatus,
    DatasetStatus,
    TrainingMetrics,
    TrainingRun,
    TrainingRunStatus,
)
from controllers.builders.jobspec import job_spec, trainer_config
from controllers.builders.rayjob import PodSettings, build_rayjob
from controllers.clients.ray_jobs import JobStatus, RayJobsClient
from controllers.decisions.conditions import READY, Want, merge
from controllers.decisions.runplan import (
    GATE,
    SUCCEEDED,
    JobPhase,
    JobState,
    Next,
    Step,
    gate_verdict,
    next_step,
)
from controllers.reconcile.deps import Dependencies, utcnow
from controllers.reconcile.mining import trainable_sources
from controllers.store.snapshot import SnapshotFilter, export_dpo, export_sft
from trainer.config import Method, TrainerConfig, TrainerManifest

RAY_PHASES = {
    JobStatus.PENDING: JobPhase.PENDING,
    JobStatus.RUNNING: JobPhase.RUNNING,
    JobStatus.SUCCEEDED: JobPhase.SUCCEEDED,
    JobStatus.FAILED: JobPhase.FAILED,
    JobStatus.STOPPED: JobPhase.STOPPED,
}


@dataclass
class Outcome:
    status: TrainingRunStatus
    events: list[tuple[str, str, str]] = field(default_factory=list)  # (type, reason, message)
    requeue: float | None = None


def config_for(run: TrainingRun, name: str, status: TrainingRunStatus) -> TrainerConfig:
    dataset = status.dataset
    assert dataset is not None
    # The store hashes the exported lines, the trainer the rows it reads: two different digests of the
    # same content, so the job records its own (manifest.dataset.contentHash) instead of checking ours.
    return trainer_config(name, run.spec.training, dataset_uri=dataset.uri, dataset_hash=None)


async def reconcile(body: dict[str, Any], run: TrainingRun, deps: Dependencies) -> Outcome:
    meta = body["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    status = run.status or TrainingRunStatus()
    out = Outcome(status.model_copy(deep=True))
    now = deps.clock()
    out.status.observed_generation = meta.get("generation", 0)
    job = await observe_job(run, name, namespace, out.status, deps) if out.status.attempts else None
    step = next_step(out.status, job, run.spec.retry, now)
    if step.step == Step.SNAPSHOT:
        policy = (
            await deps.kube.get(kinds.POLICIES, namespace, run.spec.policy_ref)
            if run.spec.policy_ref
            else None
        )
        flt = snapshot_filter(run, policy, now)
        dataset = await asyncio.to_thread(export_snapshot, run, namespace, name, deps, flt)
        if dataset.train_rows == 0:
            out.status.completion_time = now
            out.status.dataset = dataset
            _set(
                out,
                step,
                Want.false(READY, "NoTrainingData", "the snapshot holds no trainable rows for this track"),
            )
            out.events.append(("Warning", "NoTrainingData", "snapshot is empty; nothing to train"))
            return out
        out.status.dataset = dataset
        out.events.append(
            (
                "Normal",
                "Snapshotted",
                f"{dataset.train_rows} train / {dataset.eval_rows} eval rows, {dataset.content_hash[:19]}",
            )
        )
        step = next_step(out.status, None, run.spec.retry, now)
    if step.step == Step.SUBMIT:
        await submit(body, run, name, namespace, out.status, step.attempt, deps)
        out.status.attempts = step.attempt
        out.status.next_retry_time = None
        out.status.start_time = out.status.start_time or now
        out.events.append(("Normal", "Submitted", f"attempt {step.attempt}: {out.status.submission_id}"))
        out.requeue = deps.settings.poll_seconds
    elif step.step == Step.WAIT_RETRY:
        if out.status.next_retry_time is None:
            out.status.next_retry_time = now + (step.wait or deps.clock() - now)
            out.events.append(
                (
                    "Warning",
                    "AttemptFailed",
                    step.conditions[0].message if step.conditions else "attempt failed",
                )
            )
        out.requeue = step.wait.total_seconds() if step.wait else deps.settings.poll_seconds
    elif step.step == Step.FOLLOW:
        out.requeue = deps.settings.poll_seconds
    elif step.step == Step.READ_OUTPUT:
        await read_output(run, name, out, deps)
        step = next_step(out.status, job, run.spec.retry, now)
    if step.step == Step.DONE and step.finished and out.status.completion_time is None:
        out.status.completion_time = now
        deps.metrics.training_runs.labels("Failed").inc()
        out.events.append(("Warning", "Failed", step.conditions[0].message if step.conditions else "failed"))
    if step.step == Step.CREATE_SHADOW:
        await create_shadow_model(body, run, out.status, deps)
        out.events.append(("Normal", "ShadowModelCreated", out.status.shadow_model))
    _set(out, step)
    return out


def _set(out: Outcome, step: Next, *extra: Want) -> None:
    """Conditions for the step reached; a finished run says Succeeded or GateNotMet."""
    wants = list(step.conditions) + list(extra)
    if not wants and out.status.completion_time is not None and out.status.adapter is not None:
        passed = any(c.type == GATE and c.status == "True" for c in out.status.conditions)
        wants = [
            Want.true(READY, "Succeeded", f"trained; ShadowModel {out.status.shadow_model}")
            if passed
            else Want.true(READY, "GateNotMet", "trained, but the adapter did not pass the offline gate")
        ]
    out.status.conditions = merge(
        out.status.conditions, wants, generation=out.status.observed_generation, now=utcnow()
    )


def snapshot_filter(run: TrainingRun, policy: dict[str, Any] | None, now: datetime) -> SnapshotFilter:
    """The policy's track and pair sources, the run's frozen data settings."""
    spec = (policy or {}).get("spec", {})
    track = spec.get("track", {})
    sources = spec.get("pairSources")
    # The same sources the policy counts as trainable (a hand-made run without a policy takes all).
    enabled = None if sources is None else trainable_sources(PairSources.model_validate(sources))
    data = run.spec.data
    return SnapshotFilter(
        agent=track.get("agent"),
        role=track.get("role"),
        task_family=track.get("taskFamily"),
        require_review=data.require_review,
        sources=enabled,
        min_reward=data.min_reward,
        since=now - parse_duration(data.max_age) if data.max_age else None,
    )


def export_snapshot(
    run: TrainingRun, namespace: str, name: str, deps: Dependencies, flt: SnapshotFilter
) -> DatasetStatus:
    """Export the track's trainable data; the folder is named by run, the content by its hash."""
    out_dir = deps.settings.data_root / "snapshots" / namespace / name
    export = export_dpo if run.spec.training.method.value == Method.DPO.value else export_sft
    snap = export(deps.engine, out_dir, flt, scrub_pii=run.spec.data.scrub_pii)
    assert snap.watermark is not None or snap.train_rows == 0
    return DatasetStatus(
        uri=out_dir.as_uri(),
        content_hash=snap.content_hash,
        watermark=snap.watermark or deps.clock(),
        train_rows=snap.train_rows,
        eval_rows=snap.eval_rows,
        scrubbed_values=sum(snap.scrubbed.values()),
    )


async def observe_job(
    run: TrainingRun, name: str, namespace: str, status: TrainingRunStatus, deps: Dependencies
) -> JobState:
    scaling = run.spec.training.scaling
    if scaling.submission == Submission.RAY_JOBS_API:
        assert scaling.ray_address
        async with RayJobsClient(scaling.ray_address) as ray:
            info = await ray.get(status.submission_id)
        if info is None:
            return JobState(JobPhase.MISSING)
        return JobState(RAY_PHASES[info.status], info.message)
    rayjob = await deps.kube.get(kinds.RAYJOBS, namespace, status.job_name)
    if rayjob is None:
        return JobState(JobPhase.MISSING)
    return rayjob_state(rayjob)


def rayjob_state(rayjob: dict[str, Any]) -> JobState:
    """KubeRay's status as a phase: jobStatus says what Ray reports, jobDeploymentStatus what KubeRay
    did (a Failed deployment, e.g. a cluster that never came up, fails the attempt too)."""
    status = rayjob.get("status") or {}
    message = str(status.get("message") or "")
    if status.get("jobDeploymentStatus") == "Failed":
        return JobState(JobPhase.FAILED, message or str(status.get("reason") or "RayJob deployment failed"))
    job_status = status.get("jobStatus")
    if not job_status:
        return JobState(JobPhase.PENDING, message)
    return JobState(RAY_PHASES[JobStatus(job_status)], message)


async def submit(
    body: dict[str, Any],
    run: TrainingRun,
    name: str,
    namespace: str,
    status: TrainingRunStatus,
    attempt: int,
    deps: Dependencies,
) -> None:
    config = config_for(run, name, status)
    job = job_spec(config, attempt, python=deps.settings.python, env=deps.settings.trainer_env)
    status.submission_id = job.submission_id
    scaling = run.spec.training.scaling
    if scaling.submission == Submission.RAY_JOBS_API:
        assert scaling.ray_address
        async with RayJobsClient(scaling.ray_address) as ray:
            await ray.submit(job)  # a repeat of the same id is refused by Ray and reported, not resubmitted
        deps.metrics.submissions.labels("RayJobsAPI").inc()
        return
    manifest = build_rayjob(
        config,
        job,
        PodSettings.from_scaling(scaling),
        namespace=namespace,
        attempt=attempt,
        owner=kinds.owner(body),
    )
    status.job_name = manifest["metadata"]["name"]
    _, created = await deps.kube.ensure(kinds.RAYJOBS, manifest)
    if created:
        deps.metrics.submissions.labels("RayJob").inc()


async def read_output(run: TrainingRun, name: str, out: Outcome, deps: Dependencies) -> None:
    config = config_for(run, name, out.status)
    manifest = await asyncio.to_thread(load_manifest, config.manifest_uri)
    metrics = manifest.metrics
    out.status.metrics = TrainingMetrics(
        train_loss=metrics.train_loss,
        eval_loss=metrics.eval_loss,
        preference_accuracy=metrics.preference_accuracy,
        reward_margin=metrics.reward_margin,
        steps=metrics.steps,
        gpu_hours=gpu_hours(manifest),
    )
    out.status.adapter = AdapterStatus(uri=config.adapter_uri, digest=manifest.adapter.digest)
    out.status.completion_time = deps.clock()
    passed, message = gate_verdict(run.spec.gate, out.status.metrics)
    gate = Want.true(GATE, "GateMet", message) if passed else Want.false(GATE, "GateNotMet", message)
    out.status.conditions = merge(
        out.status.conditions,
        [
            gate,
            Want.true(SUCCEEDED, "Trained", f"{metrics.steps} steps, adapter {manifest.adapter.digest[:19]}"),
        ],
        generation=out.status.observed_generation,
        now=deps.clock(),
    )
    deps.metrics.training_runs.labels("Succeeded" if passed else "GateNotMet").inc()
    out.events.append(("Normal" if passed else "Warning", "GateMet" if passed else "GateNotMet", message))


def gpu_hours(manifest: TrainerManifest) -> float:
    """GPU-hours the job held: wall time of the whole job times the GPUs of all workers."""
    gpus = manifest.scaling.workers * manifest.scaling.gpus_per_worker
    return round(manifest.timings.total_seconds * gpus / 3600.0, 4)


def load_manifest(uri: str) -> TrainerManifest:
    import fsspec

    with fsspec.open(uri, "r") as handle:
        return TrainerManifest.model_validate(json.load(handle))


def shadow_model_name(run_name: str) -> str:
    return run_name


async def create_shadow_model(
    body: dict[str, Any], run: TrainingRun, status: TrainingRunStatus, deps: Dependencies
) -> None:
    meta = body["metadata"]
    assert status.adapter is not None
    policy_name = run.spec.policy_ref
    policy = None
    owner = kinds.owner(body)
    labels = dict(kinds.MANAGED_BY)
    if policy_name:
        policy = await deps.kube.get(kinds.POLICIES, meta["namespace"], policy_name)
        if policy is not None:
            owner = kinds.owner(policy)  # history survives the run's cleanup
        labels[kinds.POLICY_LABEL] = policy_name
    serving = (policy or {}).get("spec", {}).get("serving", {})
    spec: dict[str, Any] = {
        "trainingRunRef": meta["name"],
        "baseModel": run.spec.training.base_model.to_wire(),
        "adapter": {"uri": status.adapter.uri, "digest": status.adapter.digest},
        "serving": serving,
    }
    if policy_name:
        spec["policyRef"] = policy_name
    shadow: dict[str, Any] = {
        "apiVersion": kinds.API_VERSION,
        "kind": "ShadowModel",
        "metadata": {
            "name": shadow_model_name(meta["name"]),
            "namespace": meta["namespace"],
            "labels": labels,
            "ownerReferences": [owner],
        },
        "spec": spec,
    }
    await deps.kube.ensure(kinds.SHADOW_MODELS, shadow)
    status.shadow_model = shadow["metadata"]["name"]
