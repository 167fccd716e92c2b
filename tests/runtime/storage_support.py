"""Helpers for the tests that serve adapters from the object store: upload a folder, give a namespace
the Secret and ServiceAccount KServe's storage initializer reads, and the ShadowModel spec to serve."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import s3fs  # type: ignore[import-untyped]

from controllers.api.serving_settings import DeploymentMode, ServingSettings
from controllers.api.shadowmodel import AdapterRef, ShadowModelSpec
from controllers.api.storage_settings import StorageAccess
from controllers.api.training_settings import BaseModelRef
from devstack.objectstore import ObjectStore
from tests.runtime.support import Cluster
from trainer.outputs import sha256_file

BASE_NAME = "kaizen-tiny"
SECRETS = "/api/v1/namespaces/{ns}/secrets"
SERVICE_ACCOUNTS = "/api/v1/namespaces/{ns}/serviceaccounts"


def upload(store: ObjectStore, folder: Path, uri: str) -> str:
    """Copy ``folder``'s files to ``uri`` (as the trainer writes an adapter); the URI."""
    env = store.env()
    fs = s3fs.S3FileSystem(
        key=env["AWS_ACCESS_KEY_ID"],
        secret=env["AWS_SECRET_ACCESS_KEY"],
        client_kwargs={"endpoint_url": env["AWS_ENDPOINT_URL"], "region_name": env["AWS_DEFAULT_REGION"]},
        skip_instance_cache=True,
    )
    for path in folder.iterdir():
        fs.put_file(str(path), f"{uri.removeprefix('s3://')}/{path.name}")
    return uri


def grant_storage(
    cluster: Cluster,
    store: ObjectStore,
    namespace: str,
    name: str = "kaizen-storage",
    secret_key: str | None = None,
) -> str:
    """The Secret and ServiceAccount of ``ObjectStore.kube_objects``, created in ``namespace``;
    ``secret_key`` replaces the real secret key (a wrong credential)."""
    secret, account = store.kube_objects(namespace, name)
    if secret_key is not None:
        secret["stringData"]["AWS_SECRET_ACCESS_KEY"] = secret_key
    cluster.create(SECRETS, namespace, secret)
    cluster.create(SERVICE_ACCOUNTS, namespace, account)
    return name


def adapter_spec(
    base: Path, adapter: Path, uri: str, *, account: str | None, shared: str | None = None, replicas: int = 1
) -> ShadowModelSpec:
    return ShadowModelSpec(
        base_model=BaseModelRef(name=BASE_NAME, uri=str(base)),
        adapter=AdapterRef(uri=uri, digest=sha256_file(adapter / "adapter_model.safetensors")),
        serving=ServingSettings(
            gpus=0,
            cpu="1",
            memory="2Gi",
            mode=DeploymentMode.SHARED if shared else DeploymentMode.DEDICATED,
            shared_base=shared,
            min_replicas=replicas,
            max_replicas=replicas,
        ),
        storage=StorageAccess(service_account_name=account),
    )


def shadow_model(name: str, spec: ShadowModelSpec) -> dict[str, Any]:
    return {
        "apiVersion": "kaizen.dev/v1alpha1",
        "kind": "ShadowModel",
        "metadata": {"name": name},
        "spec": spec.to_wire(),
    }
