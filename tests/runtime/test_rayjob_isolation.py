"""The RayJob stand-in is as strict as a cluster: a job sees what its pods would see, nothing more.

This module's Ray head hides the folder under which the "operator" keeps its data (a private mount
namespace), and is started from a process whose environment holds storage credentials and Kaizen
settings that must not reach any job. The jobs are small ``python -c`` entrypoints.
"""

from __future__ import annotations

import base64
import json
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3  # type: ignore[import-untyped]
import httpx
import pytest

from devstack.localray import LocalRayHead
from devstack.objectstore import ObjectStore
from devstack.runtime import LocalRuntime
from tests.runtime.support import RAYJOBS, Cluster, wait_for
from tests.runtime.test_rayjob_standin import _finished, _rayjob

LEAKED = {"AWS_ACCESS_KEY_ID": "operator-key", "AWS_SECRET_ACCESS_KEY": "operator-secret", "KAIZEN_X": "1"}


@pytest.fixture(scope="module")
def operators_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The parent of every operator's data root: hidden from the Ray "cluster"."""
    return tmp_path_factory.mktemp("operators")


@pytest.fixture(scope="module")
def ray_head(model_cache: Path, operators_root: Path) -> Iterator[LocalRayHead]:
    """This module's head (it overrides the tier's): the operators' data hidden, started from an
    environment that holds credentials of the operator's own."""
    head = LocalRayHead(num_cpus=2, env={"KAIZEN_CACHE": str(model_cache)}, hidden=[operators_root])
    with pytest.MonkeyPatch.context() as patch:
        for name, value in LEAKED.items():
            patch.setenv(name, value)
        head.start()
    try:
        yield head
    finally:
        head.stop()
    assert not head.processes(), "the Ray head left processes behind"


def _python(code: str) -> str:
    return f"{shlex.quote(sys.executable)} -c {shlex.quote(code)}"


def _containers(manifest: dict[str, Any]) -> Iterator[dict[str, Any]]:
    cluster = manifest["spec"]["rayClusterSpec"]
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        yield group["template"]["spec"]["containers"][0]


def _pod_specs(manifest: dict[str, Any]) -> Iterator[dict[str, Any]]:
    cluster = manifest["spec"]["rayClusterSpec"]
    for group in [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]:
        yield group["template"]["spec"]


def _with(manifest: dict[str, Any], **container: Any) -> dict[str, Any]:
    """``manifest`` with the same env/envFrom on the head's and every worker's Ray container."""
    for found in _containers(manifest):
        found.update(json.loads(json.dumps(container)))
    return manifest


def _run(cluster: Cluster, namespace: str, manifest: dict[str, Any]) -> dict[str, Any]:
    name = cluster.create(RAYJOBS, namespace, manifest)["metadata"]["name"]
    return wait_for(f"RayJob {name} to finish", _finished(cluster, namespace, name))


def _logs(head: LocalRayHead, job_id: str) -> str:
    url = f"{head.dashboard_url}/api/jobs/{job_id}/logs"
    return str(httpx.get(url, headers=head.auth_headers, timeout=30).json()["logs"])


def _printed(head: LocalRayHead, job_id: str) -> Any:
    """What the job printed as ``OUT <json>``."""
    [line] = [line for line in _logs(head, job_id).splitlines() if line.startswith("OUT ")]
    return json.loads(line.removeprefix("OUT "))


def _create(cluster: Cluster, namespace: str, kind: str, body: dict[str, Any]) -> None:
    body = {"apiVersion": "v1", **body, "metadata": {**body["metadata"], "namespace": namespace}}
    response = cluster.http.post(f"/api/v1/namespaces/{namespace}/{kind}", json=body)
    assert response.status_code == 201, response.text


def test_a_job_cannot_read_the_snapshot_the_operator_wrote_under_its_data_root(
    runtime: LocalRuntime, cluster: Cluster, namespace: str, operators_root: Path
) -> None:
    snapshot = operators_root / "operator-1" / "datasets" / "snapshot.jsonl"
    snapshot.parent.mkdir(parents=True)
    snapshot.write_text('{"prompt": "hi", "completion": "there"}\n')
    code = f"print(open({str(snapshot)!r}).read())"

    status = _run(cluster, namespace, _rayjob(namespace, _python(code)))

    assert snapshot.exists()  # there for the operator, on the same machine ...
    assert status["jobDeploymentStatus"] == "Failed"  # ... and not for the job
    assert "FileNotFoundError" in status["message"]
    assert str(snapshot) in status["message"]


def test_a_job_has_none_of_the_environment_of_whoever_started_ray(
    runtime: LocalRuntime, cluster: Cluster, namespace: str, ray_head: LocalRayHead
) -> None:
    code = "import os, json; print('OUT', json.dumps(sorted(k for k in os.environ if k[:4] in ('AWS_', 'KAIZ'))))"

    status = _run(cluster, namespace, _rayjob(namespace, _python(code)))

    assert status["jobStatus"] == "SUCCEEDED"
    assert _printed(ray_head, status["jobId"]) == ["KAIZEN_CACHE"]  # the image's model cache, given


def test_each_job_starts_in_a_fresh_empty_folder_of_its_own(
    runtime: LocalRuntime, cluster: Cluster, namespace: str, ray_head: LocalRayHead
) -> None:
    code = (
        "import os, json, tempfile; open('left-behind', 'w').write('x'); "
        "print('OUT', json.dumps([os.getcwd(), os.listdir('.'), tempfile.gettempdir()]))"
    )
    first = _run(cluster, namespace, _rayjob(namespace, _python(code)))
    second = _run(cluster, namespace, _rayjob(namespace, _python(code)))

    folder_1, listed_1, tmp_1 = _printed(ray_head, first["jobId"])
    folder_2, listed_2, tmp_2 = _printed(ray_head, second["jobId"])
    assert listed_1 == listed_2 == ["left-behind"]  # only what the job itself wrote
    assert folder_1 != folder_2
    assert tmp_1 != tmp_2
    assert Path(folder_1).is_relative_to(ray_head.temp_dir)
    assert not Path(folder_1).exists()  # gone with the job, as a pod's filesystem goes


def test_env_value_from_and_env_from_resolve_as_the_kubelet_does(
    runtime: LocalRuntime, cluster: Cluster, namespace: str, ray_head: LocalRayHead
) -> None:
    secret_value = base64.b64encode(b"s3cret").decode()
    _create(cluster, namespace, "secrets", {"metadata": {"name": "creds"}, "data": {"TOKEN": secret_value}})
    _create(cluster, namespace, "configmaps", {"metadata": {"name": "cfg"}, "data": {"MODE": "fast"}})
    manifest = _with(
        _rayjob(namespace, _python("import os, json; print('OUT', json.dumps(dict(os.environ)))")),
        envFrom=[
            {"configMapRef": {"name": "cfg"}, "prefix": "CFG_"},
            {"secretRef": {"name": "gone", "optional": True}},
        ],
        env=[
            {"name": "PLAIN", "value": "one"},
            {"name": "DERIVED", "value": "$(PLAIN)-two-$(UNDEFINED)-$$(PLAIN)"},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "TOKEN"}}},
            {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "cfg", "key": "MODE"}}},
            {"name": "NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {
                "name": "MAYBE",
                "valueFrom": {"secretKeyRef": {"name": "creds", "key": "NO", "optional": True}},
            },
            {
                "name": "OMP_NUM_THREADS",
                "value": "99",
            },  # the runtime env's env_vars win, as Ray sets them last
        ],
    )
    next(_containers(manifest))["env"].append({"name": "HEAD_ONLY", "value": "h"})

    status = _run(cluster, namespace, manifest)

    assert status["jobStatus"] == "SUCCEEDED", status["message"]
    env = _printed(ray_head, status["jobId"])
    assert {k: env.get(k) for k in ("PLAIN", "DERIVED", "TOKEN", "MODE", "CFG_MODE", "NS")} == {
        "PLAIN": "one",
        "DERIVED": "one-two-$(UNDEFINED)-$(PLAIN)",
        "TOKEN": "s3cret",
        "MODE": "fast",
        "CFG_MODE": "fast",
        "NS": namespace,
    }
    assert env["OMP_NUM_THREADS"] == "1"
    assert not {"MAYBE", "HEAD_ONLY"} & set(env)


def test_a_pod_that_could_not_start_fails_the_rayjob_with_the_kubelets_message(
    runtime: LocalRuntime, cluster: Cluster, namespace: str
) -> None:
    _create(cluster, namespace, "secrets", {"metadata": {"name": "creds"}, "data": {}})
    no_secret = _with(_rayjob(namespace, _python("1")), envFrom=[{"secretRef": {"name": "absent"}}])
    no_key = _with(
        _rayjob(namespace, _python("2")),
        env=[{"name": "K", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "AWS_ACCESS_KEY_ID"}}}],
    )
    claim = _rayjob(namespace, _python("3"))
    for spec in _pod_specs(claim):
        spec.setdefault("volumes", []).append(
            {"name": "data", "persistentVolumeClaim": {"claimName": "shared"}}
        )
    account = _rayjob(namespace, _python("4"))
    for spec in _pod_specs(account):
        spec["serviceAccountName"] = "trainer"

    failed = [_run(cluster, namespace, manifest) for manifest in (no_secret, no_key, claim, account)]

    assert [status["jobDeploymentStatus"] for status in failed] == ["Failed"] * 4
    assert [status.get("jobStatus") for status in failed] == [None] * 4  # nothing ran on Ray
    assert failed[0]["message"] == 'head: CreateContainerConfigError: secret "absent" not found'
    assert failed[1]["message"] == (
        f"head: CreateContainerConfigError: couldn't find key AWS_ACCESS_KEY_ID in Secret {namespace}/creds"
    )
    assert "PersistentVolumeClaim 'shared'" in failed[2]["message"]
    assert "object storage" in failed[2]["message"]
    assert failed[3]["message"] == (
        f'head: error looking up service account {namespace}/trainer: serviceaccount "trainer" not found'
    )


_READ_OBJECT = """
import os, json, boto3, botocore
print('OUT', json.dumps(sorted(k for k in os.environ if k.startswith("AWS_"))))
try:
    body = boto3.client("s3").get_object(Bucket={bucket!r}, Key="snapshot.jsonl")["Body"].read()
except botocore.exceptions.NoCredentialsError:
    print("no credentials: asking anonymously")
    unsigned = botocore.config.Config(signature_version=botocore.UNSIGNED)
    boto3.client("s3", config=unsigned).get_object(Bucket={bucket!r}, Key="snapshot.jsonl")
else:
    assert body == b"rows", body
"""


@pytest.mark.parametrize("with_secret", [True, False], ids=["envFrom-secret", "no-secret"])
def test_a_job_reaches_the_object_store_only_with_the_credentials_its_pods_are_given(
    runtime: LocalRuntime,
    cluster: Cluster,
    namespace: str,
    ray_head: LocalRayHead,
    object_store: ObjectStore,
    bucket: str,
    with_secret: bool,
) -> None:
    name = bucket.removeprefix("s3://")
    endpoint = {
        k: v for k, v in object_store.env().items() if k in ("AWS_ENDPOINT_URL", "AWS_DEFAULT_REGION")
    }
    boto3.client("s3", **_boto_args(object_store)).put_object(Bucket=name, Key="snapshot.jsonl", Body=b"rows")
    secret, account = object_store.kube_objects(namespace)
    _create(cluster, namespace, "secrets", secret)
    _create(cluster, namespace, "serviceaccounts", account)
    manifest = _with(
        _rayjob(namespace, _python(_READ_OBJECT.format(bucket=name))),
        env=[{"name": k, "value": v} for k, v in {**endpoint, "AWS_EC2_METADATA_DISABLED": "true"}.items()],
        envFrom=[{"secretRef": {"name": secret["metadata"]["name"]}}] if with_secret else [],
    )
    for spec in _pod_specs(manifest):
        spec["serviceAccountName"] = account["metadata"]["name"]  # grants nothing here: no IRSA locally

    status = _run(cluster, namespace, manifest)

    given = sorted(
        [*endpoint, "AWS_EC2_METADATA_DISABLED", *(object_store.secret_data() if with_secret else [])]
    )
    assert _printed(ray_head, status["jobId"]) == given
    if with_secret:
        assert status["jobStatus"] == "SUCCEEDED", status["message"]
    else:
        assert status["jobStatus"] == "FAILED"
        assert "no credentials: asking anonymously" in _logs(ray_head, status["jobId"])
        assert "(403) when calling the GetObject operation" in status["message"]


def _boto_args(store: ObjectStore) -> dict[str, str]:
    env = store.env()
    return {
        "endpoint_url": env["AWS_ENDPOINT_URL"],
        "region_name": env["AWS_DEFAULT_REGION"],
        "aws_access_key_id": env["AWS_ACCESS_KEY_ID"],
        "aws_secret_access_key": env["AWS_SECRET_ACCESS_KEY"],
    }
