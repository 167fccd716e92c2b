"""From a policy's ``training.storage`` to what each party needs to reach ``training.outputUri``. Pure.

Three translations of one StorageAccess (controllers.api.storage_settings says who reads what):

- ``storage_options``: the operator's own fsspec options, from the Secret's decoded keys;
- ``pod_storage``: what the RayJob's head and worker pods get (service account, ``envFrom`` of the
  Secret, endpoint and region as environment, a gs:// key file or a shared claim as volumes);
- ``runtime_env_vars``: the same environment for a job posted to an existing Ray cluster, which
  cannot mount the Secret, so the operator resolves its keys and sends them along.

A Secret that lacks a key raises ``StorageSettingsError`` naming the Secret and the key, never a value.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from controllers.api.storage_settings import GCS_KEY, SECRET_MOUNT, StorageAccess

SECRET_FIELD = "spec.training.storage.secretRef"
OUTPUT_FIELD = "spec.training.outputUri"
S3_KEYS = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
S3_TOKEN = "AWS_SESSION_TOKEN"
AZ_CONNECTION = "AZURE_STORAGE_CONNECTION_STRING"
AZ_ACCOUNT = ("AZURE_STORAGE_ACCOUNT_NAME", "AZURE_STORAGE_ACCOUNT_KEY")
ENDPOINT_ENV = "AWS_ENDPOINT_URL"
REGION_ENV = "AWS_DEFAULT_REGION"
GCS_CREDENTIALS_ENV = "GOOGLE_APPLICATION_CREDENTIALS"
SECRET_VOLUME = "kaizen-storage-secret"
CLAIM_VOLUME = "kaizen-storage-volume"
# A stuck endpoint must not hold a reconcile for botocore's default minute per try.
S3_TIMEOUTS = {"connect_timeout": 10, "read_timeout": 60, "retries": {"max_attempts": 3}}
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class StorageSettingsError(ValueError):
    """The storage settings cannot work as given: ``field`` is the spec field to fix."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


def scheme(uri: str) -> str:
    """``s3``, ``gs``, ``az`` or ``file`` (a plain path is a file)."""
    name = uri.split("://", 1)[0].lower() if "://" in uri else "file"
    return {"gcs": "gs", "abfs": "az"}.get(name, name)


def secret_values(secret: Mapping[str, Any]) -> dict[str, str]:
    """A Secret's keys, decoded (``data`` is base64; ``stringData`` as a test may hold it)."""
    name = (secret.get("metadata") or {}).get("name", "")
    values = {key: str(value) for key, value in (secret.get("stringData") or {}).items()}
    for key, encoded in (secret.get("data") or {}).items():
        try:
            values[key] = base64.b64decode(encoded).decode()
        except (binascii.Error, UnicodeDecodeError) as error:
            raise StorageSettingsError(SECRET_FIELD, f"Secret {name!r} key {key!r} is not text") from error
    return values


def _require(values: Mapping[str, str], keys: tuple[str, ...], secret_name: str, needs: str) -> None:
    missing = [key for key in keys if not values.get(key)]
    if missing:
        raise StorageSettingsError(
            SECRET_FIELD,
            f"Secret {secret_name!r} has no key {missing[0]!r} ({needs}); add it to the Secret",
        )


def storage_options(
    uri: str, access: StorageAccess, secret: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """fsspec options for ``uri``; without a Secret, the back end's own chain (environment, pod identity)."""
    kind = scheme(uri)
    name = access.secret_ref or ""
    if kind == "s3":
        client: dict[str, Any] = {}
        if access.endpoint:
            client["endpoint_url"] = access.endpoint
        if access.region:
            client["region_name"] = access.region
        options: dict[str, Any] = {"client_kwargs": client, "config_kwargs": dict(S3_TIMEOUTS)}
        if secret is not None:
            _require(secret, S3_KEYS, name, "s3:// needs AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY")
            options |= {"key": secret[S3_KEYS[0]], "secret": secret[S3_KEYS[1]]}
            if secret.get(S3_TOKEN):
                options["token"] = secret[S3_TOKEN]
        return options
    if kind == "gs":
        options = {"endpoint_url": access.endpoint} if access.endpoint else {}
        if secret is not None:
            _require(secret, (GCS_KEY,), name, "gs:// needs a service-account key file")
            try:
                options["token"] = json.loads(secret[GCS_KEY])
            except json.JSONDecodeError as error:
                raise StorageSettingsError(
                    SECRET_FIELD, f"Secret {name!r} key {GCS_KEY!r} is not a JSON key file"
                ) from error
        return options
    if kind == "az":
        if secret is None:
            return {}
        if secret.get(AZ_CONNECTION):
            return {"connection_string": secret[AZ_CONNECTION]}
        needs = f"az:// needs {AZ_CONNECTION}, or AZURE_STORAGE_ACCOUNT_NAME and AZURE_STORAGE_ACCOUNT_KEY"
        _require(secret, AZ_ACCOUNT, name, needs)
        return {"account_name": secret[AZ_ACCOUNT[0]], "account_key": secret[AZ_ACCOUNT[1]]}
    return {}


@dataclass(frozen=True)
class PodStorage:
    """What a trainer pod needs to reach the run's storage."""

    service_account: str | None = None
    env: list[dict[str, Any]] = field(default_factory=list)
    env_from: list[dict[str, Any]] = field(default_factory=list)
    volumes: list[dict[str, Any]] = field(default_factory=list)
    mounts: list[dict[str, Any]] = field(default_factory=list)


def _endpoint_env(access: StorageAccess) -> dict[str, str]:
    env = {ENDPOINT_ENV: access.endpoint} if access.endpoint else {}
    return env | ({REGION_ENV: access.region} if access.region else {})


def pod_storage(access: StorageAccess, uri: str) -> PodStorage:
    """The pods' storage settings: a gs:// key is mounted as a file (a JSON key is not an environment
    variable); every other Secret's keys become the pods' environment."""
    env = [{"name": name, "value": value} for name, value in _endpoint_env(access).items()]
    env_from: list[dict[str, Any]] = []
    volumes: list[dict[str, Any]] = []
    mounts: list[dict[str, Any]] = []
    if access.secret_ref and scheme(uri) == "gs":
        volumes.append({"name": SECRET_VOLUME, "secret": {"secretName": access.secret_ref}})
        mounts.append({"name": SECRET_VOLUME, "mountPath": SECRET_MOUNT, "readOnly": True})
        env.append({"name": GCS_CREDENTIALS_ENV, "value": f"{SECRET_MOUNT}/{GCS_KEY}"})
    elif access.secret_ref:
        env_from.append({"secretRef": {"name": access.secret_ref}})
    if access.volume is not None:
        volumes.append(
            {"name": CLAIM_VOLUME, "persistentVolumeClaim": {"claimName": access.volume.claim_name}}
        )
        mounts.append({"name": CLAIM_VOLUME, "mountPath": access.volume.mount_path})
    return PodStorage(access.service_account_name, env, env_from, volumes, mounts)


def runtime_env_vars(access: StorageAccess, uri: str, secret: Mapping[str, str] | None) -> dict[str, str]:
    """Environment for a job posted to an existing Ray cluster: endpoint, region and the Secret's keys
    (those that are valid variable names, as ``envFrom`` takes them). A gs:// key file cannot travel
    this way: such a cluster needs its own identity (Workload Identity), and the Secret is refused."""
    env = _endpoint_env(access)
    if secret is None:
        return env
    if scheme(uri) == "gs":
        raise StorageSettingsError(
            SECRET_FIELD,
            "a gs:// key file cannot be sent to an existing Ray cluster (RayJobsAPI); give the cluster"
            " Workload Identity and leave secretRef empty, or use submission RayJob",
        )
    storage_options(uri, access, secret)  # the same key checks as the operator's own access
    return env | {key: value for key, value in secret.items() if _ENV_NAME.match(key)}
