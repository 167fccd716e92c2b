"""The RayJob stand-in: runs each RayJob's entrypoint on a real Ray head and mirrors KubeRay's status.

Where KubeRay would create a RayCluster and a submitter pod, this controller submits the RayJob's
entrypoint, runtime environment and metadata to an existing Ray head through the Jobs REST API, under
the RayJob's submission id. Ray refuses an id it has seen, so a restarted stand-in that submits again
gets "already submitted" and carries on following the one job — never a second run. Like KubeRay it
adds a finalizer, and deleting a RayJob whose job is still going stops the job before the object goes.
Ray's job list is read once per poll for all running RayJobs, so hundreds of them cost one request.

The job gets only what the RayJob's pods would get (``devstack.runtime.pods``): the env of their
spec with its Secrets and ConfigMaps read from the API server, a fresh empty working folder, and no
volume the local machine cannot give; what the Ray head itself passes on is kept to the "image" by
``devstack.localray``. A pod that could not start (a missing Secret, key or ServiceAccount, a volume
the local runtime cannot mount) fails the RayJob at once with the kubelet's message, where KubeRay
would leave it Initializing until a deadline: the operator sees the same message sooner.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

from controllers.api.kinds import RAYJOBS
from controllers.builders.jobspec import JobSpec
from controllers.clients.ray_jobs import JobInfo, RayJobsClient, RayJobsError
from controllers.runtime.kube import Kube, KubeError
from devstack.runtime import pods
from devstack.runtime import rayjob_status as status_of
from devstack.runtime.kube import Key, merge_patch

log = logging.getLogger(__name__)
POLL = 1.0


class RayJobController:
    def __init__(self, kube: Kube, ray: RayJobsClient, ray_address: str) -> None:
        self.kube, self.ray = kube, ray
        self.dashboard_url = urlsplit(ray_address).netloc  # KubeRay records host:port, without a scheme
        self._jobs: dict[str, JobInfo] = {}
        self._jobs_at = 0.0

    async def reconcile(self, key: Key, rayjob: dict[str, Any] | None) -> float | None:
        if rayjob is None:
            return None
        meta = rayjob["metadata"]
        if meta.get("deletionTimestamp"):
            await self._finalize(rayjob)
            return None
        if status_of.FINALIZER not in meta.get("finalizers", []):
            finalizers = [*meta.get("finalizers", []), status_of.FINALIZER]
            await self._patch(rayjob, {"metadata": {"finalizers": finalizers}})
            return None  # the update comes back through the watch
        status = rayjob.get("status") or {}
        now = datetime.now(UTC)
        phase = status.get("jobDeploymentStatus")
        if not phase:
            await self._write(rayjob, status_of.initializing(rayjob, now))
            return None
        if status_of.is_terminal(status):
            return None
        if status_of.deadline_passed(rayjob, now):
            await self._stop(status_of.submission_id(rayjob))
            message = f"activeDeadlineSeconds={rayjob['spec']['activeDeadlineSeconds']} passed"
            await self._write(rayjob, status_of.failed(rayjob, "DeadlineExceeded", message, now))
            return None
        if phase == status_of.INITIALIZING:
            return await self._submit(rayjob, now)
        return await self._follow(rayjob, now)

    async def _submit(self, rayjob: dict[str, Any], now: datetime) -> float | None:
        try:
            job = status_of.job_spec(rayjob)
        except status_of.InvalidRayJob as invalid:
            await self._write(
                rayjob, status_of.failed(rayjob, status_of.VALIDATION_FAILED, str(invalid), now)
            )
            return None
        try:
            job = await self._in_pod(rayjob, job)
        except pods.PodConfigError as error:
            await self._write(rayjob, status_of.failed(rayjob, "SubmissionFailed", str(error), now))
            return None
        try:
            outcome = await self.ray.submit(job)
        except RayJobsError as error:
            if error.transient:
                log.info("RayJob %s: Ray not answering (%s); will retry", rayjob["metadata"]["name"], error)
                return 2.0
            await self._write(rayjob, status_of.failed(rayjob, "SubmissionFailed", str(error), now))
            return None
        log.info(
            "RayJob %s/%s: %s %s",
            rayjob["metadata"]["namespace"],
            rayjob["metadata"]["name"],
            outcome.value,
            job.submission_id,
        )
        await self._write(rayjob, status_of.submitted(rayjob, self.dashboard_url))
        return POLL

    async def _in_pod(self, rayjob: dict[str, Any], job: JobSpec) -> JobSpec:
        """The job with what its pods would have, read from the API server now."""
        refused = pods.unmountable(rayjob)
        if refused:
            raise pods.PodConfigError(refused)
        namespace = rayjob["metadata"]["namespace"]
        objects = {
            (kind, name): await self.kube.get(pods.RESOURCES[kind], namespace, name)
            for kind, name in sorted(pods.references(rayjob))
        }
        env, differing = pods.job_env(rayjob, objects)
        accounts = sorted({pod.service_account or "default" for pod in pods.pods(rayjob)})
        log.info(
            "RayJob %s/%s: env %s from its pod spec; ServiceAccount %s (grants no credentials locally)%s",
            namespace,
            rayjob["metadata"]["name"],
            sorted(env),
            ", ".join(accounts),
            f"; not set, as its pods differ: {sorted(differing)}" if differing else "",
        )
        return pods.in_pod(job, env)

    async def _follow(self, rayjob: dict[str, Any], now: datetime) -> float | None:
        job_id = status_of.submission_id(rayjob)
        try:
            info = await self._job(job_id)
        except RayJobsError as error:
            log.info("RayJob %s: cannot read job %s (%s)", rayjob["metadata"]["name"], job_id, error)
            return 2.0
        if info is None:
            message = f"Ray job {job_id} not found on the Ray cluster"
            await self._write(rayjob, status_of.failed(rayjob, "AppFailed", message, now))
            return None
        patch = status_of.observed(rayjob, info, now)
        if status_of.changed(rayjob.get("status") or {}, patch):
            await self._write(rayjob, patch)
        return None if info.status.terminal else POLL

    async def _job(self, job_id: str) -> JobInfo | None:
        """The job from one list of all jobs per poll interval; a job newer than the list is asked for alone."""
        loop_time = time.monotonic()
        if loop_time - self._jobs_at >= POLL:
            self._jobs = {info.submission_id: info for info in await self.ray.jobs()}
            self._jobs_at = loop_time
        return self._jobs.get(job_id) or await self.ray.get(job_id)

    async def _stop(self, job_id: str) -> None:
        try:
            await self.ray.stop(job_id)
        except RayJobsError as error:
            if error.status_code != 404:
                raise

    async def _finalize(self, rayjob: dict[str, Any]) -> None:
        meta = rayjob["metadata"]
        if status_of.FINALIZER not in meta.get("finalizers", []):
            return
        status = rayjob.get("status") or {}
        if status.get("jobDeploymentStatus") and not status_of.is_terminal(status):
            await self._stop(status_of.submission_id(rayjob))
            log.info("RayJob %s/%s deleted: stopped its Ray job", meta["namespace"], meta["name"])
        finalizers = [f for f in meta["finalizers"] if f != status_of.FINALIZER]
        await self._patch(rayjob, {"metadata": {"finalizers": finalizers}})

    async def _patch(self, rayjob: dict[str, Any], patch: dict[str, Any]) -> None:
        meta = rayjob["metadata"]
        patch["metadata"]["resourceVersion"] = meta["resourceVersion"]  # refused if the object moved on
        try:
            await merge_patch(self.kube, RAYJOBS, rayjob, patch)
        except KubeError as error:
            if error.status not in (404, 409):
                raise

    async def _write(self, rayjob: dict[str, Any], status: dict[str, Any]) -> None:
        """A status patch, refused (and retried on the next event) if our copy of the object is stale,
        so counts and transitions are never applied twice."""
        meta = rayjob["metadata"]
        body = {"metadata": {"resourceVersion": meta["resourceVersion"]}, "status": status}
        try:
            await merge_patch(self.kube, RAYJOBS, rayjob, body, "status")
        except KubeError as error:
            if error.status not in (404, 409):
                raise
