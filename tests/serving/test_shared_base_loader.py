"""A shared base's predictor runs the LoRA loader beside vLLM: one adapters volume in both containers,
the loader reading the store as the members' storage settings say; a headless Service lists every
replica's loader. The manifest stays valid for KServe's published CRD."""

from __future__ import annotations

from typing import Any

import pytest

from controllers.api.serving_settings import DeploymentMode, ServingSettings
from controllers.api.shadowmodel import AdapterRef, ShadowModelSpec
from controllers.api.storage_settings import StorageAccess
from controllers.api.training_settings import BaseModelRef
from controllers.builders.inferenceservice import (
    InvalidServingSpec,
    ObjectRef,
    build_inference_service,
)
from controllers.builders.loader_sidecar import LOADER_IMAGE, loader_secret, loader_service
from controllers.builders.shared_base import build_shared_base
from tests.trainer.upstream import cel_violations, inferenceservice_schema, pruned_fields, schema_errors

TOKEN_FROM_SECRET = {"secretKeyRef": {"name": "base-kaizen-loader", "key": "token"}}
STORE = StorageAccess(
    service_account_name="kaizen-storage", secret_ref="minio-keys", endpoint="http://minio.storage:9000",
    region="eu-west-1",
)  # fmt: skip


def _member(
    name: str, storage: StorageAccess = STORE, shared: str | None = "base"
) -> tuple[ObjectRef, ShadowModelSpec]:
    spec = ShadowModelSpec(
        storage=storage,
        training_run_ref=name,
        base_model=BaseModelRef(name="Qwen/Qwen2.5-Coder-7B-Instruct", uri="s3://models/qwen"),
        adapter=AdapterRef(uri=f"s3://adapters/{name}", digest="sha256:" + "a" * 64),
        serving=ServingSettings(
            mode=DeploymentMode.SHARED if shared else DeploymentMode.DEDICATED, shared_base=shared
        ),
    )
    return ObjectRef(name=name, namespace="agents", uid=f"uid-{name}"), spec


def _valid(manifest: dict[str, Any]) -> None:
    schema = inferenceservice_schema()
    assert schema_errors(schema, manifest) == []
    assert pruned_fields(schema, manifest) == []
    assert cel_violations(schema, manifest) == []


def test_the_loader_runs_beside_vllm_with_the_storage_secret_and_one_adapters_volume() -> None:
    manifest = build_shared_base(
        "base", "agents", [_member("a"), _member("b")], loader_image="registry/kaizen:9"
    )
    _valid(manifest)
    predictor = manifest["spec"]["predictor"]
    [loader] = predictor["containers"]
    assert loader["image"] == "registry/kaizen:9"
    assert loader["command"] == ["python", "-m", "controllers.loader"]
    assert loader["ports"] == [{"name": "kaizen-loader", "containerPort": 8090, "protocol": "TCP"}]
    assert loader["envFrom"] == [{"secretRef": {"name": "minio-keys"}}]
    assert {e["name"]: e.get("value") for e in loader["env"]} == {
        "KAIZEN_LOADER_TOKEN": None,
        "AWS_ENDPOINT_URL": "http://minio.storage:9000",
        "AWS_DEFAULT_REGION": "eu-west-1",
    }
    assert loader["env"][0]["valueFrom"] == TOKEN_FROM_SECRET
    assert predictor["volumes"] == [{"name": "kaizen-adapters", "emptyDir": {}}]
    mount = {"name": "kaizen-adapters", "mountPath": "/mnt/kaizen-adapters"}
    assert predictor["model"]["volumeMounts"] == [mount]
    assert loader["volumeMounts"] == [mount]
    assert loader["args"][loader["args"].index("--adapters") + 1] == mount["mountPath"]


def test_without_a_secret_the_loader_uses_the_pods_identity_and_the_default_image() -> None:
    identity = StorageAccess(service_account_name="irsa-reader")
    manifest = build_shared_base("base", "agents", [_member("a", identity)])
    _valid(manifest)
    [loader] = manifest["spec"]["predictor"]["containers"]
    assert loader["image"] == LOADER_IMAGE
    assert "envFrom" not in loader
    assert loader["env"] == [{"name": "KAIZEN_LOADER_TOKEN", "valueFrom": TOKEN_FROM_SECRET}]
    assert manifest["spec"]["predictor"]["serviceAccountName"] == "irsa-reader"


def test_a_dedicated_model_has_no_loader() -> None:
    ref, spec = _member("a", shared=None)
    predictor = build_inference_service(ref, spec)["spec"]["predictor"]
    assert "containers" not in predictor
    assert "volumes" not in predictor


@pytest.mark.parametrize(
    ("other", "field"),
    [
        (STORE.model_copy(update={"secret_ref": "other-keys"}), "spec.storage.secretRef"),
        (STORE.model_copy(update={"endpoint": "http://other:9000"}), "spec.storage.endpoint"),
        (STORE.model_copy(update={"region": "us-east-2"}), "spec.storage.region"),
    ],
)
def test_members_of_one_base_must_agree_on_what_the_loader_reads_the_store_with(
    other: StorageAccess, field: str
) -> None:
    with pytest.raises(InvalidServingSpec) as caught:
        build_shared_base("base", "agents", [_member("a"), _member("b", other)])
    assert caught.value.field == field
    assert "'a'" in str(caught.value)
    assert "'b'" in str(caught.value)


def test_the_loader_service_is_headless_selects_the_predictor_pods_and_is_owned_by_the_base() -> None:
    isvc = build_shared_base("base", "agents", [_member("a")])
    isvc["metadata"]["uid"] = "uid-base"
    service = loader_service(isvc)
    assert service["metadata"]["name"] == "base-kaizen-loader"
    assert service["metadata"]["namespace"] == "agents"
    assert service["spec"]["clusterIP"] == "None"
    assert service["spec"]["selector"] == {
        "serving.kserve.io/inferenceservice": "base",
        "component": "predictor",
    }
    assert service["spec"]["ports"] == [
        {"name": "kaizen-loader", "port": 8090, "targetPort": "kaizen-loader", "protocol": "TCP"}
    ]
    [owner] = service["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "InferenceService", "base", "uid-base", True
    )  # fmt: skip


def test_the_loaders_token_is_in_a_secret_owned_by_the_base_that_the_pods_env_names() -> None:
    isvc = build_shared_base("base", "agents", [_member("a")])
    isvc["metadata"]["uid"] = "uid-base"
    secret = loader_secret(isvc, "t" * 43)
    ref = TOKEN_FROM_SECRET["secretKeyRef"]
    assert (secret["kind"], secret["metadata"]["name"], secret["metadata"]["namespace"]) == (
        "Secret", ref["name"], "agents"
    )  # fmt: skip
    assert secret["stringData"] == {ref["key"]: "t" * 43}
    [owner] = secret["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"]) == ("InferenceService", "base", "uid-base")
