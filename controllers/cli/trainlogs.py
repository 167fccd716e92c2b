"""Where a TrainingRun's trainer log is, and reading it (``kaizen logs trainingrun``).

An attempt runs one of two ways (``spec.training.scaling.submission``), and its log is where that way
keeps it:

- RayJob (KubeRay): KubeRay's submitter Job, named like the RayJob, runs ``ray job submit`` and follows
  the driver, so its pod's log (the core API's pods/log) is the trainer's output; it outlives the Ray
  cluster, which KubeRay deletes after the job. A RayJob without submitter pods (KubeRay's HTTP mode,
  the local stack's stand-in) is read from the Ray dashboard it names in ``status.dashboardURL``, under
  ``status.jobId``.
- Ray Jobs API: the cluster's dashboard (``spec.training.scaling.rayAddress``), under the attempt's
  submission id.

The ids of any attempt are the deterministic ones the operator submitted it under
(controllers.builders.ids), so ``--attempt 1`` finds a job the status no longer names.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import httpx
import typer

from controllers.cli.requests import RequestError

TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
POLL_SECONDS = 1.0


def print_logs(namespace: str, name: str, attempt: int | None, follow: bool, ray_address: str | None) -> None:
    from controllers.api import kinds
    from controllers.api.training_settings import Submission
    from controllers.api.trainingrun import TrainingRun, TrainingRunStatus
    from controllers.builders.ids import rayjob_name, submission_id
    from controllers.builders.jobspec import trainer_config
    from controllers.cli.requests import read

    run = TrainingRun.model_validate(read(kinds.RUNS, namespace, name))
    status = run.status or TrainingRunStatus()
    if status.attempts == 0 or status.dataset is None:
        ready = next((c.message for c in status.conditions if c.type == "Ready"), "") or "not started"
        raise RequestError(f"trainingrun/{name} has submitted no job yet ({ready}); there is no log to read")
    number = attempt or status.attempts
    if number > status.attempts:
        raise RequestError(
            f"trainingrun/{name} has made {status.attempts} attempts: pass --attempt 1 to {status.attempts}"
        )
    latest = number == status.attempts
    config_hash = trainer_config(
        name, run.spec.training, dataset_uri=status.dataset.uri, dataset_hash=None
    ).config_hash()
    job_id = status.submission_id if latest else submission_id(name, number, config_hash)
    scaling = run.spec.training.scaling
    if scaling.submission == Submission.RAY_JOBS_API:
        return _from_ray(ray_address or scaling.ray_address or "", job_id, follow)
    job_name = status.job_name if latest and status.job_name else rayjob_name(name, number, config_hash)
    rayjob = _rayjob(namespace, job_name)
    if rayjob is None:
        raise RequestError(
            f"RayJob {job_name} (attempt {number}) is gone, and its log with it; the run's conditions keep"
            f" its last line: kubectl describe trainingrun {name} -n {namespace}"
        )
    if pod := _submitter_pod(namespace, job_name):
        return _from_pod(namespace, pod, follow)
    job_status = rayjob.get("status") or {}
    dashboard = job_status.get("dashboardURL")
    address = ray_address or (
        dashboard if "://" in str(dashboard) else f"http://{dashboard}" if dashboard else ""
    )
    if not address:
        raise RequestError(
            f"RayJob {job_name} has no submitter pod and names no Ray dashboard yet"
            f" ({job_status.get('jobDeploymentStatus') or 'not started'}); try again in a moment"
        )
    _from_ray(
        address, str(job_status.get("jobId") or (rayjob.get("spec") or {}).get("jobId") or job_id), follow
    )


def _api() -> Any:
    from controllers.cli.kubeapi import api_client

    return api_client()


def _rayjob(namespace: str, name: str) -> dict[str, Any] | None:
    from kubernetes.client import CustomObjectsApi
    from kubernetes.client.exceptions import ApiException

    from controllers.api import kinds

    resource = kinds.RAYJOBS
    try:
        objects: Any = CustomObjectsApi(_api())
        body: dict[str, Any] = objects.get_namespaced_custom_object(
            resource.group, resource.version, namespace, resource.plural, name
        )
    except ApiException as error:
        if error.status == 404:
            return None
        raise RequestError(
            f"the API server refused to read rayjobs/{name}: {error.status} {error.reason}"
        ) from error
    return body


def _submitter_pod(namespace: str, job: str) -> str:
    """The newest pod of KubeRay's submitter Job (a retried ``ray job submit`` makes several), or ""."""
    from kubernetes.client import CoreV1Api
    from kubernetes.client.exceptions import ApiException

    try:
        core: Any = CoreV1Api(_api())
        pods: list[Any] = core.list_namespaced_pod(namespace, label_selector=f"job-name={job}").items
    except ApiException as error:
        raise RequestError(
            f"the API server refused to list pods ({error.status} {error.reason}); check"
            f" `kubectl auth can-i list pods -n {namespace}`"
        ) from error
    newest = max(pods, key=lambda pod: pod.metadata.creation_timestamp, default=None)
    return str(newest.metadata.name) if newest is not None else ""


def _from_pod(namespace: str, pod: str, follow: bool) -> None:
    from kubernetes.client import CoreV1Api
    from kubernetes.client.exceptions import ApiException

    try:
        core: Any = CoreV1Api(_api())
        response: Any = core.read_namespaced_pod_log(pod, namespace, follow=follow, _preload_content=False)
    except ApiException as error:
        raise RequestError(
            f"the API server refused the log of pod {pod}: {error.status} {error.reason}"
        ) from error
    for chunk in response.stream(4096):
        typer.echo(chunk.decode(errors="replace"), nl=False)


def ray_auth_headers() -> dict[str, str]:
    """Ray's token authentication, found where Ray's own CLI finds it."""
    token = os.environ.get("RAY_AUTH_TOKEN", "")
    path = Path(os.environ.get("RAY_AUTH_TOKEN_PATH") or Path.home() / ".ray" / "auth_token")
    if not token and path.is_file():
        token = path.read_text().strip()
    return {"Authorization": f"Bearer {token}"} if token else {}


def _from_ray(address: str, job_id: str, follow: bool) -> None:
    """Print the job's log from the Ray Jobs API; with ``follow``, what it adds until the job ends."""
    printed = 0
    with httpx.Client(base_url=address.rstrip("/"), headers=ray_auth_headers(), timeout=30) as client:
        while True:
            ended = (
                not follow or _ray_get(client, address, f"/api/jobs/{job_id}", job_id)["status"] in TERMINAL
            )
            logs = str(_ray_get(client, address, f"/api/jobs/{job_id}/logs", job_id).get("logs") or "")
            typer.echo(logs[printed:], nl=False)
            printed = len(logs)
            if ended:
                return
            time.sleep(POLL_SECONDS)


def _ray_get(client: httpx.Client, address: str, path: str, job_id: str) -> dict[str, Any]:
    try:
        response = client.get(path)
    except httpx.TransportError as error:
        raise RequestError(
            f"cannot reach the Ray dashboard at {address} ({type(error).__name__}); from outside the"
            " cluster, port-forward its head service (kubectl port-forward svc/<ray cluster>-head-svc"
            " 8265) and pass --ray-address http://127.0.0.1:8265"
        ) from error
    if response.status_code in (401, 403):
        raise RequestError(
            f"the Ray dashboard at {address} refused ({response.status_code}): set RAY_AUTH_TOKEN to the"
            " cluster's token"
        )
    if response.status_code == 404:
        raise RequestError(
            f"Ray at {address} has no job {job_id}: the Ray cluster that ran it may be gone (KubeRay"
            " deletes it after the job), or --ray-address names another one"
        )
    if response.is_error:
        raise RequestError(f"Ray at {address} answered {response.status_code}: {response.text[-300:]}")
    body: dict[str, Any] = response.json()
    return body
