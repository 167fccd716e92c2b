"""The runtime installs KubeRay's and KServe's own CRDs on the local API server, and the operator's
manifests pass through them intact: nothing dropped, nothing changed, only defaults added."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from controllers.api.serving_settings import ServingSettings
from controllers.api.shadowmodel import AdapterRef, ShadowModelSpec
from controllers.api.training_settings import BaseModelRef
from controllers.builders.inferenceservice import ObjectRef, build_inference_service
from controllers.builders.jobspec import job_spec
from controllers.builders.rayjob import GPU_RESOURCE, PodSettings, build_rayjob
from devstack.runtime import LocalRuntime
from devstack.upstream_crds import INFERENCE_SERVICE, RAYJOB, minimal_crd
from tests.runtime.support import ISVCS, RAYJOBS, Cluster
from trainer.config import BaseModelSpec, DatasetSpec, Scaling, TrainerConfig

CRDS = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions"


def _missing(sent: Any, stored: Any, path: str = "") -> list[str]:
    """Paths of ``sent`` that are absent from, or different in, ``stored`` (which may add defaults)."""
    if isinstance(sent, dict) and isinstance(stored, dict):
        return [p for key, value in sent.items() for p in _missing(value, stored.get(key), f"{path}.{key}")]
    if isinstance(sent, list) and isinstance(stored, list) and len(sent) == len(stored):
        return [
            p
            for i, (a, b) in enumerate(zip(sent, stored, strict=True))
            for p in _missing(a, b, f"{path}[{i}]")
        ]
    return [] if sent == stored else [path]


def test_a_gpu_inference_service_passes_kserves_crd_on_the_api_server_intact(
    runtime: LocalRuntime, cluster: Cluster, namespace: str
) -> None:
    spec = ShadowModelSpec(
        policy_ref="coder",
        base_model=BaseModelRef(name="Qwen/Qwen2.5-Coder-7B-Instruct", uri="s3://models/qwen2.5-coder-7b"),
        adapter=AdapterRef(uri="s3://kaizen-adapters/coder/coder-a", digest="sha256:" + "c" * 64),
        serving=ServingSettings(gpus=2, max_replicas=3),
    )
    manifest = build_inference_service(
        ObjectRef("coder-a", namespace, "0f6c2a1e-1111-2222-3333-444455556666"), spec
    )
    stored = cluster.create(ISVCS, namespace, manifest, dry_run=True)
    assert _missing(manifest["spec"], stored["spec"]) == []
    assert stored["metadata"]["labels"] == manifest["metadata"]["labels"]


def test_a_gpu_rayjob_passes_kuberays_crd_on_the_api_server_intact(
    runtime: LocalRuntime, cluster: Cluster, namespace: str
) -> None:
    config = TrainerConfig(
        run_name="coder-dpo-0001",
        base_model=BaseModelSpec(name="Qwen/Qwen2.5-Coder-7B-Instruct", uri="s3://models/qwen2.5-coder-7b"),
        dataset=DatasetSpec(uri="s3://kaizen-snapshots/coder/sha256-abc"),
        output_uri="s3://kaizen-adapters/coder/coder-dpo-0001",
        scaling=Scaling(workers=2, gpus_per_worker=1, cpus_per_worker=8),
    )
    manifest = build_rayjob(
        config, job_spec(config, 1), PodSettings(image="trainer:1"), namespace=namespace, attempt=1
    )
    stored = cluster.create(RAYJOBS, namespace, manifest, dry_run=True)
    assert _missing(manifest["spec"], stored["spec"]) == []
    worker = stored["spec"]["rayClusterSpec"]["workerGroupSpecs"][0]["template"]["spec"]["containers"][0]
    assert worker["resources"]["limits"][GPU_RESOURCE] == "1"


def test_a_restarted_runtime_leaves_installed_crds_alone(
    runtime_factory: Callable[[], LocalRuntime], cluster: Cluster
) -> None:
    first = runtime_factory().start()
    before = {
        kind.crd_name: cluster.http.get(f"{CRDS}/{kind.crd_name}").json()
        for kind in (RAYJOB, INFERENCE_SERVICE)
    }
    first.stop()
    runtime_factory().start()
    for name, crd in before.items():
        again = cluster.http.get(f"{CRDS}/{name}").json()
        assert again["metadata"]["resourceVersion"] == crd["metadata"]["resourceVersion"], name


def test_the_generated_minimal_crds_are_accepted_by_the_api_server(
    runtime: LocalRuntime, cluster: Cluster
) -> None:
    for kind in (RAYJOB, INFERENCE_SERVICE):
        installed = cluster.http.get(f"{CRDS}/{kind.crd_name}").json()
        minimal = minimal_crd(kind)
        minimal["metadata"]["resourceVersion"] = installed["metadata"]["resourceVersion"]
        answer = cluster.http.put(f"{CRDS}/{kind.crd_name}", json=minimal, params={"dryRun": "All"})
        assert answer.status_code == 200, answer.text
        assert answer.json()["spec"]["versions"][0]["subresources"] == {"status": {}}
