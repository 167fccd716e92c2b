"""Adapters on a warm shared base: load a member's adapter into every replica, unload a leaver's.

The shared base's predictor never changes when an adapter joins (``controllers.builders.inference
service``); instead, on each pass of a member ShadowModel, the operator finds the base's replicas (the
ready endpoints, port ``kaizen-loader``, of the EndpointSlices of the headless Service
``<isvc>-kaizen-loader`` it keeps beside the base: ``controllers.builders.loader_sidecar``), asks each
replica's loader what it lists on ``/v1/models``, loads the adapter where it is missing or another version holds the name, and lists
again: the member is Ready only when every replica lists this version. A replica that starts later
(scale-up, a restarted pod) lists nothing and is filled on the member's next pass. A retired or rolled
back member is unloaded from every replica the same way. See ``controllers.clients.lora`` for how the
adapter gets from its storage URI onto the replica's disk. Every call carries the loaders' token,
kept in the Secret ``<isvc>-kaizen-loader`` made with the Service (``ensure_loader_access``).
"""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from typing import Any

import httpx

from controllers.api.kindinfo import Resource
from controllers.api.kinds import INFERENCE_SERVICES, SECRETS
from controllers.builders.loader_sidecar import (
    LOADER_PORT,
    LOADER_PORT_NAME,
    LOADER_TOKEN_KEY,
    loader_secret,
    loader_secret_name,
    loader_selection,
    loader_service,
    loader_service_name,
)
from controllers.clients import lora as client
from controllers.decisions import lora as plan
from controllers.runtime.kube import Kube, KubeError

# discovery.k8s.io/v1 from Kubernetes 1.21 (v1beta1 was removed in 1.25); v1beta1 on older servers
# such as the development control plane's. The fields read here are the same in both.
ENDPOINT_SLICE_VERSIONS = (
    Resource("discovery.k8s.io", "v1", "endpointslices"),
    Resource("discovery.k8s.io", "v1beta1", "endpointslices"),
)
SERVICES = Resource("", "v1", "services")
TIMEOUT = 30.0  # a load downloads the adapter first
MIN_TOKEN_LENGTH = 16  # what the loader itself accepts (controllers.loader)


@dataclass(frozen=True)
class Placement:
    """Where an adapter stands on a shared base after one pass."""

    replicas: int
    listed_on: int
    problem: str = ""

    @property
    def everywhere(self) -> bool:
        return self.replicas > 0 and self.listed_on == self.replicas and not self.problem


async def ensure_loader_access(kube: Kube, inference_service: dict[str, Any]) -> None:
    """The loaders' Secret and Service beside the shared base (read back from the API server), made
    with the base, before its pods are ready: the pods wait for the Secret, and the Service lists
    their loaders as soon as they are ready."""
    meta = inference_service["metadata"]
    if await kube.get(SECRETS, meta["namespace"], loader_secret_name(meta["name"])) is None:
        # Created once and never changed: a running loader holds the token it started with.
        await kube.ensure(SECRETS, loader_secret(inference_service, secrets.token_urlsafe(32)))
    await ensure_loader_service(kube, inference_service)


async def loader_token(kube: Kube, namespace: str, inference_service: str) -> str:
    """The token every replica's loader expects, from the Secret the operator made: one owned by this
    base (its uid), holding a token of 16 characters or more. A Secret of that name made by someone
    else is not used: its author would know the token."""
    name = loader_secret_name(inference_service)
    secret = await kube.get(SECRETS, namespace, name)
    value = ((secret or {}).get("data") or {}).get(LOADER_TOKEN_KEY)
    if not value:
        raise client.LoraError(
            f"no Secret {namespace}/{name} with the loaders' token; the next pass makes it"
        )
    base = await kube.get(INFERENCE_SERVICES, namespace, inference_service) or {}
    owners = {ref.get("uid") for ref in (secret or {}).get("metadata", {}).get("ownerReferences") or []}
    token = base64.b64decode(value).decode()
    if base.get("metadata", {}).get("uid") not in owners or len(token) < MIN_TOKEN_LENGTH:
        raise client.LoraError(
            f"Secret {namespace}/{name} was not made by the operator for this shared base (no owner"
            " reference to it, or a short token): delete it, and the operator makes its own"
        )
    return token


async def _client(kube: Kube, namespace: str, inference_service: str) -> httpx.AsyncClient:
    token = await loader_token(kube, namespace, inference_service)
    return httpx.AsyncClient(timeout=TIMEOUT, headers={"Authorization": f"Bearer {token}"})


async def ensure_loader_service(kube: Kube, inference_service: dict[str, Any]) -> None:
    """The headless Service that lists every replica's loader: created, or its selection put back."""
    meta = inference_service["metadata"]
    name, wanted = loader_service_name(meta["name"]), loader_selection(meta["name"])
    current = await kube.get(SERVICES, meta["namespace"], name)
    if current is None:
        current, created = await kube.ensure(SERVICES, loader_service(inference_service))
        if created:
            return
    spec = current.get("spec") or {}
    if spec.get("selector") != wanted["selector"] or not _has_loader_port(spec):
        await kube.patch(SERVICES, meta["namespace"], name, {"spec": wanted})


def _has_loader_port(spec: dict[str, Any]) -> bool:
    # The API server adds defaults (targetPort as a number, nodePort...): compare what matters.
    return any(
        (p.get("name"), p.get("port")) == (LOADER_PORT_NAME, LOADER_PORT) for p in spec.get("ports") or []
    )


async def replicas(kube: Kube, namespace: str, inference_service: str) -> list[str]:
    """The loader URL of every ready replica, from the loader Service's EndpointSlices."""
    service = loader_service_name(inference_service)
    for resource in ENDPOINT_SLICE_VERSIONS:
        try:
            slices = await kube.list(resource, namespace, {plan.SERVICE_NAME_LABEL: service})
        except KubeError as error:
            if error.status == 404:  # this version is not served here: the next one
                continue
            raise
        return plan.replica_urls(slices, LOADER_PORT_NAME)
    return []


async def _listings(http: httpx.AsyncClient, urls: list[str], base_name: str) -> dict[str, dict[str, str]]:
    return {url: plan.loaded_adapters(await client.list_models(http, url), base_name) for url in urls}


async def ensure_loaded(
    kube: Kube, namespace: str, inference_service: str, base_name: str, name: str, uri: str
) -> Placement:
    """Load ``name`` (from ``uri``) into every replica that lacks this version, then verify."""
    urls = await replicas(kube, namespace, inference_service)
    if not urls:
        return Placement(0, 0, f"no ready replica of {inference_service} yet")
    try:
        async with await _client(kube, namespace, inference_service) as http:
            todo = plan.plan_adapter(await _listings(http, urls, base_name), name, uri)
            for url in todo.unload:
                await client.unload(http, url, name)
            for url in todo.load:
                await client.load(http, url, name, uri)
            after = plan.plan_adapter(await _listings(http, urls, base_name), name, uri)
    except client.LoraError as error:
        return Placement(len(urls), 0, str(error))
    missing = len(after.load)
    problem = f"{missing} of {len(urls)} replicas do not list {name!r} after loading it" if missing else ""
    return Placement(len(urls), len(urls) - missing, problem)


async def ensure_unloaded(
    kube: Kube, namespace: str, inference_service: str, base_name: str, name: str
) -> str:
    """Unload ``name`` from every replica that lists it; "" when none does any more, else what failed."""
    urls = await replicas(kube, namespace, inference_service)
    if not urls:  # no replica holds anything (the base is gone, or has no ready pod)
        return ""
    try:
        async with await _client(kube, namespace, inference_service) as http:
            for url in plan.plan_removal(await _listings(http, urls, base_name), name):
                await client.unload(http, url, name)
            left = plan.plan_removal(await _listings(http, urls, base_name), name)
    except client.LoraError as error:
        return str(error)
    return f"{name!r} is still listed on {', '.join(left)}" if left else ""
