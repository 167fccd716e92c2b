"""The stand-ins' pure parts: how an InferenceService manifest is read, and that every status they
write is valid for the upstream CRD with no field the API server would drop."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from controllers.api.serving_settings import DeploymentMode, ServingSettings
from controllers.api.shadowmodel import AdapterRef, ShadowModelSpec
from controllers.api.training_settings import BaseModelRef
from controllers.builders.inferenceservice import ObjectRef, build_inference_service
from controllers.builders.shared_base import build_shared_base
from controllers.clients.ray_jobs import JobInfo, JobStatus
from controllers.runtime.kube import without_empty_strings
from devstack.runtime import isvc_plan
from devstack.runtime import rayjob_status as rayjob
from devstack.upstream_crds import RAYJOB, for_old_servers, minimal_crd
from tests.trainer.upstream import (
    crd_dir,
    inferenceservice_schema,
    pruned_fields,
    rayjob_schema,
    schema_errors,
)

NOW = datetime(2026, 11, 22, 9, 30, tzinfo=UTC)
DIGEST = "sha256:" + "b" * 64


def _spec(adapter: str, base_uri: str = "/models/tiny", shared: str | None = None) -> ShadowModelSpec:
    return ShadowModelSpec(
        base_model=BaseModelRef(name="kaizen-tiny", uri=base_uri),
        adapter=AdapterRef(uri=f"/adapters/{adapter}", digest=DIGEST),
        serving=ServingSettings(
            gpus=0, mode=DeploymentMode.SHARED if shared else DeploymentMode.DEDICATED, shared_base=shared
        ),
    )


def _ref(name: str) -> ObjectRef:
    return ObjectRef(name=name, namespace="agents", uid=f"uid-{name}")


def _valid(schema: dict[str, Any], obj: dict[str, Any]) -> None:
    assert schema_errors(schema, obj) == []
    assert pruned_fields(schema, obj) == []


def test_the_builders_manifest_reads_back_as_the_server_to_run() -> None:
    manifest = build_inference_service(_ref("coder-a"), _spec("a"))
    plan = isvc_plan.plan(manifest)
    assert plan == isvc_plan.ServerPlan(
        base="/models/tiny", base_name="kaizen-tiny", adapters=(("coder-a", "/adapters/a"),)
    )


def test_a_shared_base_reads_back_as_one_runtime_lora_server_whatever_its_members() -> None:
    members = [(_ref(name), _spec(name[-1], shared="base")) for name in ("coder-b", "coder-a")]
    one = isvc_plan.plan(build_shared_base("base", "agents", members[:1]))
    two = isvc_plan.plan(build_shared_base("base", "agents", members))
    assert two.adapters == ()
    assert two.runtime_lora
    assert one.digest == two.digest  # a member joining never restarts the servers


def test_the_plan_digest_changes_with_the_service_account() -> None:
    manifest = build_inference_service(_ref("coder-a"), _spec("a"))
    before = isvc_plan.plan(manifest).digest
    manifest["spec"]["predictor"]["serviceAccountName"] = "kaizen-storage"
    assert isvc_plan.plan(manifest).service_account == "kaizen-storage"
    assert isvc_plan.plan(manifest).digest != before


@pytest.mark.parametrize(
    ("uri", "local"), [("file:///models/tiny", "/models/tiny"), ("tiny://kaizen-tiny", "tiny://kaizen-tiny")]
)
def test_local_storage_uris_are_read_in_place(uri: str, local: str) -> None:
    manifest = build_inference_service(_ref("coder-a"), _spec("a"))
    manifest["spec"]["predictor"]["storageUris"][0]["uri"] = uri  # tiny:// is for tests, not the API
    assert isvc_plan.plan(manifest).base == local


def test_remote_storage_is_left_for_the_storage_initializer() -> None:
    manifest = build_inference_service(_ref("coder-a"), _spec("a", base_uri="s3://models/qwen"))
    assert isvc_plan.plan(manifest).base == "s3://models/qwen"


def test_other_schemes_are_refused_naming_the_uri() -> None:
    manifest = build_inference_service(_ref("coder-a"), _spec("a", base_uri="hf://models/qwen"))
    with pytest.raises(isvc_plan.Unservable, match=r"hf://models/qwen") as caught:
        isvc_plan.plan(manifest)
    assert caught.value.reason == "ModelLoadFailed"


def test_vllms_other_lora_module_forms_are_understood() -> None:
    manifest = build_inference_service(_ref("coder-a"), _spec("a"))
    args = manifest["spec"]["predictor"]["model"]["args"]
    cut = args.index("--lora-modules")
    manifest["spec"]["predictor"]["model"]["args"] = [
        *args[:cut],
        '--lora-modules={"name": "coder-a", "path": "/mnt/models/adapters/coder-a"}',
        "--lora-modules=extra=/elsewhere/extra",
    ]
    assert isvc_plan.plan(manifest).adapters == (("coder-a", "/adapters/a"), ("extra", "/elsewhere/extra"))


@pytest.mark.parametrize(
    "state",
    [
        {"url": "http://127.0.0.1:1234", "ready": True, "up_to_date": True},
        {"url": "http://127.0.0.1:1234", "ready": False, "up_to_date": False, "loading": True},
        {"url": "http://127.0.0.1:1234", "ready": True, "up_to_date": False, "loading": True},
        {
            "url": None,
            "ready": False,
            "up_to_date": False,
            "reason": "ModelLoadFailed",
            "message": "no such file",
        },
    ],
    ids=["ready", "loading", "rolling", "failed"],
)
def test_inference_service_status_is_kserves_shape_and_nothing_is_pruned(state: dict[str, Any]) -> None:
    manifest = build_inference_service(_ref("coder-a"), _spec("a"))
    manifest["metadata"]["generation"] = 3
    status = without_empty_strings(isvc_plan.status(manifest, now=NOW, **state))
    status = {key: value for key, value in status.items() if value is not None}
    status["modelStatus"] = {k: v for k, v in status["modelStatus"].items() if v is not None}
    _valid(inferenceservice_schema(), {**manifest, "status": status})
    ready = {c["type"]: c["status"] for c in status["conditions"]}
    assert ready["Ready"] == ("True" if state["ready"] and state["url"] else "False")
    assert status["observedGeneration"] == 3
    expected = {
        "ready": "UpToDate",
        "loading": "InProgress",
        "rolling": "InProgress",
        "failed": "BlockedByFailedLoad",
    }
    assert status["modelStatus"]["transitionStatus"] in expected.values()


def test_a_condition_keeps_its_transition_time_while_its_status_holds() -> None:
    manifest = build_inference_service(_ref("coder-a"), _spec("a"))
    first = isvc_plan.status(manifest, url="http://127.0.0.1:1", ready=True, up_to_date=True, now=NOW)
    later = isvc_plan.status(
        {**manifest, "status": first}, url="http://127.0.0.1:1", ready=True, up_to_date=True
    )
    assert later["conditions"] == first["conditions"]


def _rayjob() -> dict[str, Any]:
    return {
        "apiVersion": "ray.io/v1",
        "kind": "RayJob",
        "metadata": {"name": "kz-run-a1-0123abcd", "namespace": "agents", "uid": "u-1", "generation": 1},
        "spec": {"entrypoint": "python -m trainer", "jobId": "kaizen-run-a1-0123456789ab"},
    }


def _info(status: JobStatus, message: str = "") -> JobInfo:
    return JobInfo(
        "kaizen-run-a1-0123456789ab",
        status,
        message,
        "python -m trainer",
        {},
        1_700_000_000_000,
        1_700_000_060_000,
        0,
    )


def test_rayjob_status_follows_kuberays_fields_and_nothing_is_pruned() -> None:
    job = _rayjob()
    steps = [rayjob.initializing(job, NOW), rayjob.submitted(job, "127.0.0.1:8265")]
    status: dict[str, Any] = {}
    for step in steps:
        status.update(step)
        _valid(rayjob_schema(), {**job, "status": without_empty_strings(status)})
    status.update(rayjob.observed({**job, "status": status}, _info(JobStatus.RUNNING), NOW))
    assert (status["jobDeploymentStatus"], status["jobStatus"]) == ("Running", "RUNNING")
    status.update(rayjob.observed({**job, "status": status}, _info(JobStatus.SUCCEEDED), NOW))
    _valid(rayjob_schema(), {**job, "status": without_empty_strings(status)})
    assert (status["jobDeploymentStatus"], status["succeeded"], status["failed"]) == ("Complete", 1, 0)
    assert status["rayJobInfo"] == {"startTime": "2023-11-14T22:13:20Z", "endTime": "2023-11-14T22:14:20Z"}


def test_a_failed_ray_job_fails_the_rayjob_with_rays_message() -> None:
    job = {**_rayjob(), "status": rayjob.initializing(_rayjob(), NOW)}
    patch = rayjob.observed(
        job, _info(JobStatus.FAILED, "Job entrypoint command failed with exit code 3"), NOW
    )
    assert (patch["jobDeploymentStatus"], patch["reason"], patch["failed"]) == ("Failed", "AppFailed", 1)
    assert "exit code 3" in patch["message"]


def test_without_a_job_id_one_is_derived_from_the_uid_and_stays_the_same() -> None:
    job = _rayjob()
    del job["spec"]["jobId"]
    first = rayjob.submission_id(job)
    assert first == rayjob.submission_id(job)
    assert first.startswith("kz-run-a1-0123abcd-")
    assert first != rayjob.submission_id({**job, "metadata": {**job["metadata"], "uid": "u-2"}})


def test_an_active_deadline_is_measured_from_the_start_time() -> None:
    job = {**_rayjob(), "status": {"startTime": "2026-11-22T09:00:00Z"}}
    job["spec"]["activeDeadlineSeconds"] = 600
    assert not rayjob.deadline_passed(job, datetime(2026, 11, 22, 9, 9, tzinfo=UTC))
    assert rayjob.deadline_passed(job, datetime(2026, 11, 22, 9, 11, tzinfo=UTC))


def test_upstream_crds_are_made_loadable_on_old_servers_without_changing_what_they_accept() -> None:
    crd = yaml.load((crd_dir() / RAYJOB.file).read_bytes(), Loader=yaml.CSafeLoader)
    edited = for_old_servers(crd)
    text = yaml.safe_dump(edited)
    assert "x-kubernetes-validations" not in text
    assert "default: ''" not in text
    pull_secrets = edited["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"][
        "properties"
    ]["rayClusterSpec"]["properties"]["headGroupSpec"]["properties"]["template"]["properties"]["spec"][
        "properties"
    ]["imagePullSecrets"]
    assert "name" in pull_secrets["items"]["required"], (
        "a list-map key that lost its default becomes required"
    )


def test_the_minimal_crd_keeps_spec_and_status_and_serves_the_status_subresource() -> None:
    crd = minimal_crd(RAYJOB)
    [version] = crd["spec"]["versions"]
    assert version["subresources"] == {"status": {}}
    properties = version["schema"]["openAPIV3Schema"]["properties"]
    assert properties["spec"]["x-kubernetes-preserve-unknown-fields"] is True
    assert properties["status"]["x-kubernetes-preserve-unknown-fields"] is True
    assert [column["jsonPath"] for column in version["additionalPrinterColumns"]][:2] == [
        ".status.jobStatus",
        ".status.jobDeploymentStatus",
    ]


def test_empty_strings_are_left_out_or_removed_by_a_merge_patch() -> None:
    body = {"a": "", "b": {"c": "", "d": "x"}, "e": [{"f": ""}]}
    assert without_empty_strings(body) == {"b": {"d": "x"}, "e": [{}]}
    assert without_empty_strings(body, as_null=True) == {"a": None, "b": {"c": None, "d": "x"}, "e": [{}]}


def test_paths_outside_the_model_mounts_are_read_as_they_are(tmp_path: Path) -> None:
    manifest = build_inference_service(_ref("coder-a"), _spec("a"))
    manifest["spec"]["predictor"]["model"]["args"].append(f"--lora-modules=local={tmp_path}")
    assert ("local", str(tmp_path)) in isvc_plan.plan(manifest).adapters
