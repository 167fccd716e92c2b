"""The InferenceService stand-in fetches an s3:// adapter only with the credentials KServe would use.

The predictor's ``serviceAccountName`` -> that ServiceAccount's ``secrets`` -> a Secret with AWS keys and
the ``serving.kserve.io/s3-*`` annotations: with the right key the adapter is downloaded into a folder
of the server's own and served, byte for byte the trained one; with no ServiceAccount, or a wrong key
(which the real S3-protocol server refuses with 403), the InferenceService is not Ready and says which
URI failed and why, as KServe's storage initializer does.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx

from controllers.builders.inferenceservice import ObjectRef, build_inference_service, endpoint_url
from devstack.objectstore import ObjectStore
from devstack.runtime import LocalRuntime
from tests.runtime.storage_support import adapter_spec, grant_storage, shadow_model, upload
from tests.runtime.support import ISVCS, SHADOW_MODELS, Cluster, wait_for
from trainer.outputs import sha256_file


def _serve(cluster: Cluster, namespace: str, name: str, spec: Any) -> None:
    owner = cluster.create(SHADOW_MODELS, namespace, shadow_model(name, spec))
    cluster.create(
        ISVCS, namespace, build_inference_service(ObjectRef.from_metadata(owner["metadata"]), spec)
    )


def _ready(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    found = cluster.get(ISVCS, namespace, name) or {}
    ready = [c for c in (found.get("status") or {}).get("conditions", []) if c["type"] == "Ready"]
    return found if ready and ready[0]["status"] == "True" else None


def _failure(cluster: Cluster, namespace: str, name: str) -> dict[str, Any] | None:
    found = cluster.get(ISVCS, namespace, name) or {}
    for item in (found.get("status") or {}).get("conditions", []):
        if item["type"] == "Ready" and item["status"] == "False" and item.get("reason") == "ModelLoadFailed":
            return dict(item)
    return None


def test_adapters_are_fetched_only_with_the_service_accounts_credentials(
    runtime: LocalRuntime,
    cluster: Cluster,
    namespace: str,
    object_store: ObjectStore,
    bucket: str,
    models: dict[str, Path],
) -> None:
    uri = upload(object_store, models["adapter-a"], f"{bucket}/run-a/adapter")
    right = grant_storage(cluster, object_store, namespace)
    wrong = grant_storage(cluster, object_store, namespace, "wrong-key", secret_key="not-the-key")
    _serve(
        cluster, namespace, "no-account", adapter_spec(models["base"], models["adapter-a"], uri, account=None)
    )
    _serve(
        cluster,
        namespace,
        "wrong-creds",
        adapter_spec(models["base"], models["adapter-a"], uri, account=wrong),
    )
    _serve(
        cluster,
        namespace,
        "right-creds",
        adapter_spec(models["base"], models["adapter-a"], uri, account=right),
    )

    missing = wait_for("no-account to fail", lambda: _failure(cluster, namespace, "no-account"), 60)
    assert uri in missing["message"]
    assert "serviceAccountName" in missing["message"]
    refused = wait_for("wrong-creds to fail", lambda: _failure(cluster, namespace, "wrong-creds"), 60)
    assert uri in refused["message"]
    assert "403" in refused["message"], refused["message"]

    served = wait_for("right-creds to be Ready", lambda: _ready(cluster, namespace, "right-creds"), 120)
    base_url = endpoint_url(served["status"]["url"])
    cards = {c["id"]: c for c in httpx.get(f"{base_url}/models", timeout=10).json()["data"]}
    fetched = Path(cards["right-creds"]["root"])
    assert fetched != models["adapter-a"]
    assert runtime.state_dir in fetched.parents  # a folder of the server's own
    trained = sha256_file(models["adapter-a"] / "adapter_model.safetensors")
    assert sha256_file(fetched / "adapter_model.safetensors") == trained
    reply = httpx.post(
        f"{base_url}/completions",
        json={"model": "right-creds", "prompt": "def add", "max_tokens": 2},
        timeout=30,
    )
    assert reply.status_code == 200, reply.text
    assert _ready(cluster, namespace, "no-account") is None
    assert _ready(cluster, namespace, "wrong-creds") is None
