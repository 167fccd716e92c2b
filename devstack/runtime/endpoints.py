"""The EndpointSlices of the stand-in's replicas, as Kubernetes' EndpointSlice controller writes them.

In a cluster, KServe's RawDeployment makes a Service ``<isvc>-predictor``, and Kubernetes' EndpointSlice
controller lists the ready pods behind every Service whose selector matches them (the operator's own
headless ``<isvc>-kaizen-loader`` among them). The stand-in plays that controller for its replicas,
whose "pods" carry the labels KServe gives a predictor pod (``POD_LABELS``): the predictor Service's
slices (the stand-in makes no such Service), and the slices of every Service in the namespace whose
selector matches those labels. One slice per replica per Service (a Service's endpoints are split into
several slices when their ports differ, as each stand-in replica's port does); every port of the
Service maps to the replica's one port, since the stand-in model server plays every container of the
pod (vLLM and Kaizen's loader alike). Slices are labelled ``kubernetes.io/service-name`` and owned by
the InferenceService (the predictor's) or by their Service, so that they go with it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from controllers.api.kindinfo import Resource
from controllers.api.kinds import INFERENCE_SERVICES
from controllers.runtime.kube import Kube, KubeError
from devstack.runtime.servers import Instance

# The development control plane (Kubernetes 1.20) serves EndpointSlices as v1beta1 only; the operator
# reads v1 where it is served and v1beta1 otherwise. (Core v1 Endpoints refuse loopback addresses.)
ENDPOINT_SLICES = Resource("discovery.k8s.io", "v1beta1", "endpointslices")
SERVICES = Resource("", "v1", "services")
SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
MANAGER = "kaizen-devstack"
REPLICAS_OF = "devstack.kaizen.dev/inference-service"  # which stand-in's replicas a slice lists
LOOPBACK = "127.0.0.1"


def pod_labels(isvc_name: str) -> dict[str, str]:
    """The labels KServe puts on a predictor pod of a RawDeployment InferenceService."""
    return {
        "serving.kserve.io/inferenceservice": isvc_name,
        "component": "predictor",
        "app": f"isvc.{isvc_name}-predictor",
    }


def _owner(obj: dict[str, Any], api_version: str, kind: str) -> dict[str, Any]:
    meta = obj["metadata"]
    return {"apiVersion": api_version, "kind": kind, "name": meta["name"], "uid": meta["uid"]}


def _slice(
    namespace: str,
    isvc_name: str,
    service: str,
    owner: dict[str, Any],
    ports: list[dict[str, Any]],
    instance: Instance,
) -> dict[str, Any]:
    return {
        "apiVersion": "discovery.k8s.io/v1beta1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service}-{instance.token[:5]}",
            "namespace": namespace,
            "labels": {
                SERVICE_NAME: service,
                MANAGED_BY: MANAGER,
                REPLICAS_OF: isvc_name,
                "component": "predictor",
            },
            "ownerReferences": [owner],
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [LOOPBACK], "conditions": {"ready": True, "serving": True}}],
        "ports": [
            {"name": port.get("name", ""), "port": instance.pod_port, "protocol": port.get("protocol", "TCP")}
            for port in ports
        ],
    }


async def _selecting_services(kube: Kube, namespace: str, isvc_name: str) -> list[dict[str, Any]]:
    """The Services whose (non-empty) selector matches this InferenceService's predictor pods."""
    labels = pod_labels(isvc_name)
    return [
        service
        for service in await kube.list(SERVICES, namespace)
        if (selector := (service.get("spec") or {}).get("selector"))
        and selector.items() <= labels.items()
        and (service.get("spec") or {}).get("ports")
    ]


async def _wanted(kube: Kube, isvc: dict[str, Any], ready: Sequence[Instance]) -> dict[str, dict[str, Any]]:
    meta = isvc["metadata"]
    namespace, name = meta["namespace"], meta["name"]
    served = [
        i for i in ready if i.pod_port
    ]  # a replica adopted from an older runtime has no port of its own
    predictor = _owner(isvc, f"{INFERENCE_SERVICES.group}/{INFERENCE_SERVICES.version}", "InferenceService")
    http = [{"name": "http", "protocol": "TCP"}]
    bodies = [_slice(namespace, name, f"{name}-predictor", predictor, http, i) for i in served]
    for service in await _selecting_services(kube, namespace, name):
        owner = _owner(service, "v1", "Service")
        ports = service["spec"]["ports"]
        bodies += [_slice(namespace, name, service["metadata"]["name"], owner, ports, i) for i in served]
    return {body["metadata"]["name"]: body for body in bodies}


async def publish(kube: Kube, isvc: dict[str, Any], ready: Sequence[Instance]) -> None:
    """Make the slices of this InferenceService's replicas list exactly the ``ready`` ones, for the
    predictor Service and every Service selecting its pods (create the missing, delete the rest)."""
    meta = isvc["metadata"]
    try:
        wanted = await _wanted(kube, isvc, ready)
        present = await kube.list(
            ENDPOINT_SLICES, meta["namespace"], {MANAGED_BY: MANAGER, REPLICAS_OF: meta["name"]}
        )
        names = set()
        for found in present:
            body = wanted.get(found["metadata"]["name"])
            if body is None or found.get("ports") != body["ports"]:  # gone, or its Service's ports changed
                await kube.delete(ENDPOINT_SLICES, meta["namespace"], found["metadata"]["name"])
            else:
                names.add(found["metadata"]["name"])
        for name, body in wanted.items():
            if name not in names:
                await kube.ensure(ENDPOINT_SLICES, body)
    except KubeError as error:
        if error.status != 404:  # the namespace is going away
            raise
