"""The cluster objects the examples rely on ship as examples too (examples/prerequisites/), and agree with
them: the storage Secret and ServiceAccount the policy names, in KServe's convention, and the shared base
InferenceService the Shared-mode examples name, valid for KServe's published CRD and ready for adapters
loaded at run time."""

from __future__ import annotations

from typing import Any

import yaml

from tests.schemas import EXAMPLES_DIR, load_examples
from tests.trainer.upstream import cel_violations, inferenceservice_schema, pruned_fields, schema_errors

PREREQUISITES = EXAMPLES_DIR / "prerequisites"


def documents(name: str) -> dict[str, dict[str, Any]]:
    """The objects of one prerequisites file by kind."""
    docs = [d for d in yaml.safe_load_all((PREREQUISITES / name).read_text()) if d]
    return {d["kind"]: d for d in docs}


def shared_base() -> dict[str, Any]:
    return documents("shared-base-inferenceservice.yaml")["InferenceService"]


def flag(args: list[str], name: str) -> str:
    values = [a.split("=", 1)[1] for a in args if a.startswith(f"{name}=")]
    assert len(values) == 1, f"{name} given {len(values)} times in {args}"
    return values[0]


def test_the_shared_base_is_a_valid_kserve_inference_service() -> None:
    manifest = shared_base()
    schema = inferenceservice_schema()
    assert manifest["apiVersion"] == "serving.kserve.io/v1beta1"
    assert schema_errors(schema, manifest) == []
    assert pruned_fields(schema, manifest) == []  # nothing the API server would silently drop
    assert cel_violations(schema, manifest) == []


def test_the_check_can_fail_on_a_misspelt_field() -> None:
    manifest = shared_base()
    manifest["spec"]["predictor"]["model"]["storageURI"] = manifest["spec"]["predictor"]["model"][
        "storageUri"
    ]
    assert pruned_fields(inferenceservice_schema(), manifest) == ["spec.predictor.model.storageURI"]


def test_the_shared_base_is_the_one_the_examples_name_and_serves_their_base_model() -> None:
    examples = load_examples()
    manifest, policy = shared_base(), examples["LearningPolicy"]["spec"]
    named = {examples[kind]["spec"]["serving"]["sharedBase"] for kind in ("ShadowModel",)}
    named.add(policy["serving"]["sharedBase"])
    assert named == {manifest["metadata"]["name"]}
    model = manifest["spec"]["predictor"]["model"]
    assert model["storageUri"] == policy["training"]["baseModel"]["uri"]
    assert flag(model["args"], "--model_name") == policy["training"]["baseModel"]["name"]
    # The champion variant of the example Experiment is this deployment's plain base.
    champion = next(v for v in examples["Experiment"]["spec"]["variants"] if v["role"] == "Champion")
    assert champion["endpoint"].startswith(f"http://{manifest['metadata']['name']}-predictor.")


def test_the_shared_base_takes_adapters_at_run_time_within_the_policys_limits() -> None:
    model = shared_base()["spec"]["predictor"]["model"]
    env = {e["name"]: e.get("value") for e in model["env"]}
    assert env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] == "True"
    assert "--enable-lora" in model["args"]
    assert flag(model["args"], "--backend") == "vllm"
    assert not [a for a in model["args"] if a.startswith("--lora-modules")]  # none fixed at start-up
    policy = load_examples()["LearningPolicy"]["spec"]
    assert int(flag(model["args"], "--max-loras")) >= policy["serving"]["maxLoras"]
    assert int(flag(model["args"], "--max-lora-rank")) >= policy["training"]["lora"]["rank"]
    assert int(flag(model["args"], "--max-cpu-loras")) >= int(flag(model["args"], "--max-loras"))
    assert model["resources"]["limits"]["nvidia.com/gpu"] == str(policy["serving"]["gpus"])


def test_the_storage_secret_and_service_account_are_the_ones_the_examples_name() -> None:
    objects = documents("storage-credentials.yaml")
    secret, account = objects["Secret"], objects["ServiceAccount"]
    examples = load_examples()
    for kind, storage in (
        ("LearningPolicy", examples["LearningPolicy"]["spec"]["training"]["storage"]),
        ("TrainingRun", examples["TrainingRun"]["spec"]["training"]["storage"]),
        ("ShadowModel", examples["ShadowModel"]["spec"]["storage"]),
    ):
        assert storage["secretRef"] == secret["metadata"]["name"], kind
        assert storage["serviceAccountName"] == account["metadata"]["name"], kind
        assert storage["region"] == secret["metadata"]["annotations"]["serving.kserve.io/s3-region"], kind
    assert shared_base()["spec"]["predictor"]["serviceAccountName"] == account["metadata"]["name"]
    # KServe's storage initializer finds the Secret through the ServiceAccount's list.
    assert {"name": secret["metadata"]["name"]} in account["secrets"]
    assert {"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"} <= set(secret["stringData"])


def test_the_storage_secret_carries_kserves_s3_annotations() -> None:
    annotations = documents("storage-credentials.yaml")["Secret"]["metadata"]["annotations"]
    endpoint = annotations["serving.kserve.io/s3-endpoint"]
    assert "://" not in endpoint, "KServe wants host[:port] here; the scheme is s3-usehttps"
    assert annotations["serving.kserve.io/s3-usehttps"] in {"0", "1"}
    assert annotations["serving.kserve.io/s3-region"]


def test_every_example_keeps_its_runs_in_object_storage() -> None:
    examples = load_examples()
    uris = [
        examples["LearningPolicy"]["spec"]["training"]["outputUri"],
        examples["TrainingRun"]["spec"]["training"]["outputUri"],
        examples["ShadowModel"]["spec"]["adapter"]["uri"],
    ]
    assert all(uri.startswith("s3://") for uri in uris), uris
    assert examples["ShadowModel"]["spec"]["adapter"]["uri"].startswith(uris[0] + "/")
