"""The InferenceServices built for ShadowModels are valid for KServe's published CRD, lose no field,
and are deterministic: the same models always give the same names and the same manifest."""

from __future__ import annotations

import copy
import itertools
import re
from typing import Any

import pytest

from controllers.api import kinds
from controllers.api.serving_settings import DeploymentMode, ServingRuntime, ServingSettings
from controllers.api.shadowmodel import AdapterRef, ShadowModelSpec
from controllers.api.storage_settings import StorageAccess
from controllers.api.training_settings import BaseModelRef
from controllers.builders.inferenceservice import (
    BASE_MOUNT,
    MAX_NAME,
    InvalidServingSpec,
    ObjectRef,
    build_inference_service,
    endpoint_url,
    inference_service_name,
    ready_endpoint,
)
from controllers.builders.shared_base import build_shared_base
from tests.trainer.upstream import cel_violations, inferenceservice_schema, pruned_fields, schema_errors

QWEN = BaseModelRef(name="Qwen/Qwen2.5-Coder-7B-Instruct", uri="s3://models/qwen2.5-coder-7b-instruct")


def _spec(
    adapter: str,
    *,
    shared: str | None = None,
    policy: str = "coder-dpo",
    account: str | None = "kaizen-storage",
    **serving: Any,
) -> ShadowModelSpec:
    mode = DeploymentMode.SHARED if shared else DeploymentMode.DEDICATED
    return ShadowModelSpec(
        storage=StorageAccess(service_account_name=account),
        policy_ref=policy,
        training_run_ref=adapter,
        base_model=QWEN,
        adapter=AdapterRef(uri=f"s3://kaizen-adapters/coder/{adapter}", digest="sha256:" + "a" * 64),
        serving=ServingSettings(mode=mode, shared_base=shared, **serving),
    )


def _ref(name: str, namespace: str = "agents") -> ObjectRef:
    return ObjectRef(name=name, namespace=namespace, uid=f"uid-{name}")


def _members(*names: str, base: str = "qwen-coder-base") -> list[tuple[ObjectRef, ShadowModelSpec]]:
    return [(_ref(name), _spec(name, shared=base)) for name in names]


def _valid(manifest: dict[str, Any]) -> None:
    schema = inferenceservice_schema()
    assert schema_errors(schema, manifest) == []
    assert pruned_fields(schema, manifest) == []
    assert cel_violations(schema, manifest) == []


@pytest.mark.parametrize("gpus", [1, 0], ids=["gpu", "cpu"])
def test_dedicated_inference_service_validates_against_kserve_crd_and_nothing_is_pruned(gpus: int) -> None:
    manifest = build_inference_service(
        _ref("coder-dpo-0001"), _spec("coder-dpo-0001", gpus=gpus), lora_rank=64
    )
    _valid(manifest)


def test_shared_base_validates_against_kserve_crd_and_nothing_is_pruned() -> None:
    _valid(build_shared_base("qwen-coder-base", "agents", _members("coder-dpo-0001", "coder-dpo-0002")))


def test_the_checks_catch_a_bad_manifest() -> None:
    manifest = build_inference_service(_ref("coder-dpo-0001"), _spec("coder-dpo-0001"))
    broken = copy.deepcopy(manifest)
    broken["spec"]["predictor"]["minReplicas"] = "one"
    broken["spec"]["predictor"]["storageUris"][0]["path"] = "/mnt/models/base"
    assert any("minReplicas" in error for error in schema_errors(inferenceservice_schema(), broken))
    assert pruned_fields(inferenceservice_schema(), broken) == ["spec.predictor.storageUris[0].path"]


def test_dedicated_model_runs_vllm_with_its_adapter_from_storage() -> None:
    manifest = build_inference_service(_ref("coder-dpo-0001"), _spec("coder-dpo-0001", gpus=2), lora_rank=20)
    predictor = manifest["spec"]["predictor"]
    model = predictor["model"]
    assert model["modelFormat"] == {"name": "huggingface"}
    assert predictor["storageUris"] == [
        {"uri": QWEN.uri, "mountPath": BASE_MOUNT},
        {
            "uri": "s3://kaizen-adapters/coder/coder-dpo-0001",
            "mountPath": "/mnt/models/adapters/coder-dpo-0001",
        },
    ]
    args = model["args"]
    assert "--backend=vllm" in args
    assert "--enable-lora" in args
    assert f"--model_dir={BASE_MOUNT}" in args
    assert f"--model_name={QWEN.name}" in args
    assert "--max-loras=4" in args
    assert "--max-lora-rank=32" in args, "rank 20 needs vLLM's next supported rank"
    assert args[args.index("--lora-modules") + 1 :] == ["coder-dpo-0001=/mnt/models/adapters/coder-dpo-0001"]
    assert model["resources"]["limits"]["nvidia.com/gpu"] == "2"
    assert model["resources"]["requests"]["nvidia.com/gpu"] == "2"


def test_dedicated_model_is_labelled_and_owned_by_its_shadow_model() -> None:
    meta = build_inference_service(_ref("coder-dpo-0001"), _spec("coder-dpo-0001"))["metadata"]
    assert meta["name"] == "coder-dpo-0001"
    assert meta["namespace"] == "agents"
    assert meta["labels"]["kaizen.dev/policy"] == "coder-dpo"
    assert meta["labels"]["kaizen.dev/shadow-model"] == "coder-dpo-0001"
    [owner] = meta["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        "ShadowModel",
        "coder-dpo-0001",
        "uid-coder-dpo-0001",
        True,
    )


@pytest.mark.parametrize(
    "name", ["coder-dpo-0001", "v2.coder.dpo", "0001-coder", "a" * 200, "coder.dpo-" + "x" * 80]
)
def test_names_are_deterministic_dns_labels_that_leave_room_for_kserve_suffixes(name: str) -> None:
    derived = inference_service_name(name)
    assert derived == inference_service_name(name)
    assert len(derived) <= MAX_NAME
    assert re.fullmatch(r"[a-z]([-a-z0-9]*[a-z0-9])?", derived)


def test_long_names_that_share_a_prefix_stay_distinct() -> None:
    assert inference_service_name("a" * 100 + "-1") != inference_service_name("a" * 100 + "-2")


def test_shared_base_args_are_stable_under_reordering_of_its_models() -> None:
    members = _members("coder-dpo-0003", "coder-dpo-0001", "coder-dpo-0002")
    manifests = [
        build_shared_base("qwen-coder-base", "agents", order) for order in itertools.permutations(members)
    ]
    assert all(manifest == manifests[0] for manifest in manifests)
    assert "--lora-modules" not in manifests[0]["spec"]["predictor"]["model"]["args"]
    assert [o["name"] for o in manifests[0]["metadata"]["ownerReferences"]] == [
        "coder-dpo-0001",
        "coder-dpo-0002",
        "coder-dpo-0003",
    ]
    assert not any(o["controller"] for o in manifests[0]["metadata"]["ownerReferences"])


def test_one_more_model_on_a_shared_base_leaves_its_predictor_as_it_was() -> None:
    before = build_shared_base("qwen-coder-base", "agents", _members("coder-dpo-0001"))
    after = build_shared_base("qwen-coder-base", "agents", _members("coder-dpo-0001", "coder-dpo-0002"))
    assert after["metadata"]["name"] == before["metadata"]["name"] == "qwen-coder-base"
    assert after["spec"] == before["spec"]  # no rollout: the adapter is loaded at run time
    predictor = after["spec"]["predictor"]
    assert predictor["storageUris"] == [before["spec"]["predictor"]["storageUris"][0]]
    assert {"name": "VLLM_ALLOW_RUNTIME_LORA_UPDATING", "value": "True"} in predictor["model"]["env"]
    assert "--enable-lora" in predictor["model"]["args"]
    assert [o["name"] for o in after["metadata"]["ownerReferences"]] == ["coder-dpo-0001", "coder-dpo-0002"]
    assert after["metadata"]["labels"]["kaizen.dev/shared-base"] == "qwen-coder-base"


def test_shared_base_keeps_every_adapter_cached_and_the_largest_max_loras() -> None:
    members = [(_ref(f"m{i}"), _spec(f"m{i}", shared="base", max_loras=2 + i)) for i in range(6)]
    args = build_shared_base("base", "agents", members)["spec"]["predictor"]["model"]["args"]
    assert "--max-loras=7" in args
    assert "--max-cpu-loras=7" in args


@pytest.mark.parametrize(
    ("members", "field"),
    [
        (
            [(_ref("a"), _spec("a", shared="base")), (_ref("b"), _spec("b", shared="base", gpus=2))],
            "spec.serving.gpus",
        ),
        ([(_ref("a"), _spec("a", shared="other"))], "spec.serving.sharedBase"),
        (
            [(_ref("a"), _spec("a", shared="base")), (_ref("b", "elsewhere"), _spec("b", shared="base"))],
            "metadata.namespace",
        ),
    ],
    ids=["disagreeing-gpus", "wrong-base", "other-namespace"],
)
def test_contradictory_shared_models_are_refused_naming_the_field(
    members: list[tuple[ObjectRef, ShadowModelSpec]], field: str
) -> None:
    with pytest.raises(InvalidServingSpec) as caught:
        build_shared_base("base", "agents", members)
    assert caught.value.field == field
    assert str(caught.value).startswith(field)


def test_a_shared_base_needs_one_base_model() -> None:
    other = _spec("b", shared="base").model_copy(
        update={"base_model": BaseModelRef(name="Llama", uri="s3://m/llama")}
    )
    with pytest.raises(InvalidServingSpec, match=r"spec.baseModel"):
        build_shared_base("base", "agents", [(_ref("a"), _spec("a", shared="base")), (_ref("b"), other)])


def test_runtimes_without_lora_support_are_refused_naming_the_field() -> None:
    with pytest.raises(InvalidServingSpec) as caught:
        build_inference_service(_ref("a"), _spec("a", runtime=ServingRuntime.HUGGING_FACE))
    assert caught.value.field == "spec.serving.runtime"


def test_a_shared_model_is_not_given_a_dedicated_service() -> None:
    with pytest.raises(InvalidServingSpec, match=r"spec.serving.mode"):
        build_inference_service(_ref("a"), _spec("a", shared="base"))


def test_endpoint_is_the_openai_route_of_a_ready_service() -> None:
    isvc: dict[str, Any] = {"status": {"url": "http://coder.agents.example.com/", "conditions": []}}
    assert ready_endpoint(isvc, "coder-dpo-0001") is None
    isvc["status"]["conditions"] = [{"type": "Ready", "status": "True"}]
    found = ready_endpoint(isvc, "coder-dpo-0001")
    assert found is not None
    assert (
        found.base_url
        == "http://coder.agents.example.com/openai/v1"
        == endpoint_url("http://coder.agents.example.com")
    )
    assert found.model == "coder-dpo-0001"


def test_the_inference_service_address_is_the_one_kserves_own_sdk_uses() -> None:
    from kserve.constants import constants

    manifest = build_inference_service(_ref("coder-0001"), _spec("coder-0001"))
    assert manifest["apiVersion"] == f"{constants.KSERVE_GROUP}/{constants.KSERVE_V1BETA1_VERSION}"
    assert manifest["kind"] == constants.KSERVE_KIND_INFERENCESERVICE
    resource = kinds.INFERENCE_SERVICES
    assert (resource.group, resource.version) == (constants.KSERVE_GROUP, constants.KSERVE_V1BETA1_VERSION)
    assert resource.plural == constants.KSERVE_PLURAL_INFERENCESERVICE


def test_both_modes_run_under_the_storage_service_account_and_validate_against_kserve() -> None:
    dedicated = build_inference_service(_ref("coder-dpo-0001"), _spec("coder-dpo-0001"))
    shared = build_shared_base("base", "agents", _members("coder-dpo-0001", "coder-dpo-0002", base="base"))
    for manifest in (dedicated, shared):
        _valid(manifest)
        assert manifest["spec"]["predictor"]["serviceAccountName"] == "kaizen-storage"
    assert "env" not in dedicated["spec"]["predictor"]["model"]  # its adapter is there from the start


def test_without_a_service_account_the_predictor_names_none() -> None:
    manifest = build_inference_service(_ref("coder-dpo-0001"), _spec("coder-dpo-0001", account=None))
    assert "serviceAccountName" not in manifest["spec"]["predictor"]


def test_models_on_one_shared_base_must_name_one_service_account() -> None:
    members = [
        (_ref("a"), _spec("a", shared="base")),
        (_ref("b"), _spec("b", shared="base", account="other")),
    ]
    with pytest.raises(InvalidServingSpec) as caught:
        build_shared_base("base", "agents", members)
    assert caught.value.field == "spec.storage.serviceAccountName"
