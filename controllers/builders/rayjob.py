"""The KubeRay RayJob for one attempt of a run: an ephemeral Ray cluster that trains and goes away.

A pure function of the TrainerConfig, the attempt number and the pod-level settings the API carries
(image, memory, node selector, tolerations). Choices worth knowing:

- ``spec.jobId`` is the deterministic submission id, and the object's name is derived from it, so a
  re-run reconcile finds the attempt it already created (create, and treat AlreadyExists as done).
- ``backoffLimit: 0``: KubeRay does not retry by itself. The operator owns retries, and each retry is a
  new attempt — a new RayJob with the next id — that resumes from the run's checkpoints in storage.
  ``submitterConfig.backoffLimit`` still lets the submitter pod retry a failed ``ray job submit``
  (a repeated submission id is refused by Ray, so that retry can never start the job twice).
- ``shutdownAfterJobFinishes`` with a TTL: GPUs are released when training ends, logs stay readable
  for a while.
- Head and workers reach ``training.outputUri`` alike (controllers.builders.storage.pod_storage):
  the Secret's keys as environment, endpoint and region, a gs:// key file or a shared claim mounted.
- The head runs no training (``num-cpus: 0``); one worker group holds exactly ``workers`` pods, each
  requesting (and limited to) its CPUs, memory and GPUs, with a memory-backed /dev/shm for NCCL.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import yaml

from controllers.api.common import Toleration
from controllers.api.training_settings import ScalingSettings
from controllers.builders.ids import rayjob_name
from controllers.builders.jobspec import ATTEMPT_KEY, RUN_KEY, JobSpec
from controllers.builders.storage import PodStorage
from trainer.config import TrainerConfig

RAY_VERSION = "2.60.0"  # the Ray of the trainer image (pyproject's trainer extra)
GPU_RESOURCE = "nvidia.com/gpu"


@dataclass(frozen=True)
class PodSettings:
    """What the pods need beyond the TrainerConfig: from the policy's ScalingSettings, plus head sizing."""

    image: str
    memory_per_worker: str = "32Gi"
    node_selector: dict[str, str] = field(default_factory=dict)
    tolerations: list[dict[str, Any]] = field(default_factory=list)
    head_cpu: str = "2"
    head_memory: str = "8Gi"
    service_account: str | None = None
    ttl_seconds_after_finished: int = 600
    submitter_backoff_limit: int = 2
    active_deadline_seconds: int | None = None
    storage: PodStorage = field(default_factory=PodStorage)  # how head and workers reach outputUri

    @classmethod
    def from_scaling(
        cls, scaling: ScalingSettings, storage: PodStorage | None = None, **overrides: Any
    ) -> PodSettings:
        storage = storage or PodStorage()
        overrides.setdefault("service_account", storage.service_account)
        return cls(
            image=scaling.image,
            memory_per_worker=scaling.memory_per_worker,
            node_selector=dict(scaling.node_selector),
            tolerations=[_toleration(t) for t in scaling.tolerations],
            storage=storage,
            **overrides,
        )


def _toleration(toleration: Toleration) -> dict[str, Any]:
    return toleration.to_wire()


def _resources(cpu: str, memory: str, gpus: int = 0) -> dict[str, dict[str, str]]:
    amounts = {"cpu": cpu, "memory": memory}
    if gpus:
        amounts[GPU_RESOURCE] = str(gpus)
    return {"requests": dict(amounts), "limits": dict(amounts)}


def _with_storage(pod: dict[str, Any], storage: PodStorage) -> dict[str, Any]:
    """The pod with the storage environment and volumes added to its (one) container."""
    container = pod["containers"][0]
    if storage.env:
        container["env"] = [dict(item) for item in storage.env]
    if storage.env_from:
        container["envFrom"] = [dict(item) for item in storage.env_from]
    if storage.mounts:
        container["volumeMounts"] = [*container.get("volumeMounts", []), *storage.mounts]
    if storage.volumes:
        pod["volumes"] = [*pod.get("volumes", []), *storage.volumes]
    return pod


def _head(pods: PodSettings, labels: dict[str, str]) -> dict[str, Any]:
    container = {
        "name": "ray-head",
        "image": pods.image,
        "resources": _resources(pods.head_cpu, pods.head_memory),
        "ports": [
            {"name": "gcs-server", "containerPort": 6379},
            {"name": "dashboard", "containerPort": 8265},
            {"name": "client", "containerPort": 10001},
        ],
    }
    pod: dict[str, Any] = {"containers": [container]}
    if pods.service_account:
        pod["serviceAccountName"] = pods.service_account
    return {
        "rayStartParams": {"num-cpus": "0", "dashboard-host": "0.0.0.0"},
        "template": {"metadata": {"labels": labels}, "spec": _with_storage(pod, pods.storage)},
    }


def _workers(config: TrainerConfig, pods: PodSettings, labels: dict[str, str]) -> dict[str, Any]:
    scaling = config.scaling
    container = {
        "name": "ray-worker",
        "image": pods.image,
        "resources": _resources(
            str(scaling.cpus_per_worker), pods.memory_per_worker, scaling.gpus_per_worker
        ),
        "volumeMounts": [{"name": "dshm", "mountPath": "/dev/shm"}],
    }
    pod: dict[str, Any] = {
        "containers": [container],
        "volumes": [{"name": "dshm", "emptyDir": {"medium": "Memory"}}],
    }
    if pods.node_selector:
        pod["nodeSelector"] = dict(pods.node_selector)
    if pods.tolerations:
        pod["tolerations"] = [dict(t) for t in pods.tolerations]
    if pods.service_account:
        pod["serviceAccountName"] = pods.service_account
    return {
        "groupName": "gpu-workers" if scaling.use_gpu else "cpu-workers",
        "replicas": scaling.workers,
        "minReplicas": scaling.workers,
        "maxReplicas": scaling.workers,
        "rayStartParams": {},
        "template": {"metadata": {"labels": labels}, "spec": _with_storage(pod, pods.storage)},
    }


def build_rayjob(
    config: TrainerConfig,
    job: JobSpec,
    pods: PodSettings,
    *,
    namespace: str,
    attempt: int,
    owner: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The RayJob manifest (a plain dict, ready for the API server) for ``job``, attempt ``attempt``."""
    labels = {
        "app.kubernetes.io/name": "kaizen-trainer",
        "app.kubernetes.io/managed-by": "kaizen",
        RUN_KEY: config.run_name,
        ATTEMPT_KEY: str(attempt),
    }
    metadata: dict[str, Any] = {
        "name": rayjob_name(config.run_name, attempt, config.config_hash()),
        "namespace": namespace,
        "labels": labels,
        "annotations": {"kaizen.dev/submission-id": job.submission_id},
    }
    if owner:
        metadata["ownerReferences"] = [owner]
    spec: dict[str, Any] = {
        "entrypoint": job.entrypoint,
        "jobId": job.submission_id,
        "submissionMode": "K8sJobMode",
        "metadata": dict(job.metadata),
        "runtimeEnvYAML": yaml.safe_dump(job.runtime_env, sort_keys=True),
        "shutdownAfterJobFinishes": True,
        "ttlSecondsAfterFinished": pods.ttl_seconds_after_finished,
        "backoffLimit": 0,
        "submitterConfig": {"backoffLimit": pods.submitter_backoff_limit},
        "rayClusterSpec": {
            "rayVersion": RAY_VERSION,
            "headGroupSpec": _head(pods, labels),
            "workerGroupSpecs": [_workers(config, pods, labels)],
        },
    }
    if pods.active_deadline_seconds:
        spec["activeDeadlineSeconds"] = pods.active_deadline_seconds
    return {"apiVersion": "ray.io/v1", "kind": "RayJob", "metadata": metadata, "spec": spec}


def owner_reference(api_version: str, kind: str, name: str, uid: str) -> dict[str, Any]:
    """The TrainingRun as the RayJob's controlling owner: deleting the run deletes its jobs."""
    return {
        "apiVersion": api_version,
        "kind": kind,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }
