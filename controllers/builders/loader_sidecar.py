"""The LoRA loader in a shared base's predictor pod, and the headless Service that reaches each one.

vLLM loads runtime adapters from its own disk only; the loader (``controllers.loader``) downloads a
member's adapter from its storage URI into an emptyDir both containers mount, then asks vLLM on
localhost to load it. It runs the operator's own image and reads the store as the trainer's pods do:
the storage Secret as environment (``spec.storage.secretRef``), the endpoint and region as
``AWS_ENDPOINT_URL`` / ``AWS_DEFAULT_REGION``, or, with no Secret, the ServiceAccount's cloud identity
(IRSA, Workload Identity) through the SDK's own chain. Members of one base must therefore agree on
those fields, as they do on the ServiceAccount.

The operator must reach every replica's loader, not one behind a load-balanced address: the headless
Service ``<isvc>-kaizen-loader`` selects the predictor's pods by the label KServe puts on every pod of
an InferenceService, and its EndpointSlices list each replica (``controllers.reconcile.lora``).

Only the operator may load or unload: the loader answers its ``/v1`` routes to a bearer token alone,
a random one the operator keeps in the Secret ``<isvc>-kaizen-loader`` beside the base (owned by it,
so it goes with it) and the kubelet gives the loader as ``KAIZEN_LOADER_TOKEN``. A pod that starts
before the operator has made the Secret waits for it, as any pod waits for a Secret it names.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from controllers.api.storage_settings import StorageAccess

LOADER_IMAGE = "ghcr.io/kaizen-dev/kaizen:0.1.0"  # the operator's image: the loader ships in it
LOADER_CONTAINER = "kaizen-loader"
LOADER_PORT = 8090
LOADER_PORT_NAME = "kaizen-loader"
ADAPTERS_VOLUME = "kaizen-adapters"
ADAPTERS_MOUNT = "/mnt/kaizen-adapters"
VLLM_URL = "http://127.0.0.1:8080"  # KServe's model container listens on 8080 in the same pod
# KServe labels every pod of an InferenceService with its name, and the predictor's with its component.
ISVC_POD_LABEL = "serving.kserve.io/inferenceservice"
LOADER_SERVICE_SUFFIX = "-kaizen-loader"
LOADER_TOKEN_ENV = "KAIZEN_LOADER_TOKEN"
LOADER_TOKEN_KEY = "token"


def loader_service_name(inference_service: str) -> str:
    return inference_service + LOADER_SERVICE_SUFFIX


def loader_secret_name(inference_service: str) -> str:
    """The Secret holding the loader's token (the same name as its Service: another kind)."""
    return inference_service + LOADER_SERVICE_SUFFIX


def _environment(
    storage: StorageAccess, inference_service: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    token = {"secretKeyRef": {"name": loader_secret_name(inference_service), "key": LOADER_TOKEN_KEY}}
    env: list[dict[str, Any]] = [{"name": LOADER_TOKEN_ENV, "valueFrom": token}]
    if storage.endpoint:
        env.append({"name": "AWS_ENDPOINT_URL", "value": storage.endpoint})
    if storage.region:
        env.append({"name": "AWS_DEFAULT_REGION", "value": storage.region})
    env_from = [{"secretRef": {"name": storage.secret_ref}}] if storage.secret_ref else []
    return env, env_from


def loader_container(image: str, storage: StorageAccess, inference_service: str) -> dict[str, Any]:
    env, env_from = _environment(storage, inference_service)
    container: dict[str, Any] = {
        "name": LOADER_CONTAINER,
        "image": image,
        "command": ["python", "-m", "controllers.loader"],
        "args": ["--vllm", VLLM_URL, "--listen", f"0.0.0.0:{LOADER_PORT}", "--adapters", ADAPTERS_MOUNT],
        "ports": [{"name": LOADER_PORT_NAME, "containerPort": LOADER_PORT, "protocol": "TCP"}],
        "volumeMounts": [{"name": ADAPTERS_VOLUME, "mountPath": ADAPTERS_MOUNT}],
        "readinessProbe": {"httpGet": {"path": "/healthz", "port": LOADER_PORT_NAME}},
        # Downloads stream to disk: little memory; the adapters' size lands on the emptyDir.
        "resources": {"requests": {"cpu": "50m", "memory": "128Mi"}, "limits": {"memory": "512Mi"}},
        "env": env,
    }
    if env_from:
        container["envFrom"] = env_from
    return container


def add_loader(
    predictor: dict[str, Any], image: str, storage: StorageAccess, inference_service: str
) -> dict[str, Any]:
    """``predictor`` with the loader beside its model container and the adapters' volume in both."""
    model = predictor["model"]
    model["volumeMounts"] = [
        *model.get("volumeMounts", []),
        {"name": ADAPTERS_VOLUME, "mountPath": ADAPTERS_MOUNT},
    ]
    predictor["containers"] = [loader_container(image, storage, inference_service)]
    predictor["volumes"] = [{"name": ADAPTERS_VOLUME, "emptyDir": {}}]
    return predictor


def _owned_metadata(inference_service: Mapping[str, Any]) -> dict[str, Any]:
    """Metadata of an object that belongs to the shared base (read back from the API server: its uid
    is needed) and is deleted with it."""
    meta = inference_service["metadata"]
    return {
        "name": loader_service_name(meta["name"]),
        "namespace": meta["namespace"],
        "labels": {"app.kubernetes.io/name": "kaizen-loader", "app.kubernetes.io/managed-by": "kaizen"},
        "ownerReferences": [
            {
                "apiVersion": inference_service["apiVersion"],
                "kind": inference_service["kind"],
                "name": meta["name"],
                "uid": meta["uid"],
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ],
    }


def loader_service(inference_service: Mapping[str, Any]) -> dict[str, Any]:
    """The headless Service listing every replica's loader, owned by the shared base."""
    name = inference_service["metadata"]["name"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _owned_metadata(inference_service),
        "spec": {"clusterIP": "None", **loader_selection(name)},
    }


def loader_secret(inference_service: Mapping[str, Any], token: str) -> dict[str, Any]:
    """The Secret with the loaders' token (``token`` is made by the caller: builders stay pure)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": _owned_metadata(inference_service),
        "type": "Opaque",
        "stringData": {LOADER_TOKEN_KEY: token},
    }


def loader_selection(inference_service: str) -> dict[str, Any]:
    """The loader Service's selector and ports: what the operator puts back if someone changed them.
    (Not-ready pods are left out of its slices; a replica still starting is filled on a later pass.)"""
    return {
        "selector": {ISVC_POD_LABEL: inference_service, "component": "predictor"},
        "ports": [
            {"name": LOADER_PORT_NAME, "port": LOADER_PORT, "targetPort": LOADER_PORT_NAME, "protocol": "TCP"}
        ],
    }
