"""The EndpointSlices of an InferenceService's predictor Service, as the stand-in's replicas stand.

In a cluster, KServe's RawDeployment makes a Service ``<isvc>-predictor`` and Kubernetes' EndpointSlice
controller lists the ready pods behind it. The stand-in writes the same objects for its replicas: one
slice per replica (a Service's endpoints are split into several slices when their ports differ, as
each stand-in replica's port does), labelled ``kubernetes.io/service-name``, owned by the
InferenceService so that they go with it. The operator finds the replicas of a shared base here.
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
SERVICE_NAME = "kubernetes.io/service-name"
MANAGED_BY = "endpointslice.kubernetes.io/managed-by"
MANAGER = "kaizen-devstack"
LOOPBACK = "127.0.0.1"


def _slice(isvc: dict[str, Any], instance: Instance) -> dict[str, Any]:
    meta = isvc["metadata"]
    service = f"{meta['name']}-predictor"
    return {
        "apiVersion": "discovery.k8s.io/v1beta1",
        "kind": "EndpointSlice",
        "metadata": {
            "name": f"{service}-{instance.token[:5]}",
            "namespace": meta["namespace"],
            "labels": {SERVICE_NAME: service, MANAGED_BY: MANAGER, "component": "predictor"},
            "ownerReferences": [
                {
                    "apiVersion": f"{INFERENCE_SERVICES.group}/{INFERENCE_SERVICES.version}",
                    "kind": "InferenceService",
                    "name": meta["name"],
                    "uid": meta["uid"],
                }
            ],
        },
        "addressType": "IPv4",
        "endpoints": [{"addresses": [LOOPBACK], "conditions": {"ready": True, "serving": True}}],
        "ports": [{"name": "http", "port": instance.pod_port, "protocol": "TCP"}],
    }


async def publish(kube: Kube, isvc: dict[str, Any], ready: Sequence[Instance]) -> None:
    """Make the predictor's slices list exactly the ``ready`` replicas (create the missing, delete
    the rest); a replica without a port of its own (adopted from an older runtime) is left out."""
    meta = isvc["metadata"]
    service = f"{meta['name']}-predictor"
    wanted = {body["metadata"]["name"]: body for body in (_slice(isvc, i) for i in ready if i.pod_port)}
    try:
        present = await kube.list(
            ENDPOINT_SLICES, meta["namespace"], {SERVICE_NAME: service, MANAGED_BY: MANAGER}
        )
        for found in present:
            if found["metadata"]["name"] not in wanted:
                await kube.delete(ENDPOINT_SLICES, meta["namespace"], found["metadata"]["name"])
        names = {found["metadata"]["name"] for found in present}
        for name, body in wanted.items():
            if name not in names:
                await kube.ensure(ENDPOINT_SLICES, body)
    except KubeError as error:
        if error.status != 404:  # the namespace is going away
            raise
