"""The RayJob manifests the builder makes are valid for KubeRay's published CRD and lose no field.

Checked against the upstream schema three ways: JSON schema (types, required fields, patterns),
CEL rules (as a >= 1.25 API server runs them), and structural pruning (a field the schema does not
declare would be dropped silently by the API server, so the job would run without it).
"""

from __future__ import annotations

import copy
import re
import shlex
from typing import Any

import pytest
import yaml

from controllers.api.common import Toleration
from controllers.api.storage_settings import GCS_KEY, SECRET_MOUNT, SharedVolume, StorageAccess
from controllers.api.training_settings import BaseModelRef, ScalingSettings, TrainingSettings
from controllers.builders.ids import MAX_RAYJOB_NAME
from controllers.builders.jobspec import job_spec, trainer_config
from controllers.builders.rayjob import GPU_RESOURCE, PodSettings, build_rayjob, owner_reference
from controllers.builders.storage import PodStorage, pod_storage
from tests.trainer.upstream import cel_violations, pruned_fields, rayjob_schema, schema_errors
from trainer.config import TrainerConfig

GPU_SCALING = ScalingSettings(
    workers=4,
    gpus_per_worker=2,
    cpus_per_worker=8,
    memory_per_worker="64Gi",
    image="ghcr.io/kaizen-dev/trainer:0.1.0",
    node_selector={"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"},
    tolerations=[Toleration(key="nvidia.com/gpu", operator="Exists", effect="NoSchedule")],
)


def _manifest(
    scaling: ScalingSettings, attempt: int = 1, storage: PodStorage | None = None, **pod: Any
) -> tuple[TrainerConfig, dict[str, Any]]:
    settings = TrainingSettings(
        base_model=BaseModelRef(name="Qwen/Qwen2.5-Coder-7B-Instruct", uri="s3://models/qwen-coder-7b"),
        scaling=scaling,
    )
    config = trainer_config(
        "coder-dpo-20260101-0930",
        settings,
        dataset_uri="s3://kaizen-snapshots/coder/sha256-abc",
        dataset_hash="sha256:" + "c" * 64,
    )
    owner = owner_reference(
        "kaizen.dev/v1alpha1", "TrainingRun", config.run_name, "0f6c2a1e-1111-2222-3333-444455556666"
    )
    job = job_spec(config, attempt)
    manifest = build_rayjob(
        config,
        job,
        PodSettings.from_scaling(scaling, storage, **pod),
        namespace="agents",
        attempt=attempt,
        owner=owner,
    )
    return config, manifest


@pytest.mark.parametrize(
    "scaling",
    [GPU_SCALING, ScalingSettings(workers=2, gpus_per_worker=0, cpus_per_worker=2, memory_per_worker="8Gi")],
    ids=["gpu", "cpu"],
)
def test_rayjob_validates_against_kuberay_crd_and_nothing_is_pruned(scaling: ScalingSettings) -> None:
    schema = rayjob_schema()
    _, manifest = _manifest(scaling, active_deadline_seconds=86400, service_account="kaizen-trainer")
    assert schema_errors(schema, manifest) == []
    assert pruned_fields(schema, manifest) == []
    assert cel_violations(schema, manifest) == []


LOADED_STORAGE = StorageAccess(
    endpoint="http://minio.storage:9000",
    region="eu-west-1",
    secret_ref="kaizen-storage",
    service_account_name="kaizen-trainer",
)


@pytest.mark.parametrize(
    ("output_uri", "storage"),
    [
        ("s3://kaizen-adapters/coder", LOADED_STORAGE),
        ("gs://kaizen-adapters/coder", StorageAccess(secret_ref="gcs-key", service_account_name="trainer")),
        (
            "file:///mnt/kaizen/runs",
            StorageAccess(secret_ref="s", volume=SharedVolume(claim_name="runs", mount_path="/mnt/kaizen")),
        ),
    ],
    ids=["s3", "gs", "volume"],
)
def test_storage_settings_reach_head_and_workers_and_the_manifest_stays_valid(
    output_uri: str, storage: StorageAccess
) -> None:
    schema = rayjob_schema()
    _, manifest = _manifest(GPU_SCALING, storage=pod_storage(storage, output_uri))
    assert schema_errors(schema, manifest) == []
    assert pruned_fields(schema, manifest) == []
    assert cel_violations(schema, manifest) == []
    cluster = manifest["spec"]["rayClusterSpec"]
    pods = [cluster["headGroupSpec"]["template"]["spec"], cluster["workerGroupSpecs"][0]["template"]["spec"]]
    for pod in pods:
        [container] = pod["containers"]
        env = {item["name"]: item["value"] for item in container.get("env", [])}
        mounts = {m["name"]: m["mountPath"] for m in container.get("volumeMounts", [])}
        volumes = {v["name"]: v for v in pod.get("volumes", [])}
        assert pod.get("serviceAccountName") == storage.service_account_name
        if output_uri.startswith("s3://"):
            assert container["envFrom"] == [{"secretRef": {"name": "kaizen-storage"}}]
            assert env == {"AWS_ENDPOINT_URL": "http://minio.storage:9000", "AWS_DEFAULT_REGION": "eu-west-1"}
        if output_uri.startswith("gs://"):
            assert "envFrom" not in container
            assert env == {"GOOGLE_APPLICATION_CREDENTIALS": f"{SECRET_MOUNT}/{GCS_KEY}"}
            assert volumes["kaizen-storage-secret"] == {
                "name": "kaizen-storage-secret",
                "secret": {"secretName": "gcs-key"},
            }
            assert mounts["kaizen-storage-secret"] == SECRET_MOUNT
        if output_uri.startswith("file://"):
            assert volumes["kaizen-storage-volume"]["persistentVolumeClaim"] == {"claimName": "runs"}
            assert mounts["kaizen-storage-volume"] == "/mnt/kaizen"
    # the workers keep their shared memory beside the storage volumes
    assert "dshm" in {v["name"] for v in pods[1]["volumes"]}
    # no key is written into the RayJob itself: the pods read it from the Secret
    assert "very-secret" not in str(manifest)


def test_the_checks_catch_a_bad_manifest() -> None:
    """The validators can fail: a wrong type, a missing required field and an unknown field are caught."""
    schema = rayjob_schema()
    _, manifest = _manifest(GPU_SCALING)
    broken = copy.deepcopy(manifest)
    broken["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["replicas"] = "four"
    del broken["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["groupName"]
    assert any("replicas" in e for e in schema_errors(schema, broken))
    assert any("groupName" in e for e in schema_errors(schema, broken))
    broken["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["gpuCount"] = 2
    broken["spec"]["submitterConfig"]["retries"] = 1
    assert pruned_fields(schema, broken) == [
        "spec.submitterConfig.retries",
        "spec.rayClusterSpec.workerGroupSpecs[0].template.spec.gpuCount",
    ]


def test_gpu_workers_get_their_gpus_scheduling_and_shared_memory() -> None:
    config, manifest = _manifest(GPU_SCALING)
    spec = manifest["spec"]
    [workers] = spec["rayClusterSpec"]["workerGroupSpecs"]
    assert workers["replicas"] == workers["minReplicas"] == workers["maxReplicas"] == 4
    pod = workers["template"]["spec"]
    [container] = pod["containers"]
    assert container["resources"]["limits"] == {"cpu": "8", "memory": "64Gi", GPU_RESOURCE: "2"}
    assert container["resources"]["requests"] == container["resources"]["limits"]
    assert pod["nodeSelector"] == {"nvidia.com/gpu.product": "NVIDIA-A100-SXM4-80GB"}
    assert pod["tolerations"] == [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert {"name": "dshm", "mountPath": "/dev/shm"} in container["volumeMounts"]
    head = spec["rayClusterSpec"]["headGroupSpec"]
    assert head["rayStartParams"]["num-cpus"] == "0", "the head must not take training work"
    assert GPU_RESOURCE not in head["template"]["spec"]["containers"][0]["resources"]["limits"]
    assert config.scaling.bf16


def test_rayjob_is_deterministic_owned_and_never_retried_by_kuberay() -> None:
    config, first = _manifest(GPU_SCALING, attempt=2)
    _, again = _manifest(GPU_SCALING, attempt=2)
    _, next_attempt = _manifest(GPU_SCALING, attempt=3)
    assert first == again
    meta, spec = first["metadata"], first["spec"]
    assert len(meta["name"]) <= MAX_RAYJOB_NAME
    assert re.match(r"^[a-z]([-a-z0-9]*[a-z0-9])?$", meta["name"])
    assert next_attempt["metadata"]["name"] != meta["name"]
    assert spec["jobId"] == job_spec(config, 2).submission_id != next_attempt["spec"]["jobId"]
    assert meta["ownerReferences"][0]["kind"] == "TrainingRun"
    assert meta["ownerReferences"][0]["controller"]
    assert meta["labels"]["kaizen.dev/attempt"] == "2"
    assert spec["backoffLimit"] == 0
    assert spec["submitterConfig"]["backoffLimit"] == 2
    assert spec["shutdownAfterJobFinishes"] is True
    assert spec["ttlSecondsAfterFinished"] > 0
    assert spec["submissionMode"] == "K8sJobMode"
    runtime_env = yaml.safe_load(spec["runtimeEnvYAML"])
    assert runtime_env["env_vars"]["OMP_NUM_THREADS"] == "8"
    argv = shlex.split(spec["entrypoint"])
    assert argv[:4] == ["python", "-m", "trainer", "--config"]
    assert TrainerConfig.parse(argv[4]).config_hash() == config.config_hash()
