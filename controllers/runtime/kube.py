"""Kaizen's one Kubernetes client: create-if-absent, get, list, watch, merge patches, replace, delete.

Kopf watches and patches the object a handler is called for; everything else — children (RayJobs,
InferenceServices, TrainingRuns, ShadowModels, Experiments) and the few status writes on other objects —
goes through this small async client, and so do the development stack's stand-in controllers. It reads
the same credentials Kopf does (kubeconfig or the pod's service account) and speaks plain REST with
httpx, so one connection pool serves every handler and no call blocks the event loop. bench/kube_client.py measures it against kubernetes_asyncio and lightkube
behind this same interface; docs/architecture.md says what the figures decide.
"""

from __future__ import annotations

import json
import os
import ssl
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any, NamedTuple

import httpx
from kubernetes import config as kube_config
from kubernetes.client import Configuration

from controllers.api.kindinfo import Resource as Resource


class Page(NamedTuple):
    """One page of a list: its objects, how many remain after it (None when the server does not say),
    and the list's resourceVersion (the same on every page: one consistent snapshot), to watch from."""

    items: list[dict[str, Any]]
    remaining: int | None
    version: str


class KubeError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


def without_empty_strings(value: Any, *, as_null: bool = False) -> Any:
    """``value`` with every ``""`` field left out (or, for a merge patch, set to null, which removes it).

    The local v1.20 API server, built against newer JSON libraries, reads ``""`` in a custom resource as
    null and refuses it for a string field; Kubernetes APIs treat an empty string and an absent field
    alike (``omitempty``), so leaving it out is what a Go client would send anyway, on every server."""
    if isinstance(value, dict):
        return {
            key: (None if item == "" else without_empty_strings(item, as_null=as_null))
            for key, item in value.items()
            if item != "" or as_null
        }
    if isinstance(value, list):
        return [without_empty_strings(item) for item in value]
    return value


def load_configuration(kubeconfig: str | None = None) -> Configuration:
    """In-cluster credentials when running in a pod, else the kubeconfig (given, or ``$KUBECONFIG`` read
    now: the kubernetes package reads it once, at import, and would miss a later change)."""
    configuration = Configuration()
    config_file = kubeconfig or os.environ.get("KUBECONFIG") or None
    try:
        kube_config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except kube_config.ConfigException:
        kube_config.load_kube_config(config_file=config_file, client_configuration=configuration)  # type: ignore[no-untyped-call]
    return configuration


class Kube:
    """A thin async REST client; every method raises KubeError on an unexpected answer."""

    def __init__(
        self, configuration: Configuration, timeout: float = 30.0, max_connections: int = 24
    ) -> None:
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert)
        if not configuration.verify_ssl:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if configuration.cert_file:
            context.load_cert_chain(configuration.cert_file, configuration.key_file)
        headers = {}
        token = configuration.api_key.get("authorization") or configuration.api_key.get("BearerToken")
        if token:
            headers["Authorization"] = token if token.startswith("Bearer ") else f"Bearer {token}"
        # As many connections as reconciles can be in flight (Kopf's workers and the resync loops),
        # not httpx's default of a hundred, each with its TLS buffers.
        self._client = httpx.AsyncClient(
            base_url=configuration.host,
            verify=context,
            headers=headers,
            timeout=timeout,
            limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections),
        )

    async def close(self) -> None:
        await self._client.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = await self._client.request(method, path, **kwargs)
        if response.status_code >= 400:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise KubeError(response.status_code, message)
        return response

    async def get(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return (await self._call("GET", resource.path(namespace, name))).json()  # type: ignore[no-any-return]
        except KubeError as error:
            if error.status == 404:
                return None
            raise

    async def create(self, resource: Resource, body: dict[str, Any]) -> dict[str, Any]:
        """POST ``body`` (a review, or an object that must not exist yet) and return the answer."""
        namespace = body.get("metadata", {}).get("namespace")
        return (await self._call("POST", resource.path(namespace), json=body)).json()  # type: ignore[no-any-return]

    async def list(
        self, resource: Resource, namespace: str | None, labels: dict[str, str] | None = None
    ) -> list[dict[str, Any]]:
        params = {"labelSelector": ",".join(f"{k}={v}" for k, v in labels.items())} if labels else {}
        return _items((await self._call("GET", resource.path(namespace), params=params)).json())

    async def pages(
        self, resource: Resource, namespace: str | None, limit: int = 100
    ) -> AsyncGenerator[Page, None]:
        """Every object, ``limit`` at a time (so that a thousand are never held at once), each page
        with the number the server says remain after it (None when it does not say). The
        managedFields are left out: nothing here reads them, and they are a large part of each."""
        token = ""
        while True:
            params = {"limit": str(limit), **({"continue": token} if token else {})}
            body = (await self._call("GET", resource.path(namespace), params=params)).json()
            items = _items(body)
            for item in items:
                item.get("metadata", {}).pop("managedFields", None)
            meta = body.get("metadata") or {}
            yield Page(items, meta.get("remainingItemCount"), str(meta.get("resourceVersion") or ""))
            token = meta.get("continue") or ""
            if not token:
                return

    async def watch(
        self, resource: Resource, namespace: str | None, version: str, seconds: int = 300
    ) -> AsyncIterator[dict[str, Any]]:
        """Watch events (``{"type": ..., "object": ...}``, bookmarks included) after ``version``, until
        the server ends the watch (within ``seconds``). An expired ``version`` is a KubeError 410, as
        an answer or as an ERROR event, whichever the server sends."""
        params = {
            "watch": "true",
            "resourceVersion": version,
            "allowWatchBookmarks": "true",
            "timeoutSeconds": str(seconds),
        }
        timeout = httpx.Timeout(30.0, read=seconds + 30.0)
        path = resource.path(namespace)
        async with self._client.stream("GET", path, params=params, timeout=timeout) as response:
            if response.status_code >= 400:
                raise KubeError(response.status_code, (await response.aread()).decode(errors="replace"))
            async for line in response.aiter_lines():
                if not line.strip():
                    continue
                event = json.loads(line)
                if event.get("type") == "ERROR":
                    status = event.get("object") or {}
                    raise KubeError(int(status.get("code") or 500), str(status.get("message")))
                yield event

    async def version(self) -> tuple[int, int]:
        """The API server's (major, minor) version, e.g. (1, 20): which features it has."""
        info = (await self._call("GET", "/version")).json()
        return tuple(
            int("".join(ch for ch in str(info[part]) if ch.isdigit())) for part in ("major", "minor")
        )  # type: ignore[return-value]

    async def patch(
        self,
        resource: Resource,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        subresource: str | None = None,
    ) -> dict[str, Any]:
        """A merge patch of the object (or of a subresource such as ``status``)."""
        path = resource.path(namespace, name, subresource)
        response = await self._call("PATCH", path, json=patch, headers=MERGE_PATCH)
        return response.json()  # type: ignore[no-any-return]

    async def ensure(self, resource: Resource, body: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Create the object unless one with its name exists; returns (object, created).

        Names are deterministic, so "already exists" means an earlier pass (perhaps of a killed
        operator) made it: that object is the one to follow, never a second one.
        """
        namespace = body["metadata"].get("namespace")  # None: a cluster-scoped object (a CRD)
        try:
            created = await self._call("POST", resource.path(namespace), json=body)
            return created.json(), True
        except KubeError as error:
            if error.status != 409:
                raise
        existing = await self.get(resource, namespace, body["metadata"]["name"])
        if existing is None:  # deleted between the two calls; the next reconcile creates it again
            raise KubeError(409, f"{body['metadata']['name']} is being deleted")
        return existing, False

    async def patch_status(
        self, resource: Resource, namespace: str, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        return await self.patch(resource, namespace, name, {"status": status}, "status")

    async def replace(self, resource: Resource, body: dict[str, Any]) -> dict[str, Any]:
        """PUT with the body's resourceVersion: fails with 409 if someone changed it meanwhile."""
        meta = body["metadata"]
        response = await self._call("PUT", resource.path(meta.get("namespace"), meta["name"]), json=body)
        return response.json()  # type: ignore[no-any-return]

    async def delete(self, resource: Resource, namespace: str, name: str) -> bool:
        """Delete with background propagation; False when it was already gone."""
        try:
            await self._call(
                "DELETE",
                resource.path(namespace, name),
                json={"propagationPolicy": "Background"},
            )
            return True
        except KubeError as error:
            if error.status == 404:
                return False
            raise


def _items(body: dict[str, Any]) -> list[dict[str, Any]]:
    """A list response's items, carrying apiVersion and kind as single GETs do (lists leave them out)."""
    kind = str(body.get("kind", "")).removesuffix("List")
    items = list(body.get("items", []))
    for item in items:
        item.setdefault("apiVersion", body.get("apiVersion"))
        item.setdefault("kind", kind)
    return items
