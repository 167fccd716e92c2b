"""From ``training.storage`` and a Secret's keys to what the operator, the trainer's pods and a Ray
cluster get: fsspec options, pod environment and volumes, a job's environment. Pure functions."""

from __future__ import annotations

import base64
import json

import pytest
from botocore.exceptions import EndpointConnectionError, NoCredentialsError, ReadTimeoutError

from controllers.api.storage_settings import GCS_KEY, SECRET_MOUNT, SharedVolume, StorageAccess
from controllers.builders.storage import (
    SECRET_FIELD,
    StorageSettingsError,
    pod_storage,
    runtime_env_vars,
    secret_values,
    storage_options,
)
from controllers.clients.objectstore import Problem, _detail, classify
from controllers.reconcile.runs import dataset_uri

KEYS = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "very-secret-value"}
MINIO = StorageAccess(endpoint="http://minio.storage:9000", region="eu-west-1", secret_ref="minio")


def test_s3_options_carry_the_key_endpoint_and_region() -> None:
    options = storage_options("s3://bucket/runs", MINIO, {**KEYS, "AWS_SESSION_TOKEN": "tok"})
    assert options["key"] == "AKIAEXAMPLE"
    assert options["secret"] == "very-secret-value"
    assert options["token"] == "tok"
    assert options["client_kwargs"] == {
        "endpoint_url": "http://minio.storage:9000",
        "region_name": "eu-west-1",
    }
    assert options["config_kwargs"]["connect_timeout"] <= 10  # a stuck endpoint does not hold a reconcile


def test_without_a_secret_the_operator_uses_its_own_identity() -> None:
    options = storage_options("s3://bucket/runs", StorageAccess())
    assert "key" not in options
    assert "secret" not in options
    assert options["client_kwargs"] == {}
    assert storage_options("gs://bucket/runs", StorageAccess()) == {}
    assert storage_options("az://container/runs", StorageAccess()) == {}
    assert storage_options("file:///shared/runs", StorageAccess()) == {}


def test_a_missing_key_names_the_secret_and_the_key_never_a_value() -> None:
    with pytest.raises(StorageSettingsError) as caught:
        storage_options("s3://bucket/runs", MINIO, {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE"})
    message = str(caught.value)
    assert caught.value.field == SECRET_FIELD
    assert message.startswith("spec.training.storage.secretRef: ")
    assert "'minio'" in message
    assert "'AWS_SECRET_ACCESS_KEY'" in message
    assert "AKIAEXAMPLE" not in message


def test_gs_reads_the_key_file_as_a_token() -> None:
    key = {"type": "service_account", "client_email": "trainer@p.iam.gserviceaccount.com"}
    access = StorageAccess(secret_ref="gcs")
    assert storage_options("gs://bucket/runs", access, {GCS_KEY: json.dumps(key)}) == {"token": key}
    with pytest.raises(StorageSettingsError, match=r"'credentials\.json' is not a JSON key file"):
        storage_options("gs://bucket/runs", access, {GCS_KEY: "not json"})
    with pytest.raises(StorageSettingsError, match=r"has no key 'credentials\.json'"):
        storage_options("gcs://bucket/runs", access, {})


def test_azure_takes_a_connection_string_or_an_account_key() -> None:
    access = StorageAccess(secret_ref="azure")
    connection = {"AZURE_STORAGE_CONNECTION_STRING": "DefaultEndpointsProtocol=https;AccountName=a"}
    assert storage_options("az://c/runs", access, connection) == {
        "connection_string": connection.popitem()[1]
    }
    account = {"AZURE_STORAGE_ACCOUNT_NAME": "acct", "AZURE_STORAGE_ACCOUNT_KEY": "k"}
    assert storage_options("abfs://c/runs", access, account) == {"account_name": "acct", "account_key": "k"}
    with pytest.raises(StorageSettingsError, match="'AZURE_STORAGE_ACCOUNT_KEY'"):
        storage_options("az://c/runs", access, {"AZURE_STORAGE_ACCOUNT_NAME": "acct"})


def test_secret_values_are_decoded_and_bad_ones_named() -> None:
    encoded = {k: base64.b64encode(v.encode()).decode() for k, v in KEYS.items()}
    assert secret_values({"metadata": {"name": "s"}, "data": encoded}) == KEYS
    with pytest.raises(StorageSettingsError, match="Secret 's' key 'AWS_ACCESS_KEY_ID' is not text"):
        secret_values({"metadata": {"name": "s"}, "data": {"AWS_ACCESS_KEY_ID": "//79"}})


def test_pods_get_the_secret_as_environment_and_the_endpoint_and_region() -> None:
    access = MINIO.model_copy(update={"service_account_name": "trainer"})
    pods = pod_storage(access, "s3://bucket/runs")
    assert pods.service_account == "trainer"
    assert pods.env_from == [{"secretRef": {"name": "minio"}}]
    assert pods.env == [
        {"name": "AWS_ENDPOINT_URL", "value": "http://minio.storage:9000"},
        {"name": "AWS_DEFAULT_REGION", "value": "eu-west-1"},
    ]
    assert pods.volumes == []
    assert pods.mounts == []


def test_a_gs_key_is_mounted_as_a_file_and_a_shared_claim_at_its_path() -> None:
    access = StorageAccess(secret_ref="gcs", volume=SharedVolume(claim_name="runs", mount_path="/mnt/runs"))
    pods = pod_storage(access, "gs://bucket/runs")
    assert pods.env_from == []  # a JSON key file is not an environment variable
    assert {"name": "GOOGLE_APPLICATION_CREDENTIALS", "value": f"{SECRET_MOUNT}/{GCS_KEY}"} in pods.env
    assert {"name": "kaizen-storage-secret", "secret": {"secretName": "gcs"}} in pods.volumes
    assert {"name": "kaizen-storage-volume", "persistentVolumeClaim": {"claimName": "runs"}} in pods.volumes
    assert {"name": "kaizen-storage-volume", "mountPath": "/mnt/runs"} in pods.mounts
    assert {"name": "kaizen-storage-secret", "mountPath": SECRET_MOUNT, "readOnly": True} in pods.mounts


def test_a_job_on_an_existing_cluster_gets_the_keys_as_its_environment() -> None:
    env = runtime_env_vars(MINIO, "s3://bucket/runs", {**KEYS, "not a name": "x"})
    assert env == {**KEYS, "AWS_ENDPOINT_URL": "http://minio.storage:9000", "AWS_DEFAULT_REGION": "eu-west-1"}
    assert runtime_env_vars(StorageAccess(), "s3://bucket/runs", None) == {}
    with pytest.raises(StorageSettingsError, match="Workload Identity"):
        runtime_env_vars(StorageAccess(secret_ref="gcs"), "gs://bucket/runs", {GCS_KEY: "{}"})
    with pytest.raises(StorageSettingsError, match="'AWS_SECRET_ACCESS_KEY'"):
        runtime_env_vars(MINIO, "s3://bucket/runs", {"AWS_ACCESS_KEY_ID": "a"})


@pytest.mark.parametrize(
    ("error", "problem"),
    [
        (PermissionError("The AWS Access Key Id you provided does not exist"), Problem.DENIED),
        (NoCredentialsError(), Problem.DENIED),
        (FileNotFoundError("The specified bucket does not exist"), Problem.MISSING),
        (EndpointConnectionError(endpoint_url="http://127.0.0.1:1"), Problem.UNREACHABLE),
        (ReadTimeoutError(endpoint_url="http://127.0.0.1:1"), Problem.UNREACHABLE),
        (ConnectionRefusedError(111, "Connection refused"), Problem.UNREACHABLE),
        (OSError(503, "Service Unavailable"), Problem.UNREACHABLE),
    ],
)
def test_failures_are_told_apart(error: Exception, problem: Problem) -> None:
    assert classify(error) == problem


def test_a_runs_snapshot_sits_beside_its_adapter() -> None:
    assert dataset_uri("s3://bucket/coder/", "coder-0001") == "s3://bucket/coder/coder-0001/dataset"


def test_a_failure_reads_the_same_whichever_object_it_happened_on() -> None:
    """A condition that repeats itself must not change (nor post a new Event) on every retry."""
    first = _detail(EndpointConnectionError(endpoint_url="http://127.0.0.1:9000/bucket/run/train.parquet"))
    second = _detail(EndpointConnectionError(endpoint_url="http://127.0.0.1:9000/bucket/run/snapshot.json"))
    assert first == second
    assert "127.0.0.1:9000" in first
