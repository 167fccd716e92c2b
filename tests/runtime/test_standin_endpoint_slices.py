"""The stand-in plays Kubernetes' EndpointSlice controller for its replicas: every Service whose selector
matches a predictor pod's labels gets one slice per ready replica, each of its ports on that replica's
port; the operator finds each shared-base replica's loader through them (``controllers.reconcile.lora``).

Against the real API server (and its garbage collector, which removes a slice whose owner is missing),
with the runtime's CRDs; the replicas are records, since only their ports matter here. (The base's
weights are in a bucket the stand-in has no credentials for: it starts no server and writes no slice
of its own.)"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from controllers.api.kinds import SECRETS
from controllers.api.training_settings import BaseModelRef
from controllers.builders.inferenceservice import ObjectRef
from controllers.builders.loader_sidecar import loader_service
from controllers.builders.shared_base import build_shared_base
from controllers.clients.lora import LoraError
from controllers.reconcile.lora import ensure_loader_access, loader_token, replicas
from controllers.runtime.kube import Kube, load_configuration
from devstack.controlplane import ControlPlane
from devstack.runtime import LocalRuntime, endpoints
from devstack.runtime.servers import Instance
from tests.runtime.storage_support import BASE_NAME, adapter_spec
from tests.runtime.support import ISVCS, Cluster

SERVICES = "/api/v1/namespaces/{ns}/services"
SECRETS_PATH = "/api/v1/namespaces/{ns}/secrets"


def token_secret(secret: dict[str, Any]) -> bool:
    return secret.get("type") == "Opaque" and "token" in (secret.get("data") or {})


def _replica(token: str, port: int) -> Instance:
    return Instance(pid=0, admin="", plan="p", token=token, log="", pod_port=port)


def _service(name: str, selector: dict[str, str] | None) -> dict[str, Any]:
    spec: dict[str, Any] = {"clusterIP": "None", "ports": [{"name": "web", "port": 80}]}
    if selector is not None:
        spec["selector"] = selector
    return {"apiVersion": "v1", "kind": "Service", "metadata": {"name": name}, "spec": spec}


async def _slices(kube: Kube, namespace: str) -> dict[str, list[tuple[str, int]]]:
    by_service: dict[str, list[tuple[str, int]]] = {}
    for item in await kube.list(endpoints.ENDPOINT_SLICES, namespace):
        service = item["metadata"]["labels"][endpoints.SERVICE_NAME]
        by_service.setdefault(service, []).extend((p["name"], p["port"]) for p in item["ports"])
    return {service: sorted(ports) for service, ports in by_service.items()}


def _unowned_base(cluster: Cluster, namespace: str, models: dict[str, Any]) -> dict[str, Any]:
    """The shared base "base" as the API server stored it, its weights in a bucket the stand-in cannot
    read. Its member, ShadowModel "a", does not exist here: with the owner reference, the garbage
    collector would delete the base (and all it owns) as soon as it knows the ShadowModel kind (after
    any test that installed Kaizen's CRDs on this control plane)."""
    spec = adapter_spec(models["base"], models["adapter-a"], "s3://b/a", account=None, shared="base")
    spec = spec.model_copy(update={"base_model": BaseModelRef(name=BASE_NAME, uri="s3://weights/base")})
    manifest = build_shared_base("base", namespace, [(ObjectRef("a", namespace, "u"), spec)])
    del manifest["metadata"]["ownerReferences"]
    return cluster.create(ISVCS, namespace, manifest)


def test_services_selecting_the_predictor_pods_list_every_replica_on_their_own_port_names(
    control_plane: ControlPlane,
    runtime: LocalRuntime,
    cluster: Cluster,
    namespace: str,
    models: dict[str, Any],
) -> None:
    isvc = _unowned_base(cluster, namespace, models)
    cluster.create(
        SERVICES, namespace, _service("other-isvc", {"serving.kserve.io/inferenceservice": "other"})
    )
    cluster.create(SERVICES, namespace, _service("no-selector", None))
    asyncio.run(_scenario(control_plane, isvc))
    assert (
        cluster.get(SERVICES, namespace, "base-kaizen-loader")["spec"]["selector"]
        == (loader_service(isvc)["spec"]["selector"])
    )


async def _scenario(control_plane: ControlPlane, isvc: dict[str, Any]) -> None:
    namespace = isvc["metadata"]["namespace"]
    kube = Kube(load_configuration(str(control_plane.kubeconfig)))
    try:
        await ensure_loader_access(kube, isvc)
        token = await loader_token(kube, namespace, "base")
        await ensure_loader_access(kube, isvc)  # a second pass finds both and changes nothing
        assert await loader_token(kube, namespace, "base") == token
        assert len(token) >= 32
        assert [s["metadata"]["name"] for s in await kube.list(SECRETS, namespace) if token_secret(s)] == [
            "base-kaizen-loader"
        ]
        await endpoints.publish(kube, isvc, [_replica("aaaaa1", 4001), _replica("bbbbb2", 4002)])
        assert await _slices(kube, namespace) == {
            "base-predictor": [("http", 4001), ("http", 4002)],
            "base-kaizen-loader": [("kaizen-loader", 4001), ("kaizen-loader", 4002)],
        }
        assert await replicas(kube, namespace, "base") == ["http://127.0.0.1:4001", "http://127.0.0.1:4002"]

        await endpoints.publish(kube, isvc, [_replica("bbbbb2", 4002)])  # one replica went away
        assert await _slices(kube, namespace) == {
            "base-predictor": [("http", 4002)],
            "base-kaizen-loader": [("kaizen-loader", 4002)],
        }
    finally:
        await kube.close()


def test_a_loader_secret_planted_by_someone_else_is_not_used_until_deleted(
    control_plane: ControlPlane,
    runtime: LocalRuntime,
    cluster: Cluster,
    namespace: str,
    models: dict[str, Any],
) -> None:
    isvc = _unowned_base(cluster, namespace, models)
    planted = {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "base-kaizen-loader"}}
    cluster.create(SECRETS_PATH, namespace, {**planted, "stringData": {"token": "planted-token-0123456789"}})

    async def scenario() -> tuple[str, str]:
        kube = Kube(load_configuration(str(control_plane.kubeconfig)))
        try:
            await ensure_loader_access(kube, isvc)  # it exists: the operator leaves it alone
            with pytest.raises(LoraError) as refused:
                await loader_token(kube, namespace, "base")
            await kube.delete(SECRETS, namespace, "base-kaizen-loader")
            await ensure_loader_access(kube, isvc)
            return str(refused.value), await loader_token(kube, namespace, "base")
        finally:
            await kube.close()

    problem, token = asyncio.run(scenario())
    assert "was not made by the operator for this shared base" in problem
    assert "planted" not in problem
    assert token != "planted-token-0123456789"
    assert len(token) >= 32
