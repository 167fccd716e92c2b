"""A small async Kubernetes client over httpx, and an informer: what the stand-in controllers need.

The local runtime talks to the API server the way a controller does — list, then watch from the
list's resourceVersion, relist when the watch expires — and writes status through the status
subresource with merge patches. It reads an ordinary kubeconfig (token or client certificate, CA or
insecure-skip-tls-verify), such as the one the local control plane writes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import ssl
import tempfile
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

log = logging.getLogger(__name__)
Key = tuple[str, str]  # (namespace, name)
MERGE_PATCH = "application/merge-patch+json"


class KubeError(RuntimeError):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status


@dataclass(frozen=True)
class Resource:
    group: str
    version: str
    plural: str
    namespaced: bool = True

    def path(self, namespace: str | None = None, name: str | None = None, sub: str | None = None) -> str:
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace:
            root += f"/namespaces/{namespace}"
        root += f"/{self.plural}"
        if name:
            root += f"/{name}"
        return root + (f"/{sub}" if sub else "")


CRDS = Resource("apiextensions.k8s.io", "v1", "customresourcedefinitions", namespaced=False)


def without_empty_strings(value: Any, *, as_null: bool = False) -> Any:
    """``value`` with every ``""`` field left out (or, for a merge patch, set to null, which removes it).

    The local v1.20 API server, built against newer JSON libraries, reads ``""`` in a custom resource
    as null and rejects it as "must be of type string"; Kubernetes APIs treat an empty string and an
    absent field alike (``omitempty``), so leaving it out is what a Go client would send anyway."""
    if isinstance(value, dict):
        return {
            key: (None if item == "" else without_empty_strings(item, as_null=as_null))
            for key, item in value.items()
            if item != "" or as_null
        }
    if isinstance(value, list):
        return [without_empty_strings(item) for item in value]
    return value


def _tls(cluster: dict[str, Any], user: dict[str, Any]) -> ssl.SSLContext | bool:
    if cluster.get("insecure-skip-tls-verify"):
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    elif data := cluster.get("certificate-authority-data"):
        context = ssl.create_default_context(cadata=base64.b64decode(data).decode())
    elif path := cluster.get("certificate-authority"):
        context = ssl.create_default_context(cafile=path)
    else:
        context = ssl.create_default_context()
    cert, key = user.get("client-certificate"), user.get("client-key")
    if user.get("client-certificate-data"):
        folder = Path(tempfile.mkdtemp(prefix="kz-kube-"))
        cert, key = str(folder / "tls.crt"), str(folder / "tls.key")
        Path(cert).write_bytes(base64.b64decode(user["client-certificate-data"]))
        Path(key).write_bytes(base64.b64decode(user["client-key-data"]))
        Path(key).chmod(0o600)
    if cert:
        context.load_cert_chain(cert, key)
    return context


class KubeClient:
    def __init__(
        self, server: str, *, token: str | None = None, verify: ssl.SSLContext | bool = True
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.server = server
        self._http = httpx.AsyncClient(base_url=server, headers=headers, verify=verify, timeout=30.0)

    @classmethod
    def from_kubeconfig(cls, path: Path, context: str | None = None) -> KubeClient:
        config = yaml.safe_load(path.read_text())
        name = context or config["current-context"]
        ctx = next(c["context"] for c in config["contexts"] if c["name"] == name)
        cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == ctx["cluster"])
        user: dict[str, Any] = next(
            (u["user"] for u in config.get("users", []) if u["name"] == ctx.get("user")), {}
        )
        token = user.get("token") or (
            Path(user["tokenFile"]).read_text().strip() if user.get("tokenFile") else None
        )
        return cls(cluster["server"], token=token, verify=_tls(cluster, user))

    async def aclose(self) -> None:
        await self._http.aclose()

    async def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        response = await self._http.request(method, path, **kwargs)
        if response.is_error:
            try:
                message = response.json().get("message", response.text)
            except ValueError:
                message = response.text
            raise KubeError(response.status_code, f"{method} {path}: {message}")
        result: dict[str, Any] = response.json()
        return result

    async def server_minor_version(self) -> int:
        info = await self._call("GET", "/version")
        return int("".join(ch for ch in str(info["minor"]) if ch.isdigit()))

    async def get(self, resource: Resource, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return await self._call("GET", resource.path(namespace, name))
        except KubeError as error:
            if error.status == 404:
                return None
            raise

    async def list(self, resource: Resource, **params: str) -> dict[str, Any]:
        return await self._call("GET", resource.path(), params=params)

    async def create(self, resource: Resource, body: dict[str, Any]) -> dict[str, Any]:
        namespace = body.get("metadata", {}).get("namespace")
        return await self._call("POST", resource.path(namespace), json=without_empty_strings(body))

    async def replace(self, resource: Resource, body: dict[str, Any]) -> dict[str, Any]:
        meta = body["metadata"]
        path = resource.path(meta.get("namespace"), meta["name"])
        return await self._call("PUT", path, json=without_empty_strings(body))

    async def patch(
        self,
        resource: Resource,
        namespace: str | None,
        name: str,
        patch: dict[str, Any],
        *,
        status: bool = False,
    ) -> dict[str, Any]:
        path = resource.path(namespace, name, "status" if status else None)
        body = json.dumps(without_empty_strings(patch, as_null=True))
        return await self._call("PATCH", path, content=body, headers={"Content-Type": MERGE_PATCH})

    async def delete(self, resource: Resource, namespace: str | None, name: str) -> None:
        try:
            await self._call("DELETE", resource.path(namespace, name))
        except KubeError as error:
            if error.status != 404:
                raise

    async def watch(self, resource: Resource, resource_version: str) -> AsyncIterator[dict[str, Any]]:
        """Watch events (``{"type": ..., "object": ...}``) from ``resource_version`` until the server
        ends the watch (it does within ``timeoutSeconds``)."""
        params = {"watch": "true", "resourceVersion": resource_version, "timeoutSeconds": "60"}
        timeout = httpx.Timeout(30.0, read=90.0)
        async with self._http.stream("GET", resource.path(), params=params, timeout=timeout) as response:
            if response.is_error:
                raise KubeError(response.status_code, (await response.aread()).decode(errors="replace"))
            async for line in response.aiter_lines():
                if line.strip():
                    yield json.loads(line)

    async def ensure_crd(self, crd: dict[str, Any], timeout: float = 30.0) -> None:
        """Create or replace a CRD (no client-side apply: upstream CRDs exceed the annotation limit it
        needs) and wait until it is Established."""
        name = crd["metadata"]["name"]
        existing = await self.get(CRDS, None, name)
        if existing is None:
            await self.create(CRDS, crd)
        else:
            body = {
                **crd,
                "metadata": {**crd["metadata"], "resourceVersion": existing["metadata"]["resourceVersion"]},
            }
            await self.replace(CRDS, body)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            current = await self.get(CRDS, None, name) or {}
            conditions = (current.get("status") or {}).get("conditions") or []
            if any(c["type"] == "Established" and c["status"] == "True" for c in conditions):
                break
            if loop.time() > deadline:
                raise KubeError(504, f"CRD {name} not Established after {timeout:.0f}s")
            await asyncio.sleep(0.2)
        spec = crd["spec"]
        served = next(v["name"] for v in spec["versions"] if v.get("storage"))
        collection = Resource(spec["group"], served, spec["names"]["plural"])
        while True:  # Established comes a moment before the new resource is served
            try:
                await self.list(collection, limit="1")
                return
            except KubeError as error:
                if error.status != 404:
                    raise
            if loop.time() > deadline:
                raise KubeError(504, f"CRD {name} not served after {timeout:.0f}s")
            await asyncio.sleep(0.2)


def key_of(obj: dict[str, Any]) -> Key:
    meta = obj["metadata"]
    return meta.get("namespace", ""), meta["name"]


@dataclass
class Informer:
    """A cache of one resource kept current by list + watch; ``notify`` is told every key that changed
    (and, after each list, every key there is or was)."""

    kube: KubeClient
    resource: Resource
    notify: Callable[[Key], None]
    cache: dict[Key, dict[str, Any]] = field(default_factory=dict)
    synced: asyncio.Event = field(default_factory=asyncio.Event)

    async def run(self) -> None:
        while True:
            try:
                listing = await self.kube.list(self.resource)
                fresh = {key_of(item): item for item in listing["items"]}
                for key in set(self.cache) | set(fresh):
                    self.notify(key)
                self.cache = fresh
                self.synced.set()
                version = listing["metadata"]["resourceVersion"]
                while True:  # watch until it expires, then resume from the last version seen
                    async for event in self.kube.watch(self.resource, version):
                        obj = event["object"]
                        if event["type"] == "ERROR":
                            raise KubeError(int(obj.get("code", 500)), str(obj.get("message")))
                        version = obj["metadata"]["resourceVersion"]
                        if event["type"] == "BOOKMARK":
                            continue
                        key = key_of(obj)
                        log.debug("%s %s %s/%s", self.resource.plural, event["type"], *key)
                        if event["type"] == "DELETED":
                            self.cache.pop(key, None)
                        else:
                            self.cache[key] = obj
                        self.notify(key)
            except asyncio.CancelledError:
                raise
            except (KubeError, httpx.HTTPError, ValueError) as error:
                log.info("%s: relisting after %s", self.resource.plural, error)
                await asyncio.sleep(1.0)
