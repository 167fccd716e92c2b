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


def loader_service_name(inference_service: str) -> str:
    return inference_service + LOADER_SERVICE_SUFFIX


def _environment(storage: StorageAccess) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    env = []
    if storage.endpoint:
        env.append({"name": "AWS_ENDPOINT_URL", "value": storage.endpoint})
    if storage.region:
        env.append({"name": "AWS_DEFAULT_REGION", "value": storage.region})
    env_from = [{"secretRef": {"name": storage.secret_ref}}] if storage.secret_ref else []
    return env, env_from


def loader_container(image: str, storage: StorageAccess) -> dict[str, Any]:
    env, env_from = _environment(storage)
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
    }
    if env:
        container["env"] = env
    if env_from:
        container["envFrom"] = env_from
    return container


def add_loader(predictor: dict[str, Any], image: str, storage: StorageAccess) -> dict[str, Any]:
    """``predictor`` with the loader beside its model container and the adapters' volume in both."""
    model = predictor["model"]
    model["volumeMounts"] = [
        *model.get("volumeMounts", []),
        {"name": ADAPTERS_VOLUME, "mountPath": ADAPTERS_MOUNT},
    ]
    predictor["containers"] = [loader_container(image, storage)]
    predictor["volumes"] = [{"name": ADAPTERS_VOLUME, "emptyDir": {}}]
    return predictor


def loader_service(inference_service: Mapping[str, Any]) -> dict[str, Any]:
    """The headless Service listing every replica's loader, owned by the shared base (read back from
    the API server: its uid is needed)."""
    meta = inference_service["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {
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
        },
        "spec": {"clusterIP": "None", **loader_selection(meta["name"])},
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
