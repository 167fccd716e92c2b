"""What KubeRay would write on a RayJob's status, as pure functions of the object and Ray's answer.

Field names and values are KubeRay's (``ray-operator/apis/ray/v1/rayjob_types.go``): ``jobId``,
``rayClusterName``, ``dashboardURL``, ``jobStatus`` (Ray's PENDING/RUNNING/STOPPED/SUCCEEDED/FAILED),
``jobDeploymentStatus`` (Initializing -> Running -> Complete | Failed, or ValidationFailed),
``reason`` (SubmissionFailed, DeadlineExceeded, AppFailed, ValidationFailed), ``message``,
``startTime``/``endTime``, ``rayJobInfo.startTime/endTime``, ``succeeded``/``failed`` counts and
``observedGeneration``. As in KubeRay, the submission id is ``spec.jobId`` when set; otherwise one is
derived — here from the object's uid, so that it is the same after any restart — and recorded in
``status.jobId`` before anything is submitted.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any

import yaml

from controllers.builders.jobspec import JobSpec
from controllers.clients.ray_jobs import JobInfo, JobStatus

FINALIZER = "ray.io/rayjob-finalizer"  # KubeRay's: deleting a RayJob stops its Ray job first
CLUSTER_SELECTOR_KEY = "ray.io/cluster"
INITIALIZING, RUNNING, COMPLETE, FAILED = "Initializing", "Running", "Complete", "Failed"
VALIDATION_FAILED = "ValidationFailed"
TERMINAL_DEPLOYMENT = {COMPLETE, FAILED, VALIDATION_FAILED}


class InvalidRayJob(ValueError):
    """The RayJob's spec cannot be submitted as it is."""


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _from_millis(millis: int | None) -> str | None:
    return timestamp(datetime.fromtimestamp(millis / 1000, UTC)) if millis else None


def _suffix(rayjob: dict[str, Any], salt: str) -> str:
    # KubeRay appends 5 random characters; a digest of the uid is as unique and survives restarts.
    return hashlib.sha256(f"{rayjob['metadata']['uid']}/{salt}".encode()).hexdigest()[:5]


def submission_id(rayjob: dict[str, Any]) -> str:
    spec, status = rayjob.get("spec") or {}, rayjob.get("status") or {}
    return str(
        spec.get("jobId") or status.get("jobId") or f"{rayjob['metadata']['name']}-{_suffix(rayjob, 'job')}"
    )


def cluster_name(rayjob: dict[str, Any]) -> str:
    selector = (rayjob.get("spec") or {}).get("clusterSelector") or {}
    return str(
        selector.get(CLUSTER_SELECTOR_KEY) or f"{rayjob['metadata']['name']}-{_suffix(rayjob, 'cluster')}"
    )


def job_spec(rayjob: dict[str, Any]) -> JobSpec:
    """The Ray job a RayJob asks for: entrypoint, runtime environment and metadata, under its id."""
    spec = rayjob.get("spec") or {}
    if not str(spec.get("entrypoint") or "").strip():
        raise InvalidRayJob("spec.entrypoint: empty; the local runtime submits the entrypoint to Ray")
    try:
        runtime_env = yaml.safe_load(spec.get("runtimeEnvYAML") or "{}") or {}
    except yaml.YAMLError as error:
        raise InvalidRayJob(f"spec.runtimeEnvYAML: not YAML: {error}") from error
    if not isinstance(runtime_env, dict):
        raise InvalidRayJob("spec.runtimeEnvYAML: must be a mapping")
    if not isinstance(runtime_env.get("env_vars") or {}, dict):
        raise InvalidRayJob("spec.runtimeEnvYAML: env_vars must be a mapping of names to strings")
    metadata = {str(k): str(v) for k, v in (spec.get("metadata") or {}).items()}
    return JobSpec(submission_id(rayjob), spec["entrypoint"], runtime_env, metadata)


def is_terminal(status: dict[str, Any]) -> bool:
    return status.get("jobDeploymentStatus") in TERMINAL_DEPLOYMENT


def _generation(rayjob: dict[str, Any]) -> dict[str, Any]:
    return {"observedGeneration": rayjob["metadata"].get("generation", 1)}


def initializing(rayjob: dict[str, Any], now: datetime) -> dict[str, Any]:
    """First sight: the job id and cluster name are fixed before anything is submitted."""
    return {
        "jobId": submission_id(rayjob),
        "rayClusterName": cluster_name(rayjob),
        "jobDeploymentStatus": INITIALIZING,
        "startTime": timestamp(now),
        **_generation(rayjob),
    }


def submitted(rayjob: dict[str, Any], dashboard_url: str) -> dict[str, Any]:
    return {"dashboardURL": dashboard_url, "jobDeploymentStatus": RUNNING, **_generation(rayjob)}


def _ended(
    rayjob: dict[str, Any], deployment: str, reason: str, message: str, now: datetime
) -> dict[str, Any]:
    status = rayjob.get("status") or {}
    patch = {
        "jobDeploymentStatus": deployment,
        "reason": reason,
        "message": message,
        "endTime": timestamp(now),
        "succeeded": int(status.get("succeeded") or 0),
        "failed": int(status.get("failed") or 0) + (deployment != COMPLETE),
        **_generation(rayjob),
    }
    if deployment == COMPLETE and status.get("jobStatus") == JobStatus.SUCCEEDED:
        patch["succeeded"] += 1
    return patch


def failed(rayjob: dict[str, Any], reason: str, message: str, now: datetime) -> dict[str, Any]:
    deployment = VALIDATION_FAILED if reason == VALIDATION_FAILED else FAILED
    return _ended(rayjob, deployment, reason, message, now)


def observed(rayjob: dict[str, Any], info: JobInfo, now: datetime) -> dict[str, Any]:
    """Ray's view of the job mirrored onto the status; Complete or Failed once Ray's status is final."""
    patch: dict[str, Any] = {"jobStatus": info.status.value, "message": info.message, **_generation(rayjob)}
    started, ended = _from_millis(info.start_time), _from_millis(info.end_time)
    patch["rayJobInfo"] = {k: v for k, v in (("startTime", started), ("endTime", ended)) if v}
    if info.status.terminal:
        mirrored = {**rayjob, "status": {**(rayjob.get("status") or {}), "jobStatus": info.status.value}}
        if info.status == JobStatus.FAILED:
            patch.update(_ended(mirrored, FAILED, "AppFailed", info.message, now))
        else:
            patch.update(_ended(mirrored, COMPLETE, "", info.message, now))
    return patch


def deadline_passed(rayjob: dict[str, Any], now: datetime) -> bool:
    seconds = (rayjob.get("spec") or {}).get("activeDeadlineSeconds")
    started = (rayjob.get("status") or {}).get("startTime")
    if not seconds or not started:
        return False
    start = datetime.strptime(started, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    return (now - start).total_seconds() > float(seconds)


def changed(current: dict[str, Any], patch: dict[str, Any]) -> bool:
    """Whether writing ``patch`` would change the status (timestamps of a settled state aside)."""
    return any(
        (current.get(key) or None) != (value or None) for key, value in patch.items() if key != "endTime"
    )
